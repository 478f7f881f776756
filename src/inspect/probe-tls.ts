import type { X509Certificate } from 'node:crypto';
import { getMaxListeners, setMaxListeners } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { throwIfAborted } from '../core/abort';
import { abortError, describeError } from '../core/errors';
import { configuredHostLookup } from '../dns/host-lookup';
import { plainTrustStore } from '../x509';

/**
 * The network half of an endpoint probe: connect, optionally STARTTLS, handshake, and take the
 * served certificates as DER. Nothing here parses a certificate into a CertInfo (remote.ts
 * does), so this module is all a probe thread (probe-worker.ts) loads.
 */

/** An SMTP reply longer than this is not an SMTP server we want to keep reading from. */
const MAX_SMTP_REPLY_BYTES = 64 * 1024;

export interface ProbeOptions {
  /** Host name the endpoint is known by: used for SNI and hostname verification. */
  readonly host: string;
  readonly port: number;
  /** SNI name when it differs from `host`. Default `host` unless it is an IP address (RFC 6066 §3 forbids IPs in SNI). */
  readonly servername?: string;
  /** Address to connect to instead of resolving `host` (check one node behind a load balancer). */
  readonly connectAddress?: string;
  /** Upgrade a plaintext SMTP session with STARTTLS (RFC 3207) before the handshake. */
  readonly starttls?: 'smtp';
  /** PEM CA certificates to trust instead of the system store (like curl --cacert). */
  readonly caBundle?: string;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly signal?: AbortSignal;
}

export type ProbeErrorCode = 'unreachable' | 'handshake-timeout' | 'not-tls' | 'connect-timeout';

/**
 * What the network half of a probe found. `ders` are the served certificates, leaf first,
 * then issuers as Node links them (`getPeerCertificate(true)`), as DER; remote.ts parses them
 * into ProbeResult's chain. Plain data, so it crosses to and from a probe thread unchanged.
 */
export interface ServedChain {
  /** A TLS session was established and the server presented a certificate. */
  readonly ok: boolean;
  readonly ders: Buffer[];
  /** Chain verified against the CA store AND the certificate is valid for the host name. */
  readonly trusted: boolean;
  /** OpenSSL/Node reason when not trusted, e.g. CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID. */
  readonly trustError?: string;
  readonly error?: { readonly code: ProbeErrorCode; readonly message: string };
  readonly elapsedMs: number;
}

/** A probe outcome that is a result, not an exception (the endpoint is the problem, not us). */
class ProbeFailure extends Error {
  constructor(
    readonly code: ProbeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Resolves with `work`, or rejects with `onTimeout()` after `ms`, or with a typed abort error
 * when `signal` fires. Losing work is left to be torn down by the caller's socket cleanup;
 * its eventual rejection is swallowed so it cannot become an unhandled rejection.
 */
function bounded<T>(work: Promise<T>, ms: number, onTimeout: () => Error, signal?: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => reject(abortError('probe', signal)));
    const timer = setTimeout(() => finish(() => reject(onTimeout())), ms);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => finish(() => resolve(v)),
      (e: unknown) => finish(() => reject(e)),
    );
  });
}

// ---- SMTP STARTTLS (RFC 5321 §4.2 replies, RFC 3207) --------------------------------------

interface SmtpReply {
  code: number;
  lines: string[];
}

/**
 * Collects complete SMTP replies from a socket. A reply is one or more lines "NNN-text"
 * ending with a line "NNN text" (or just "NNN").
 */
class SmtpReplyReader {
  private buffer = '';
  private pendingLines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private waiter?: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void };
  private failure?: Error;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops reading so the TLS layer gets every following byte. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  next(): Promise<SmtpReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  // Buffers, not socket.setEncoding: the socket is handed to TLS afterwards and must be left as found.
  private readonly onData = (chunk: Buffer): void => {
    this.buffer += chunk.toString('latin1');
    if (this.buffer.length > MAX_SMTP_REPLY_BYTES) {
      return this.fail(new ProbeFailure('not-tls', 'smtp: reply too long; not an SMTP server'));
    }
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d{3})([ -]|$)(.*)$/.exec(line);
      if (!m)
        return this.fail(
          new ProbeFailure('not-tls', `smtp: unexpected line ${JSON.stringify(line.slice(0, 80))}`),
        );
      this.pendingLines.push(m[3] ?? '');
      if (m[2] !== '-') {
        this.push({ code: Number(m[1]), lines: this.pendingLines });
        this.pendingLines = [];
      }
    }
  };

  private readonly onEnd = (): void =>
    this.fail(new ProbeFailure('not-tls', 'smtp: connection closed by server'));
  private readonly onError = (err: Error): void =>
    this.fail(new ProbeFailure('not-tls', `smtp: connection failed: ${describeError(err)}`));

  private push(reply: SmtpReply): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.resolve(reply);
    else this.replies.push(reply);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }
}

async function smtpStartTls(socket: net.Socket): Promise<void> {
  const reader = new SmtpReplyReader(socket);
  try {
    const greeting = await reader.next();
    if (greeting.code !== 220)
      throw new ProbeFailure('not-tls', `smtp: greeting ${greeting.code}, expected 220`);
    // RFC 5321 §4.1.4: EHLO with our own name; servers only log it at this stage.
    socket.write(`EHLO ${os.hostname() || 'localhost'}\r\n`);
    const ehlo = await reader.next();
    if (ehlo.code !== 250)
      throw new ProbeFailure('not-tls', `smtp: EHLO answered ${ehlo.code}, expected 250`);
    // The first line is the server's name; extensions follow (RFC 5321 §4.1.1.1).
    if (!ehlo.lines.slice(1).some((l) => /^STARTTLS\b/i.test(l.trim()))) {
      throw new ProbeFailure('not-tls', 'smtp: server does not offer STARTTLS');
    }
    socket.write('STARTTLS\r\n');
    const ready = await reader.next();
    if (ready.code !== 220)
      throw new ProbeFailure('not-tls', `smtp: STARTTLS answered ${ready.code}, expected 220`);
  } finally {
    // RFC 3207 §4: nothing may follow the 220 before the handshake, so no bytes are lost here.
    reader.detach();
  }
}

// ---- the probe -----------------------------------------------------------------------------

/** Errors that say the peer does not speak TLS at all, rather than refusing our handshake. */
const NOT_TLS_CODES = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_RECORD_LAYER_FAILURE',
]);

/**
 * OpenSSL messages carry an address and a source path ("...:SSL routines:ssl3_get_record:wrong
 * version number:../deps/openssl/..."); keep the reason, which is what an operator can act on.
 */
function tlsReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const reason = /:SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message.split('\n')[0];
  return typeof e?.code === 'string' && !reason.includes(e.code) ? `${reason} (${e.code})` : reason;
}

function handshakeFailure(err: unknown, where: string): ProbeFailure {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NOT_TLS_CODES.has(code)) {
    return new ProbeFailure('not-tls', `tls: ${where} does not speak TLS: ${tlsReason(err)}`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new ProbeFailure(
      'not-tls',
      `tls: ${where} closed the connection during the handshake: ${tlsReason(err)}`,
    );
  }
  // An alert (no shared cipher, protocol version, unrecognised name...): a TLS server that
  // will not talk to us. Still "no TLS session"; the message keeps the reason.
  return new ProbeFailure('not-tls', `tls: handshake with ${where} failed: ${tlsReason(err)}`);
}

/**
 * The served chain as DER, leaf first. When the chain verified, it is the chain as Node links
 * it for `getPeerCertificate(true)`: from the leaf, each time the first remaining certificate
 * the server sent that issued the current one (X509_check_issued; Node stops early when that
 * was the last one left), then issuers from the trust store until a self-issued one. That call
 * re-decodes every certificate sent and converts them all into JS objects (~0.35 ms a
 * handshake, a fifth of `check` over 1,000 endpoints), so with a plain CA bundle
 * (plainTrustStore) the same links are made here from the certificates OpenSSL holds
 * (getPeerX509Certificate) and the bundle's, with the same issuer check. Other trust stores
 * still take Node's chain. An unverified chain is read as sent, as before.
 */
function readChain(
  socket: tls.TLSSocket,
  verified: boolean,
  store: readonly X509Certificate[] | undefined,
  taken: X509Certificate[] | undefined,
): Buffer[] {
  const ders: Buffer[] = [];
  const seen = new Set<string>();
  // A self-signed root is its own issuerCertificate: stop at the first repeat.
  if (verified && !store) {
    let cert: tls.DetailedPeerCertificate | undefined = tls.TLSSocket.prototype.getPeerCertificate.call(
      socket,
      true,
    ) as tls.DetailedPeerCertificate;
    while (cert?.raw && !seen.has(cert.fingerprint256)) {
      seen.add(cert.fingerprint256);
      ders.push(cert.raw);
      cert = cert.issuerCertificate;
    }
  } else if (verified && store) {
    // Taken already when Node's identity check ran (see handshake).
    const sent = taken ?? peerCertificates(socket);
    let current = sent.shift();
    const linked: X509Certificate[] = current ? [current] : [];
    while (current) {
      const issued = current;
      const i = sent.findIndex((ca) => issued.checkIssued(ca));
      if (i < 0) break;
      current = sent.splice(i, 1)[0] as X509Certificate;
      linked.push(current);
      // Node's loop (AddIssuerChainToObject) ends here when the issuer was the last certificate
      // left: it compares its index with the count after removing it. Linked the same way.
      if (i === sent.length) break;
    }
    // The trust store holds at most one certificate of each name (plainTrustStore), so the
    // first that issued the current one is the one OpenSSL's issuer lookup returns.
    for (let hops = 0; current && !current.checkIssued(current) && hops <= store.length; hops++) {
      const issued: X509Certificate = current;
      current = store.find((ca) => issued.checkIssued(ca));
      if (current) linked.push(current);
    }
    for (const cert of linked) {
      if (seen.has(cert.fingerprint256)) break;
      seen.add(cert.fingerprint256);
      ders.push(cert.raw);
    }
  } else {
    let cert: X509Certificate | undefined = socket.getPeerX509Certificate();
    while (cert && !seen.has(cert.fingerprint256)) {
      seen.add(cert.fingerprint256);
      ders.push(cert.raw);
      cert = cert.issuerCertificate;
    }
  }
  return ders;
}

/**
 * The certificates the server sent, in its order, as OpenSSL holds them. Node hands them over
 * by taking them out of the session (a second call finds none left): call it once.
 */
function peerCertificates(socket: tls.TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (let x = socket.getPeerX509Certificate(); x; x = x.issuerCertificate) out.push(x);
  return out;
}

/**
 * One SecureContext per trust store (system CAs, or each CA bundle), reused by every probe.
 * Building one parses every CA certificate again (the system store has ~150), which cost more
 * than the handshake itself when 1,000 endpoints were probed. Reuse is safe: a Node client only
 * resumes a TLS session when handed one explicitly, so each probe still gets the full chain.
 * A CA bundle's certificates are kept with it when it is a plain trust store (see readChain).
 */
const MAX_CONTEXTS = 64;
interface TrustStore {
  context: tls.SecureContext;
  plain: readonly X509Certificate[] | undefined;
}
const contexts = new Map<string, TrustStore>();

function trustStoreFor(caBundle: string | undefined): TrustStore {
  const key = caBundle ?? '';
  let store = contexts.get(key);
  if (!store) {
    store = {
      context: tls.createSecureContext(caBundle !== undefined ? { ca: caBundle } : {}),
      plain: caBundle !== undefined ? plainTrustStore(caBundle) : undefined,
    };
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
    contexts.set(key, store);
  }
  return store;
}

/** The TLS handshake over an established connection, bounded by the handshake timeout. */
async function handshake(
  raw: net.Socket,
  opts: ProbeOptions,
  where: string,
  sockets: net.Socket[],
): Promise<{ secure: tls.TLSSocket; verified: boolean; store: TrustStore; sent?: X509Certificate[] }> {
  const servername = opts.servername ?? (net.isIP(opts.host) ? undefined : opts.host);
  const store = trustStoreFor(opts.caBundle);
  let verified = false;
  const secure = tls.connect({
    socket: raw,
    // `host` is what Node's checkServerIdentity verifies when there is no servername (IP SANs).
    host: opts.host,
    servername,
    // Read expired, self-signed and misnamed chains too; trust is judged from `authorized`,
    // which Node still computes (chain verification plus checkServerIdentity).
    rejectUnauthorized: false,
    secureContext: store.context,
    // Node's own check, unchanged. Node calls it only when the chain verified.
    checkServerIdentity: (hostname, cert) => {
      verified = true;
      return tls.checkServerIdentity(hostname, cert);
    },
  });
  // Node hands the identity check `this.getPeerCertificate(true)`, the whole chain converted
  // (see readChain); tls.checkServerIdentity reads only the leaf's subjectaltname, and its
  // subject's CN when there is no DNS name to check. With a plain trust store the certificates
  // OpenSSL holds are taken here, once (readChain links them), and the leaf's subject is
  // converted only if the CN is read; otherwise the leaf alone is converted.
  let sent: X509Certificate[] | undefined;
  secure.getPeerCertificate = ((): tls.PeerCertificate | object => {
    if (!store.plain) return tls.TLSSocket.prototype.getPeerCertificate.call(secure, false);
    sent = peerCertificates(secure);
    const leaf = sent[0];
    if (!leaf) return {};
    return {
      subjectaltname: leaf.subjectAltName,
      subject: {
        get CN(): unknown {
          return (leaf.toLegacyObject().subject as unknown as Record<string, unknown>).CN;
        },
      },
    };
  }) as tls.TLSSocket['getPeerCertificate'];
  sockets.push(secure);
  secure.on('error', () => undefined);
  await bounded(
    new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', (e) => reject(handshakeFailure(e, where)));
      secure.once('close', () =>
        reject(new ProbeFailure('not-tls', `tls: ${where} closed the connection during the handshake`)),
      );
    }),
    opts.handshakeTimeoutMs,
    () =>
      new ProbeFailure(
        'handshake-timeout',
        `tls: handshake with ${where} did not finish within ${opts.handshakeTimeoutMs} ms`,
      ),
    opts.signal,
  );
  return { secure, verified, store, sent };
}

/**
 * For a batch of probes, at most `concurrency` in flight, that a `shared` signal cancels as well
 * as each endpoint's own: returns what joins the two on an endpoint. Every probe in flight
 * listens on the shared signal (several phases each); that is expected, not the leak Node's
 * default limit of 10 listeners warns about, so the limit is raised to match.
 */
export function joinShared(
  shared: AbortSignal | undefined,
  concurrency: number,
): (ep: ProbeOptions) => ProbeOptions {
  if (!shared) return (ep) => ep;
  setMaxListeners(Math.max(getMaxListeners(shared), concurrency * 4), shared);
  return (ep) => ({ ...ep, signal: ep.signal ? AbortSignal.any([ep.signal, shared]) : shared });
}

/** How a probe names its endpoint in messages: host:port, and the address when one is given. */
export function probeWhere(opts: Pick<ProbeOptions, 'host' | 'port' | 'connectAddress'>): string {
  const address = opts.connectAddress ?? opts.host;
  return `${opts.host}:${opts.port}${address !== opts.host ? ` (at ${address})` : ''}`;
}

/**
 * Connects, optionally speaks SMTP up to STARTTLS, completes a TLS handshake and takes the
 * served chain as DER. Endpoint problems (refused, timeouts, not TLS) are returned in `error`;
 * only cancellation through `signal` rejects. Every socket is destroyed before this returns.
 */
export async function probeServedChain(opts: ProbeOptions): Promise<ServedChain> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  throwIfAborted(opts.signal, 'probe');
  const address = opts.connectAddress ?? opts.host;
  const where = probeWhere(opts);
  const sockets: net.Socket[] = [];
  try {
    // dns.resolvers, when set, resolve the endpoint's name (never getaddrinfo).
    const lookup = configuredHostLookup();
    const raw = net.connect({ host: address, port: opts.port, ...(lookup ? { lookup } : {}) });
    sockets.push(raw);
    // A stray error after a phase has settled must never crash the process.
    raw.on('error', () => undefined);
    await bounded(
      new Promise<void>((resolve, reject) => {
        raw.once('connect', resolve);
        raw.once('error', (e) =>
          reject(new ProbeFailure('unreachable', `probe: cannot connect to ${where}: ${describeError(e)}`)),
        );
      }),
      opts.connectTimeoutMs,
      () =>
        new ProbeFailure(
          'connect-timeout',
          `probe: no TCP connection to ${where} within ${opts.connectTimeoutMs} ms`,
        ),
      opts.signal,
    );

    if (opts.starttls === 'smtp') {
      await bounded(
        smtpStartTls(raw),
        opts.handshakeTimeoutMs,
        () =>
          new ProbeFailure(
            'handshake-timeout',
            `smtp: no STARTTLS from ${where} within ${opts.handshakeTimeoutMs} ms`,
          ),
        opts.signal,
      );
    }

    const { secure, verified, store, sent } = await handshake(raw, opts, where, sockets);

    let ders: Buffer[];
    try {
      ders = readChain(secure, verified, store.plain, sent);
    } catch (err) {
      throw new ProbeFailure(
        'not-tls',
        `tls: cannot read the certificate served by ${where}: ${describeError(err)}`,
      );
    }
    if (ders.length === 0) throw new ProbeFailure('not-tls', `tls: ${where} presented no certificate`);
    const trustError = secure.authorized ? undefined : String(secure.authorizationError ?? 'not verified');
    return { ok: true, ders, trusted: secure.authorized, trustError, elapsedMs: elapsed() };
  } catch (err) {
    if (!(err instanceof ProbeFailure)) throw err;
    return {
      ok: false,
      ders: [],
      trusted: false,
      error: { code: err.code, message: err.message },
      elapsedMs: elapsed(),
    };
  } finally {
    // Destroy only the outermost socket; it closes the connection underneath. Destroying the
    // TCP socket before the TLS socket that wraps it made Node 20.20 die with a segmentation
    // fault at exit (reproduced here), so the TCP socket is destroyed directly only when TLS
    // never wrapped it.
    sockets[sockets.length - 1]?.destroy();
  }
}
