import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import * as packet from 'dns-packet';
import { CertpilotError, abortError } from '../core/errors';
import {
  CLASS,
  HEADER_BYTES,
  OPCODE_UPDATE,
  TYPE,
  encodeHeader,
  encodeName,
  encodeRecord,
  encodeTxtRdata,
  rcodeName,
  readName,
  skipName,
} from './message';
import { normalizeName } from './names';
import { type TsigKey, signMessage, verifyMessage } from './tsig';

/**
 * A small DNS client spoken straight from Node (see docs/decisions.md, "Speak DNS from Node"):
 * plain queries with a chosen RD bit and no cache (propagation checks ask each authoritative
 * server directly) and TSIG-signed RFC 2136 updates. Every call takes an AbortSignal and a
 * timeout. Nothing here logs; errors carry the server and RCODE and never the TSIG secret.
 */

export type QueryType = 'A' | 'AAAA' | 'NS' | 'SOA' | 'TXT' | 'CNAME';
export type Protocol = 'udp' | 'tcp';

export interface DnsServer {
  /** IPv4 or IPv6 literal (no brackets), or a host name where the caller resolves it first. */
  readonly host: string;
  readonly port: number;
}

export const DNS_PORT = 53;
/**
 * EDNS(0) UDP payload size we advertise: 1232 avoids IP fragmentation on any path (DNS Flag
 * Day 2020); larger answers come back truncated and are re-asked over TCP.
 */
export const EDNS_UDP_PAYLOAD = 1232;
/** UDP has no delivery guarantee: resend the same query this often until the timeout. */
export const UDP_RETRANSMIT_MS = 1000;

/** Parses "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal. */
export function parseServer(spec: string, defaultPort = DNS_PORT): DnsServer {
  const s = spec.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) return { host: bracketed[1], port: parsePort(bracketed[2], defaultPort, spec) };
  if (net.isIPv6(s)) return { host: s, port: defaultPort };
  const hostPort = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!hostPort || hostPort[1] === '') throw new RangeError(`dns: invalid server address "${spec}"`);
  return { host: hostPort[1], port: parsePort(hostPort[2], defaultPort, spec) };
}

function parsePort(text: string | undefined, fallback: number, spec: string): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new RangeError(`dns: invalid port in "${spec}"`);
  return port;
}

/** "127.0.0.1:53", "[::1]:53": the form used in messages and logs. */
export function formatServer(server: DnsServer): string {
  return net.isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly minimum: number;
}

export interface DnsRecord {
  /** Owner name, lower-case, no trailing dot. */
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /**
   * A/AAAA: the address; NS/CNAME: the target (normalised); TXT: the character-strings joined
   * (how ACME servers read a value); SOA: the primary server name; others: ''.
   */
  readonly data: string;
  /** TXT only: the character-strings as sent. */
  readonly txt?: readonly string[];
  readonly soa?: SoaData;
}

export interface DnsResponse {
  readonly server: DnsServer;
  readonly protocol: Protocol;
  readonly id: number;
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... */
  readonly rcode: string;
  readonly flags: {
    readonly aa: boolean;
    readonly tc: boolean;
    readonly rd: boolean;
    readonly ra: boolean;
    readonly ad: boolean;
  };
  readonly answers: readonly DnsRecord[];
  readonly authorities: readonly DnsRecord[];
  /** Without the EDNS OPT pseudo-record. */
  readonly additionals: readonly DnsRecord[];
}

export interface QueryOptions {
  readonly server: DnsServer;
  readonly name: string;
  readonly type: QueryType;
  /** RD bit: true for recursive resolvers, false when asking an authoritative server directly. */
  readonly recursionDesired: boolean;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Default 'udp', with a TCP retry when the answer is truncated. */
  readonly protocol?: Protocol;
}

/** Why a transport exchange ended without an answer; mapped to component errors by callers. */
class TransportFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'network',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Sends one query and returns the decoded answer. Any RCODE is an answer (NXDOMAIN is
 * information); only no answer, a malformed answer or cancellation throw.
 */
export async function query(opts: QueryOptions): Promise<DnsResponse> {
  const name = normalizeName(opts.name);
  const what = `${opts.type} query for ${name || '.'} to ${formatServer(opts.server)}`;
  const id = randomInt(0, 0x10000);
  const message = packet.encode({
    type: 'query',
    id,
    flags: opts.recursionDesired ? packet.RECURSION_DESIRED : 0,
    questions: [{ name: name || '.', type: opts.type, class: 'IN' }],
    additionals: [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: EDNS_UDP_PAYLOAD,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ],
  });
  const accept = (buf: Buffer): boolean => matchesQuery(buf, id, name, TYPE[opts.type]);
  const run = async (protocol: Protocol): Promise<DnsResponse> => {
    try {
      const raw = await exchange(opts.server, message, protocol, opts.signal, opts.timeoutMs, accept, 'dns');
      return decodeResponse(raw, opts.server, protocol);
    } catch (err) {
      throw toComponentError(err, 'DNS_QUERY_FAILED', `dns: ${what} failed`, {
        server: formatServer(opts.server),
        name,
        type: opts.type,
      });
    }
  };
  const first = await run(opts.protocol ?? 'udp');
  // RFC 7766: a truncated UDP answer must be asked again over TCP to get the full answer.
  if (first.protocol === 'udp' && first.flags.tc) return run('tcp');
  return first;
}

function matchesQuery(buf: Buffer, id: number, name: string, type: number): boolean {
  if (buf.length < HEADER_BYTES || buf.readUInt16BE(0) !== id || (buf.readUInt16BE(2) & 0x8000) === 0)
    return false;
  const qd = buf.readUInt16BE(4);
  // Some servers drop the question from error answers (FORMERR, NOTIMP); accept those by id.
  if (qd === 0) return (buf.readUInt16BE(2) & 0xf) !== 0;
  if (qd !== 1) return false;
  const qname = readName(buf, HEADER_BYTES);
  const off = skipName(buf, HEADER_BYTES);
  return qname === name && buf.readUInt16BE(off) === type && buf.readUInt16BE(off + 2) === CLASS.IN;
}

function decodeResponse(raw: Buffer, server: DnsServer, protocol: Protocol): DnsResponse {
  const p = packet.decode(raw);
  const flags = raw.readUInt16BE(2);
  const opt = (p.additionals ?? []).find((a): a is packet.OptAnswer => a.type === 'OPT');
  // The full RCODE has 12 bits: 4 in the header, 8 more in the OPT record (RFC 6891 section 6.1.3).
  const rcode = ((opt?.extendedRcode ?? 0) << 4) | (flags & 0xf);
  return {
    server,
    protocol,
    id: raw.readUInt16BE(0),
    rcode: rcodeName(rcode),
    flags: {
      aa: p.flag_aa,
      tc: p.flag_tc,
      rd: p.flag_rd,
      ra: p.flag_ra,
      ad: p.flag_ad,
    },
    answers: (p.answers ?? []).map(toRecord),
    authorities: (p.authorities ?? []).map(toRecord),
    additionals: (p.additionals ?? []).filter((a) => a.type !== 'OPT').map(toRecord),
  };
}

function toRecord(a: packet.Answer): DnsRecord {
  const base = { name: normalizeName(a.name), type: a.type, ttl: 'ttl' in a ? (a.ttl ?? 0) : 0 };
  switch (a.type) {
    case 'A':
    case 'AAAA':
      return { ...base, data: a.data };
    case 'NS':
    case 'CNAME':
    case 'DNAME':
    case 'PTR':
      return { ...base, data: normalizeName(a.data) };
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data];
      const txt = parts.map((d) => (Buffer.isBuffer(d) ? d.toString('utf8') : d));
      return { ...base, data: txt.join(''), txt };
    }
    case 'SOA':
      return {
        ...base,
        data: normalizeName(a.data.mname),
        soa: {
          mname: normalizeName(a.data.mname),
          rname: normalizeName(a.data.rname),
          serial: a.data.serial ?? 0,
          minimum: a.data.minimum ?? 0,
        },
      };
    default:
      return { ...base, data: '' };
  }
}

/** The TXT values at `fqdn` in the answer section of `response`. */
export function txtValues(response: DnsResponse, fqdn: string): string[] {
  const n = normalizeName(fqdn);
  return response.answers.filter((r) => r.type === 'TXT' && r.name === n).map((r) => r.data);
}

/** One change to a TXT RRset, by FQDN. */
export type TxtUpdate =
  | { readonly action: 'add'; readonly name: string; readonly value: string; readonly ttl: number }
  /** Without `value`, deletes the whole TXT RRset at `name` (RFC 2136 section 2.5.2). */
  | { readonly action: 'delete'; readonly name: string; readonly value?: string };

export interface UpdateOptions {
  readonly server: DnsServer;
  /** The zone (apex FQDN) the update is for; every name must lie in it. */
  readonly zone: string;
  readonly updates: readonly TxtUpdate[];
  readonly tsig?: TsigKey;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Default 'tcp': updates can exceed a UDP datagram, and TCP makes a lost answer an error, not a resend. */
  readonly protocol?: Protocol;
}

export interface UpdateResult {
  readonly server: string;
  readonly rcode: 'NOERROR';
  /** True when the answer carried a TSIG that verified. */
  readonly signed: boolean;
}

/** Builds the unsigned RFC 2136 UPDATE message. Exported for tests. */
export function buildUpdateMessage(id: number, zone: string, updates: readonly TxtUpdate[]): Buffer {
  const z = normalizeName(zone);
  const zoneSection = Buffer.concat([encodeName(z), Buffer.from([0, TYPE.SOA, 0, CLASS.IN])]);
  const records = updates.map((u) => {
    const name = normalizeName(u.name);
    if (name !== z && !name.endsWith('.' + z)) throw new RangeError(`rfc2136: ${name} is not in zone ${z}`);
    if (u.action === 'add') return encodeRecord(name, TYPE.TXT, CLASS.IN, u.ttl, encodeTxtRdata(u.value));
    // RFC 2136 section 2.5.4: class NONE, TTL 0 deletes exactly this value;
    // section 2.5.2: class ANY, TTL 0, empty RDATA deletes the RRset.
    if (u.value === undefined) return encodeRecord(name, TYPE.TXT, CLASS.ANY, 0, Buffer.alloc(0));
    return encodeRecord(name, TYPE.TXT, CLASS.NONE, 0, encodeTxtRdata(u.value));
  });
  // Header: opcode UPDATE; ZOCOUNT 1, PRCOUNT 0, UPCOUNT = changes, ADCOUNT 0 (RFC 2136 section 2.2).
  const header = encodeHeader({ id, flags: OPCODE_UPDATE << 11, qd: 1, an: 0, ns: records.length, ar: 0 });
  return Buffer.concat([header, zoneSection, ...records]);
}

const RCODE_HINTS: Record<string, string> = {
  REFUSED:
    'the server refused the update: its update-policy does not let this key change these names, or the zone is frozen or not a primary',
  NOTAUTH: 'the server is not authoritative for the zone, or did not accept the TSIG key',
  NOTZONE: 'a name is outside the zone',
  SERVFAIL: 'the server failed to apply the update',
  FORMERR: 'the server could not parse the update',
  NOTIMP: 'the server does not support dynamic updates',
};

const TSIG_HINTS: Record<string, string> = {
  BADSIG: 'the server could not verify the signature: check tsigSecret and tsigAlgorithm',
  BADKEY: 'the server does not know this key name with this algorithm: check tsigKeyName and tsigAlgorithm',
  BADTIME: "the clocks of this host and the server differ by more than the TSIG fudge: check the host's time",
  BADTRUNC: 'the server rejected a truncated MAC',
};

/**
 * Sends a (TSIG-signed) RFC 2136 UPDATE of TXT records and resolves when the primary answers
 * NOERROR. Throws DNS_UPDATE_FAILED (message `rfc2136: ...` with server, RCODE and TSIG error),
 * or ABORTED/TIMEOUT when `signal` fires.
 */
export async function sendUpdate(opts: UpdateOptions): Promise<UpdateResult> {
  const server = formatServer(opts.server);
  const zone = normalizeName(opts.zone);
  const what = `update of zone ${zone} at ${server}`;
  const details = { server, zone, changes: opts.updates.length };
  if (opts.signal.aborted) throw abortError('rfc2136', opts.signal);
  const id = randomInt(0, 0x10000);
  const unsigned = buildUpdateMessage(id, zone, opts.updates);
  let message = unsigned;
  let requestMac: Buffer | undefined;
  if (opts.tsig) {
    try {
      ({ message, mac: requestMac } = signMessage(unsigned, opts.tsig));
    } catch (err) {
      // The only way signing fails is a malformed secret or key name; the message says which
      // without quoting either.
      throw new CertpilotError(
        'DNS_UPDATE_FAILED',
        `rfc2136: cannot sign ${what}: ${(err as Error).message}`,
        { details },
      );
    }
  }
  const accept = (buf: Buffer): boolean =>
    buf.length >= HEADER_BYTES &&
    buf.readUInt16BE(0) === id &&
    (buf.readUInt16BE(2) & 0x8000) !== 0 &&
    ((buf.readUInt16BE(2) >> 11) & 0xf) === OPCODE_UPDATE;
  let raw: Buffer;
  try {
    raw = await exchange(
      opts.server,
      message,
      opts.protocol ?? 'tcp',
      opts.signal,
      opts.timeoutMs,
      accept,
      'rfc2136',
    );
  } catch (err) {
    throw toComponentError(err, 'DNS_UPDATE_FAILED', `rfc2136: ${what} failed`, details);
  }

  const rcode = rcodeName(raw.readUInt16BE(2) & 0xf);
  let verification;
  try {
    verification = opts.tsig
      ? verifyMessage(raw, opts.tsig, { requestMac })
      : ({ status: 'unsigned' } as const);
  } catch (err) {
    throw new CertpilotError('DNS_UPDATE_FAILED', `rfc2136: ${what}: malformed answer (${rcode})`, {
      cause: err,
      details: { ...details, rcode },
    });
  }
  if (verification.status === 'failed' && verification.record.error !== 0) {
    const tsigError = rcodeName(verification.record.error);
    throw new CertpilotError(
      'DNS_UPDATE_FAILED',
      `rfc2136: ${what} rejected: ${rcode}, TSIG error ${tsigError} (${TSIG_HINTS[tsigError] ?? 'TSIG failure'})`,
      { details: { ...details, rcode, tsigError } },
    );
  }
  if (rcode !== 'NOERROR') {
    throw new CertpilotError(
      'DNS_UPDATE_FAILED',
      `rfc2136: ${what} failed: ${rcode}${RCODE_HINTS[rcode] ? ` (${RCODE_HINTS[rcode]})` : ''}`,
      {
        retryable: rcode === 'SERVFAIL',
        details: { ...details, rcode },
      },
    );
  }
  if (opts.tsig && verification.status !== 'ok') {
    // RFC 8945 section 5.3.4: a signed request's answer must be signed with the same key;
    // otherwise anyone on the path could have forged the NOERROR.
    const reason =
      verification.status === 'unsigned'
        ? 'the answer is not signed'
        : `the answer's TSIG is invalid: ${verification.reason}`;
    throw new CertpilotError('DNS_UPDATE_FAILED', `rfc2136: ${what}: ${reason}`, {
      details: { ...details, rcode },
    });
  }
  return { server, rcode: 'NOERROR', signed: verification.status === 'ok' };
}

function toComponentError(
  err: unknown,
  code: 'DNS_QUERY_FAILED' | 'DNS_UPDATE_FAILED',
  head: string,
  details: Record<string, unknown>,
): CertpilotError {
  if (err instanceof CertpilotError) return err;
  if (err instanceof TransportFailure) {
    return new CertpilotError(code, `${head}: ${err.message}`, {
      cause: err.cause,
      retryable: true,
      details,
    });
  }
  return new CertpilotError(code, `${head}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
    details,
  });
}

/**
 * Sends `message` and resolves with the first received message `accept` approves. Over UDP
 * other datagrams (stale or spoofed) are ignored and the query is resent every
 * UDP_RETRANSMIT_MS; over TCP messages are length-prefixed (RFC 1035 section 4.2.2).
 */
function exchange(
  server: DnsServer,
  message: Buffer,
  protocol: Protocol,
  signal: AbortSignal,
  timeoutMs: number,
  accept: (buf: Buffer) => boolean,
  component: string,
): Promise<Buffer> {
  if (signal.aborted) return Promise.reject(abortError(component, signal));
  if (!net.isIP(server.host))
    return Promise.reject(new TransportFailure('network', `server "${server.host}" is not an IP address`));
  return protocol === 'udp'
    ? udpExchange(server, message, signal, timeoutMs, accept, component)
    : tcpExchange(server, message, signal, timeoutMs, accept, component);
}

function settle(
  signal: AbortSignal,
  timeoutMs: number,
  component: string,
  reject: (err: unknown) => void,
  resolve: (buf: Buffer) => void,
  release: () => void,
): { finish: (err: unknown, buf?: Buffer) => void } {
  let done = false;
  const onAbort = (): void => finish(abortError(component, signal));
  const timer = setTimeout(
    () => finish(new TransportFailure('timeout', `no answer within ${timeoutMs} ms`)),
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

function udpExchange(
  server: DnsServer,
  message: Buffer,
  signal: AbortSignal,
  timeoutMs: number,
  accept: (buf: Buffer) => boolean,
  component: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let resend: NodeJS.Timeout | undefined;
    const { finish } = settle(signal, timeoutMs, component, reject, resolve, () => {
      clearInterval(resend);
      sock.close();
    });
    const send = (): void =>
      sock.send(message, (err) => {
        if (err) finish(new TransportFailure('network', err.message, { cause: err }));
      });
    sock.on('error', (err) => finish(new TransportFailure('network', err.message, { cause: err })));
    sock.on('message', (buf) => {
      if (safeAccept(accept, buf)) finish(undefined, buf);
    });
    // A connected socket only receives from the server and reports ICMP "port unreachable" as
    // ECONNREFUSED instead of letting us wait out the timeout.
    sock.connect(server.port, server.host, () => {
      send();
      if (timeoutMs > UDP_RETRANSMIT_MS) resend = setInterval(send, UDP_RETRANSMIT_MS);
    });
  });
}

function tcpExchange(
  server: DnsServer,
  message: Buffer,
  signal: AbortSignal,
  timeoutMs: number,
  accept: (buf: Buffer) => boolean,
  component: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server.host, port: server.port });
    const { finish } = settle(signal, timeoutMs, component, reject, resolve, () => sock.destroy());
    let pending = Buffer.alloc(0);
    sock.setNoDelay(true);
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(message.length, 0);
      sock.write(Buffer.concat([len, message]));
    });
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        if (safeAccept(accept, msg)) return finish(undefined, Buffer.from(msg));
      }
    });
    sock.on('error', (err) => finish(new TransportFailure('network', err.message, { cause: err })));
    sock.on('close', () =>
      finish(new TransportFailure('network', 'connection closed before an answer arrived')),
    );
  });
}

/** A message we cannot even parse is not our answer: keep waiting for the real one. */
function safeAccept(accept: (buf: Buffer) => boolean, buf: Buffer): boolean {
  try {
    return accept(buf);
  } catch {
    return false;
  }
}
