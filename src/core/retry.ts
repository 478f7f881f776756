import { sleep as abortableSleep, throwIfAborted } from './abort';

/**
 * The one retry loop: bounded attempts, exponential backoff with full jitter, Retry-After when
 * the server sent one, cancellation at every step. Callers keep their own policy (what is worth
 * retrying, how long a Retry-After they accept, what the final error says) in `retryable` and
 * in what `fn` throws; the loop itself knows nothing about HTTP.
 */

/**
 * What `retryable` answers for a failure: `false` gives up (the error is rethrown), `true`
 * retries after the computed backoff, `{ afterMs }` retries after that long (a server's
 * Retry-After), capped at `maxMs`.
 */
export type RetryDecision = boolean | { afterMs: number };

export interface RetryOptions {
  /** Tries in all, the first one included (1 = no retry). */
  attempts: number;
  /** Backoff before retry n (1-based) is random in [0, min(maxMs, baseMs * 2^(n-1))). */
  baseMs: number;
  /** Upper bound of any single wait, computed or asked for by the server. */
  maxMs: number;
  /** Cancels the wait between attempts (rejecting with ABORTED/TIMEOUT); checked before each attempt. */
  signal?: AbortSignal;
  /** Whether `err`, thrown by attempt `attempt` (1-based), is worth another try. */
  retryable(err: unknown, attempt: number): RetryDecision;
  /** Called before each wait: the place to log and count retries. */
  onRetry?(info: RetryInfo): void;
  /** Names the component in abort errors, e.g. `cloudflare`. */
  component?: string;
  /** Injected by tests: a fake sleep and a fixed random source make delays exact. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  random?: () => number;
}

export interface RetryInfo {
  /** The attempt that failed (1-based); the next one is attempt + 1. */
  attempt: number;
  delayMs: number;
  error: unknown;
  /** True when the delay is the server's Retry-After rather than our backoff. */
  serverAsked: boolean;
}

/** Full jitter ("Exponential Backoff and Jitter", AWS Architecture Blog, 2015): spreads clients apart. */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random = Math.random): number {
  return random() * Math.min(maxMs, baseMs * 2 ** (retry - 1));
}

/**
 * Runs `fn` until it resolves, `retryable` says no, or `attempts` tries are used up; the last
 * error is rethrown as it is, so callers see their own typed errors. `fn` gets the attempt
 * number (1-based), e.g. to say "after 2 retries" in its error.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const component = opts.component ?? 'retry';
  const wait = opts.sleep ?? ((ms, signal) => abortableSleep(ms, signal, component));
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(opts.signal, component);
    try {
      return await fn(attempt);
    } catch (err) {
      if (opts.signal?.aborted || attempt >= opts.attempts) throw err;
      const decision = opts.retryable(err, attempt);
      if (decision === false) throw err;
      const serverAsked = decision !== true;
      const delayMs = serverAsked
        ? Math.min(Math.max(0, decision.afterMs), opts.maxMs)
        : backoffDelay(attempt, opts.baseMs, opts.maxMs, opts.random);
      opts.onRetry?.({ attempt, delayMs, error: err, serverAsked });
      await wait(delayMs, opts.signal);
    }
  }
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from `now`.
 * Undefined when absent or unreadable; a date in the past means "now" (0).
 */
export function parseRetryAfter(
  header: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // All three HTTP-date forms start with a day name; Date.parse alone would take "1.5" or "-5".
  if (!/^[A-Za-z]{3}/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
