import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { abortError } from '../core/errors';
import { HEADER_BYTES } from './message';

/**
 * Moving one DNS exchange over UDP or TCP: send, match the answer to what was sent, time out,
 * honour cancellation. Over UDP every retransmission is a new message with a fresh ID (an
 * off-path forger who saw or guessed one ID gets no second chance at it, and a late answer to
 * an earlier copy is still recognised); over TCP messages are length-prefixed (RFC 1035
 * section 4.2.2) and sent once.
 */

export type Protocol = 'udp' | 'tcp';

export interface Endpoint {
  /** IP literal: names are resolved before this layer. */
  readonly host: string;
  readonly port: number;
}

/** UDP has no delivery guarantee: resend (with a fresh ID) this often until the timeout. */
export const UDP_RETRANSMIT_MS = 1000;

/** Why an exchange ended without an answer; mapped to component errors by callers. */
export class TransportFailure extends Error {
  constructor(
    /** `invalid`: the server's own answer (over TCP) failed a check; no point in waiting. */
    readonly kind: 'timeout' | 'network' | 'invalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ExchangeOptions {
  readonly server: Endpoint;
  readonly protocol: Protocol;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Builds the message to send with header ID `id` (called once per transmission). */
  readonly build: (id: number) => Buffer;
  /**
   * Checks a received answer whose ID is one we sent: undefined when it is the answer, else why
   * not (wrong question or zone section, wrong opcode...). Throwing counts as "not parseable".
   */
  readonly check: (answer: Buffer) => string | undefined;
  /** For abort errors: `dns`, `rfc2136`. */
  readonly component: string;
}

/** A 16-bit ID not used yet in this exchange. */
function freshId(used: ReadonlySet<number>): number {
  for (;;) {
    const id = randomInt(0, 0x10000);
    if (!used.has(id)) return id;
  }
}

/**
 * Sends and resolves with the first received message that carries one of the IDs sent, has
 * QR set and passes `check`. Over UDP anything else is ignored (stale or spoofed datagrams
 * must not end the exchange) and the last reason is named if the exchange times out; over TCP
 * the peer is the server itself, so an answer that fails `check` ends the exchange at once.
 */
export function exchange(opts: ExchangeOptions): Promise<Buffer> {
  const { signal, component, server } = opts;
  if (signal.aborted) return Promise.reject(abortError(component, signal));
  if (!net.isIP(server.host))
    return Promise.reject(new TransportFailure('network', `server "${server.host}" is not an IP address`));
  const sent = new Set<number>();
  const next = (): Buffer => {
    const id = freshId(sent);
    sent.add(id);
    return opts.build(id);
  };
  const judge = (buf: Buffer): 'ignore' | { ok: true } | { ok: false; reason: string } => {
    if (buf.length < HEADER_BYTES || !sent.has(buf.readUInt16BE(0))) return 'ignore';
    if ((buf.readUInt16BE(2) & 0x8000) === 0) return 'ignore';
    try {
      const reason = opts.check(buf);
      return reason === undefined ? { ok: true } : { ok: false, reason };
    } catch (err) {
      return { ok: false, reason: `unparseable answer (${(err as Error).message})` };
    }
  };
  return opts.protocol === 'udp' ? udpExchange(opts, next, judge) : tcpExchange(opts, next, judge);
}

/**
 * Stands in for dns.lookup on our sockets. Node resolves even IP literals and the implicit
 * bind address (0.0.0.0) through dns.lookup; the transport only ever talks to IP literals, so
 * this answers those itself and refuses anything else: no DNS exchange ever consults the
 * system resolver.
 */
function literalLookup(
  hostname: string,
  options: { all?: boolean } | number | undefined,
  callback: (
    err: Error | null,
    address: string | { address: string; family: number }[],
    family?: number,
  ) => void,
): void {
  const family = net.isIP(hostname);
  if (family === 0) {
    callback(new Error(`"${hostname}" is not an IP address`), '', 0);
    return;
  }
  if (typeof options === 'object' && options?.all) callback(null, [{ address: hostname, family }]);
  else callback(null, hostname, family);
}

type Judge = (buf: Buffer) => 'ignore' | { ok: true } | { ok: false; reason: string };

function settle(
  opts: ExchangeOptions,
  reject: (err: unknown) => void,
  resolve: (buf: Buffer) => void,
  release: () => void,
  timeoutDetail: () => string,
): { finish: (err: unknown, buf?: Buffer) => void } {
  const { signal, timeoutMs, component } = opts;
  let done = false;
  const onAbort = (): void => finish(abortError(component, signal));
  const timer = setTimeout(
    () => finish(new TransportFailure('timeout', `no answer within ${timeoutMs} ms${timeoutDetail()}`)),
    timeoutMs,
  );
  signal.addEventListener('abort', onAbort, { once: true });
  function finish(err: unknown, buf?: Buffer): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    release();
    if (buf) resolve(buf);
    else reject(err);
  }
  return { finish };
}

function udpExchange(opts: ExchangeOptions, next: () => Buffer, judge: Judge): Promise<Buffer> {
  const { server, timeoutMs } = opts;
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({
      type: net.isIPv6(server.host) ? 'udp6' : 'udp4',
      lookup: literalLookup as dgram.SocketOptions['lookup'],
    });
    let resend: NodeJS.Timeout | undefined;
    let ignored: string | undefined;
    const { finish } = settle(
      opts,
      reject,
      resolve,
      () => {
        clearInterval(resend);
        sock.close();
      },
      () => (ignored ? ` (ignored an answer: ${ignored})` : ''),
    );
    const send = (): void => {
      let message: Buffer;
      try {
        message = next();
      } catch (err) {
        return finish(err);
      }
      sock.send(message, (err) => {
        if (err) finish(new TransportFailure('network', err.message, { cause: err }));
      });
    };
    sock.on('error', (err) => finish(new TransportFailure('network', err.message, { cause: err })));
    sock.on('message', (buf) => {
      const verdict = judge(buf);
      if (verdict === 'ignore') return;
      if (verdict.ok) finish(undefined, buf);
      else ignored = verdict.reason;
    });
    // A connected socket only receives from the server and reports ICMP "port unreachable" as
    // ECONNREFUSED instead of letting us wait out the timeout.
    sock.connect(server.port, server.host, () => {
      send();
      if (timeoutMs > UDP_RETRANSMIT_MS) resend = setInterval(send, UDP_RETRANSMIT_MS);
    });
  });
}

function tcpExchange(opts: ExchangeOptions, next: () => Buffer, judge: Judge): Promise<Buffer> {
  const { server } = opts;
  return new Promise((resolve, reject) => {
    const sock = net.connect({
      host: server.host,
      port: server.port,
      lookup: literalLookup as net.LookupFunction,
    });
    const { finish } = settle(
      opts,
      reject,
      resolve,
      () => sock.destroy(),
      () => '',
    );
    let pending = Buffer.alloc(0);
    sock.setNoDelay(true);
    sock.on('connect', () => {
      let message: Buffer;
      try {
        message = next();
      } catch (err) {
        return finish(err);
      }
      const len = Buffer.alloc(2);
      len.writeUInt16BE(message.length, 0);
      sock.write(Buffer.concat([len, message]));
    });
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = Buffer.from(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + msg.length);
        const verdict = judge(msg);
        if (verdict === 'ignore') continue;
        if (verdict.ok) return finish(undefined, msg);
        return finish(new TransportFailure('invalid', `invalid answer: ${verdict.reason}`));
      }
    });
    sock.on('error', (err) => finish(new TransportFailure('network', err.message, { cause: err })));
    sock.on('close', () =>
      finish(new TransportFailure('network', 'connection closed before an answer arrived')),
    );
  });
}
