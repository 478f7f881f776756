import { AsyncLocalStorage } from 'node:async_hooks';
import type https from 'node:https';
import { sleep, throwIfAborted } from '../core/abort';
import { CertpilotError, abortError } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * certpilot's HTTP policy for ACME, installed on acme-client's process-wide axios instance.
 *
 * acme-client's own retry interceptor hides network and TLS errors behind a TypeError after
 * ~75 s of silent retries, resends the same nonce after a 429 and honours Retry-After without
 * bound (see shared/NOTES.md). We clear it and own the policy:
 * - every request has a timeout and the caller's AbortSignal (carried by AsyncLocalStorage,
 *   because acme-client's API takes no signal);
 * - problem documents (RFC 8555 §6.7) are captured so errors keep their `type`;
 * - whole operations (which re-sign with a fresh nonce) are retried by `callAcme`, never a
 *   raw signed request;
 * - badNonce is retried inside acme-client with the fresh nonce from the error response.
 */

/** Retry-After values above this are not waited for inline; the error carries the time instead. */
export const RETRY_AFTER_CAP_MS = 60_000;
/** Attempts per ACME operation for transient failures (network, 5xx, short 429). */
export const MAX_ATTEMPTS = 4;
/** First backoff step; doubles per attempt, with full jitter. */
export const BACKOFF_BASE_MS = 500;

export interface AcmeProblem {
  status: number;
  type?: string;
  detail?: string;
  retryAfterMs?: number;
  url: string;
}

export interface AcmeRequestStats {
  total: number;
  /** Keyed by "METHOD /path". */
  byEndpoint: Record<string, number>;
}

interface CallContext {
  signal?: AbortSignal;
  timeoutMs: number;
  httpsAgent?: https.Agent;
  lastProblem?: AcmeProblem;
  stats?: AcmeRequestStats;
}

const context = new AsyncLocalStorage<CallContext>();

interface AxiosLikeConfig {
  url?: string;
  method?: string;
  timeout?: number;
  signal?: AbortSignal;
  httpsAgent?: https.Agent;
  adapter?: unknown;
}
interface AxiosLikeResponse {
  status: number;
  headers: Record<string, string | undefined>;
  data: unknown;
  config: AxiosLikeConfig;
}
interface AxiosLikeInstance {
  defaults: { timeout?: number };
  interceptors: {
    request: { clear(): void; use(fn: (c: AxiosLikeConfig) => AxiosLikeConfig): number };
    response: { clear(): void; use(ok: (r: AxiosLikeResponse) => AxiosLikeResponse): number };
  };
}

let installed = false;

/**
 * Nonces handed out by the CA in earlier responses, per origin. RFC 8555 §7.2: every response
 * carries a fresh Replay-Nonce that the next request may use. acme-client asks newNonce (a
 * HEAD) before every signed request, which doubles the requests to the CA; its HEADs are
 * answered from this pool when it has one. A stale nonce costs one badNonce retry, which
 * acme-client makes with the nonce from the error response.
 */
const noncePool = new Map<string, string[]>();
/** Nonces expire on the CA's side; a handful per origin is plenty for concurrent orders. */
const NONCE_POOL_SIZE = 8;

function originOf(url: string | undefined): string | undefined {
  try {
    return url ? new URL(url).origin : undefined;
  } catch {
    return undefined;
  }
}

function takeNonce(url: string | undefined): string | undefined {
  const origin = originOf(url);
  return origin ? noncePool.get(origin)?.pop() : undefined;
}

function keepNonce(url: string | undefined, nonce: string | undefined): void {
  const origin = originOf(url);
  if (!origin || !nonce) return;
  const pool = noncePool.get(origin) ?? [];
  pool.push(nonce);
  if (pool.length > NONCE_POOL_SIZE) pool.shift();
  noncePool.set(origin, pool);
}

/** Replaces acme-client's interceptors with ours. Idempotent. */
export function installAcmeHttpPolicy(axios: AxiosLikeInstance, defaultTimeoutMs: number): void {
  if (installed) return;
  installed = true;
  axios.interceptors.request.clear();
  axios.interceptors.response.clear();
  axios.defaults.timeout = defaultTimeoutMs;
  axios.interceptors.request.use((config) => {
    const ctx = context.getStore();
    // acme-client uses HEAD only for newNonce: answer it from the pool without a round trip.
    const pooled = config.method?.toLowerCase() === 'head' ? takeNonce(config.url) : undefined;
    if (pooled) {
      config.adapter = async (c: AxiosLikeConfig) => ({
        status: 200,
        statusText: 'OK (pooled nonce)',
        headers: { 'replay-nonce': pooled },
        data: '',
        config: c,
        request: {},
      });
      return config;
    }
    if (ctx) {
      config.timeout = ctx.timeoutMs;
      if (ctx.signal) config.signal = ctx.signal;
      if (ctx.httpsAgent) config.httpsAgent = ctx.httpsAgent;
      if (ctx.stats) {
        ctx.stats.total++;
        const key = `${(config.method ?? 'get').toUpperCase()} ${safePath(config.url)}`;
        ctx.stats.byEndpoint[key] = (ctx.stats.byEndpoint[key] ?? 0) + 1;
      }
    }
    return config;
  });
  axios.interceptors.response.use((response) => {
    const ctx = context.getStore();
    if (ctx && response.status >= 400) ctx.lastProblem = toProblem(response);
    // Keep the nonce for a later request, unless acme-client itself is about to use it: the
    // HEAD's own nonce and a badNonce error's nonce are consumed by the caller.
    const isHead = response.config.method?.toLowerCase() === 'head';
    const isBadNonce =
      (response.data as { type?: unknown } | null)?.type === 'urn:ietf:params:acme:error:badNonce';
    if (!isHead && !isBadNonce) keepNonce(response.config.url, response.headers['replay-nonce']);
    return response;
  });
}

function safePath(url: string | undefined): string {
  if (!url) return '?';
  try {
    // Collapse ids so stats group by endpoint kind.
    return new URL(url).pathname.replace(/\/[A-Za-z0-9_-]{12,}/g, '/:id');
  } catch {
    return url;
  }
}

function toProblem(response: AxiosLikeResponse): AcmeProblem {
  const data = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as {
    type?: unknown;
    detail?: unknown;
  };
  return {
    status: response.status,
    type: typeof data.type === 'string' ? data.type : undefined,
    detail: typeof data.detail === 'string' ? data.detail : undefined,
    retryAfterMs: parseRetryAfter(response.headers['retry-after']),
    url: response.config.url ?? '',
  };
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  httpsAgent?: https.Agent;
  stats?: AcmeRequestStats;
  log: Logger;
  /** Override for tests. */
  maxAttempts?: number;
}

/**
 * Runs one acme-client operation under our policy: deadline/cancellation on every request,
 * bounded retries for transient failures, typed errors carrying the real cause.
 */
export async function callAcme<T>(op: string, opts: CallOptions, fn: () => Promise<T>): Promise<T> {
  const maxAttempts = opts.maxAttempts ?? MAX_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(opts.signal, `acme: ${op}`);
    const ctx: CallContext = {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      httpsAgent: opts.httpsAgent,
      stats: opts.stats,
    };
    try {
      return await context.run(ctx, fn);
    } catch (err) {
      if (opts.signal?.aborted) throw abortError(`acme: ${op}`, opts.signal);
      const classified = classifyAcmeError(op, err, ctx.lastProblem);
      const wait = retryDelay(classified, attempt, maxAttempts);
      if (wait === undefined) throw classified;
      opts.log.warn('acme request failed, retrying', {
        op,
        attempt,
        waitMs: wait,
        error: classified.message,
      });
      await sleep(wait, opts.signal, `acme: ${op}`);
    }
  }
}

function retryDelay(err: CertpilotError, attempt: number, maxAttempts: number): number | undefined {
  if (!err.retryable || attempt >= maxAttempts) return undefined;
  const retryAfter = err.details.retryAfterMs as number | undefined;
  if (retryAfter !== undefined) return retryAfter <= RETRY_AFTER_CAP_MS ? retryAfter : undefined;
  return Math.round(Math.random() * BACKOFF_BASE_MS * 2 ** (attempt - 1));
}

const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';

/** Turns whatever acme-client/axios threw into a typed error that keeps the real cause. */
export function classifyAcmeError(
  op: string,
  err: unknown,
  problem: AcmeProblem | undefined,
): CertpilotError {
  if (err instanceof CertpilotError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (problem) {
    const type = problem.type?.startsWith(PROBLEM_PREFIX)
      ? problem.type.slice(PROBLEM_PREFIX.length)
      : problem.type;
    const detail = problem.detail ?? message;
    const text = `acme: ${op}: ${detail} (${type ?? 'no problem type'}, HTTP ${problem.status})`;
    const details = {
      status: problem.status,
      problemType: problem.type,
      retryAfterMs: problem.retryAfterMs,
      url: problem.url,
    };
    if (type === 'rateLimited' || problem.status === 429) {
      // In the message too, not only in details: the report (cron mail, CI log) is where an
      // operator learns when the CA will take orders again.
      const when =
        problem.retryAfterMs === undefined
          ? ''
          : ` (retry after ${Math.ceil(problem.retryAfterMs / 1000)} s)`;
      return new CertpilotError('ACME_RATE_LIMITED', text + when, { cause: err, retryable: true, details });
    }
    const transient = problem.status >= 500 || type === 'badNonce';
    return new CertpilotError('ACME_PROBLEM', text, { cause: err, retryable: transient, details });
  }
  if (typeof code === 'string' && RETRYABLE_NETWORK.has(code)) {
    return new CertpilotError('ACME_NETWORK', `acme: ${op}: ${code}: ${message}`, {
      cause: err,
      retryable: true,
    });
  }
  if (
    typeof code === 'string' &&
    (code.startsWith('CERT_') ||
      code.includes('CERT') ||
      code.startsWith('ERR_TLS') ||
      code.includes('SELF_SIGNED'))
  ) {
    return new CertpilotError(
      'ACME_NETWORK',
      `acme: ${op}: TLS error: ${code}: ${message} (is the CA's certificate trusted? see acme.caBundle)`,
      { cause: err, retryable: false },
    );
  }
  if (typeof code === 'string') {
    return new CertpilotError('ACME_NETWORK', `acme: ${op}: ${code}: ${message}`, {
      cause: err,
      retryable: false,
    });
  }
  return new CertpilotError('ACME_ORDER_FAILED', `acme: ${op}: ${message}`, { cause: err });
}
