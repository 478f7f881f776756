import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { sleep, throwIfAborted } from '../../core/abort';
import { CertpilotError, abortError } from '../../core/errors';

/**
 * A small client of etcd's v3 JSON gateway (grpc-gateway, served by every etcd >= 3.4 on its
 * client URLs at /v3/...). Keys and values travel base64-encoded, 64-bit integers as decimal
 * strings. Why the gateway and not a gRPC client: docs/decisions.md, section "etcd backend".
 *
 * Failover: a call goes to the member that answered last; when that member cannot be reached,
 * times out or says it has no leader, the call moves to the next endpoint, round after round
 * with a short backoff, until `retryForMs` has passed. Every operation this package sends is
 * safe to repeat (puts and deletes are idempotent, a lock acquisition recognises its own
 * nonce, fenced writes compare a revision that does not change), so a retry after an answer
 * that got lost does no harm. When no member answers in time the error is STORE_IO with
 * details.unavailable = true and retryable = true.
 */

export interface EtcdTls {
  /** PEM of the CA that signed the members' certificates. */
  ca?: string;
  /** Client certificate and key (PEM), for members started with --client-cert-auth. */
  cert?: string;
  key?: string;
}

export interface EtcdClientOptions {
  /** Client URLs of the members, http:// or https://. */
  endpoints: readonly string[];
  /** Loaded on first use (secret files are read then, not at construction). */
  credentials?: () => Promise<{ tls?: EtcdTls; auth?: { user: string; password: string } }>;
  /** Longest wait for one member's answer before trying the next. */
  requestTimeoutMs?: number;
  /** How long one call keeps trying the members before it fails as unavailable. */
  retryForMs?: number;
  /**
   * Resolution of the endpoints' host names (dns.resolvers); absent = the system resolver.
   * Passed in by the caller: the store sits below the DNS layer and cannot reach for it.
   */
  lookup?: LookupFunction;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
export const DEFAULT_RETRY_FOR_MS = 15_000;
/** Backoff between rounds over all members: short, since a new leader is elected in ~1 s. */
const ROUND_BACKOFF_MS = [50, 100, 200, 400, 800];

/** gRPC status codes etcd answers with (as the gateway's `code`). */
export const GRPC = { NOT_FOUND: 5, DEADLINE_EXCEEDED: 4, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/** An answer of etcd that is an error (not a transport failure). */
export interface EtcdAnswerError {
  code: number;
  message: string;
}

export interface KeyValue {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export interface RangeResponse {
  kvs?: KeyValue[];
  count?: string;
}

export type RequestOp =
  | { request_range: Record<string, unknown> }
  | { request_put: Record<string, unknown> }
  | { request_delete_range: Record<string, unknown> };

export interface Compare {
  key: string;
  target: 'CREATE' | 'MOD' | 'VERSION' | 'VALUE';
  result: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS';
  create_revision?: string;
  mod_revision?: string;
}

export interface TxnResponse {
  succeeded?: boolean;
  responses?: { response_range?: RangeResponse }[];
}

/** base64 of a string or bytes, as the gateway wants keys and values. */
export function b64(value: string | Buffer): string {
  return (typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('base64');
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** A failure of one attempt that another member (or a later round) may not have. */
class Transient extends Error {}

export class EtcdClient {
  readonly endpoints: readonly string[];
  private readonly requestTimeoutMs: number;
  private readonly retryForMs: number;
  private readonly credentials: EtcdClientOptions['credentials'];
  private readonly lookup: EtcdClientOptions['lookup'];
  private loaded?: Promise<{ agents: http.Agent[]; auth?: { user: string; password: string } }>;
  private token?: Promise<string>;
  private current = 0;
  private closed = false;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new CertpilotError('STORE_IO', 'etcd: no endpoints');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.retryForMs = opts.retryForMs ?? DEFAULT_RETRY_FOR_MS;
    this.credentials = opts.credentials;
    this.lookup = opts.lookup;
  }

  /**
   * POSTs `body` to `path` (e.g. "/v3/kv/range"), failing over as described above. An answer
   * of etcd that is an error is thrown as STORE_IO with details.grpcCode.
   */
  async call<T>(path: string, body: object, signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal, 'etcd');
    if (this.closed) throw new CertpilotError('STORE_IO', 'etcd: client closed');
    const { agents, auth } = await this.load();
    const started = Date.now();
    let lastError: unknown;
    let reauthenticated = false;
    for (let round = 0; ; round++) {
      for (let i = 0; i < this.endpoints.length; i++) {
        const at = this.current;
        try {
          const token = auth ? await this.authenticate(agents, auth, signal) : undefined;
          return (await this.post(at, agents[at]!, path, body, token, signal)) as T;
        } catch (err) {
          if (signal?.aborted) throw abortError('etcd', signal);
          if (isAuthExpired(err) && auth && !reauthenticated) {
            // Tokens expire (etcd's --auth-token-ttl); get a new one once, same member.
            reauthenticated = true;
            this.token = undefined;
            i--;
            continue;
          }
          if (!(err instanceof Transient)) throw err;
          lastError = err;
          this.token = auth && isTokenProblem(err) ? undefined : this.token;
          this.current = (at + 1) % this.endpoints.length;
        }
      }
      const waited = Date.now() - started;
      if (waited >= this.retryForMs) break;
      const pause = ROUND_BACKOFF_MS[Math.min(round, ROUND_BACKOFF_MS.length - 1)]!;
      await sleep(Math.min(pause, this.retryForMs - waited), signal, 'etcd');
    }
    throw new CertpilotError(
      'STORE_IO',
      `etcd: no member answered within ${this.retryForMs} ms (${this.endpoints.join(', ')}): ${(lastError as Error).message}`,
      { retryable: true, cause: lastError, details: { backend: 'etcd', unavailable: true } },
    );
  }

  /** Frees the connections; calls after this fail. */
  close(): void {
    this.closed = true;
    void this.loaded?.then(({ agents }) => agents.forEach((a) => a.destroy())).catch(() => undefined);
  }

  private load(): NonNullable<EtcdClient['loaded']> {
    this.loaded ??= (async () => {
      const creds = (await this.credentials?.()) ?? {};
      // Agents pass `lookup` on to net.connect/tls.connect for every socket they open.
      const resolve = this.lookup ? { lookup: this.lookup } : {};
      const agents = this.endpoints.map((e) =>
        e.startsWith('https:')
          ? new https.Agent({
              keepAlive: true,
              ca: creds.tls?.ca,
              cert: creds.tls?.cert,
              key: creds.tls?.key,
              ...resolve,
            })
          : new http.Agent({ keepAlive: true, ...resolve }),
      );
      return { agents, ...(creds.auth ? { auth: creds.auth } : {}) };
    })();
    // A failed load (unreadable secret file) is retried on the next call, not cached.
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }

  private authenticate(
    agents: http.Agent[],
    auth: { user: string; password: string },
    signal?: AbortSignal,
  ): Promise<string> {
    this.token ??= (async () => {
      const at = this.current;
      const body = { name: auth.user, password: auth.password };
      const res = (await this.post(at, agents[at]!, '/v3/auth/authenticate', body, undefined, signal)) as {
        token?: string;
      };
      if (!res.token) throw new CertpilotError('STORE_IO', 'etcd: authentication returned no token');
      return res.token;
    })();
    const pending = this.token;
    pending.catch(() => {
      if (this.token === pending) this.token = undefined;
    });
    return pending;
  }

  /** One attempt against one member. Transport failures and "no leader" answers are Transient. */
  private post(
    at: number,
    agent: http.Agent,
    path: string,
    body: object,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const url = new URL(this.endpoints[at]! + path);
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    const attempt = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(this.requestTimeoutMs)])
      : AbortSignal.timeout(this.requestTimeoutMs);
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: 'POST',
          agent,
          signal: attempt,
          headers: {
            'content-type': 'application/json',
            'content-length': payload.length,
            ...(token ? { authorization: token } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new Transient(`${url.host}: ${err.message}`)));
          res.on('end', () => {
            try {
              resolve(parseAnswer(url.host, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
            } catch (err) {
              reject(err as Error);
            }
          });
        },
      );
      req.on('error', (err) => {
        if (signal?.aborted) return reject(abortError('etcd', signal));
        const what = attempt.aborted ? `no answer within ${this.requestTimeoutMs} ms` : err.message;
        reject(new Transient(`${url.host}: ${what}`));
      });
      req.end(payload);
    });
  }
}

/** The JSON of an answer; a streamed answer (lease keep-alive) is its first `result`. */
function parseAnswer(host: string, status: number, text: string): unknown {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text.split('\n').find((l) => l.trim() !== '') ?? '{}') as Record<string, unknown>;
  } catch {
    if (status >= 500 || status === 0) throw new Transient(`${host}: HTTP ${status}`);
    throw new CertpilotError('STORE_IO', `etcd: ${host} answered HTTP ${status}: ${text.slice(0, 200)}`);
  }
  if ('result' in json && typeof json.result === 'object') json = json.result as Record<string, unknown>;
  const error = (json.error ?? undefined) as { code?: number; message?: string } | string | undefined;
  if (error !== undefined) {
    const code = typeof error === 'object' ? Number(error.code) : Number(json.code);
    const message = String(typeof error === 'object' ? error.message : (json.message ?? error));
    if (isLeaderProblem(code, message)) throw new Transient(`${host}: ${message}`);
    throw new CertpilotError('STORE_IO', `etcd: ${host}: ${message}`, {
      details: { backend: 'etcd', grpcCode: code },
      retryable: false,
    });
  }
  return json;
}

/** Answers a member gives while the cluster has no leader or is shutting down: another member may serve. */
function isLeaderProblem(code: number, message: string): boolean {
  if (code === GRPC.UNAVAILABLE || code === GRPC.DEADLINE_EXCEEDED) return true;
  return /leader|timed out|stopped|too many requests|not capable/i.test(message);
}

function isAuthExpired(err: unknown): boolean {
  return err instanceof CertpilotError && err.details.grpcCode === GRPC.UNAUTHENTICATED
    ? /token/i.test(err.message)
    : false;
}

function isTokenProblem(err: unknown): boolean {
  return /token/i.test((err as Error).message);
}

/** The gRPC code of an etcd answer error, if `err` is one. */
export function grpcCodeOf(err: unknown): number | undefined {
  return err instanceof CertpilotError && typeof err.details.grpcCode === 'number'
    ? err.details.grpcCode
    : undefined;
}
