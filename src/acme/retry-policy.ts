import { sleep, throwIfAborted } from '../core/abort';
import { CertpilotError, abortError } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * certpilot's retry policy for ACME operations. A whole operation is retried (acme-client
 * re-signs it with a fresh nonce), never a raw signed request: resending a request with the
 * nonce it already used is what acme-client's own interceptor does after a 429, and the CA
 * answers badNonce. badNonce itself is retried inside acme-client with the error's nonce.
 *
 * The decision (`acmeRetryDecision`) is separate from the loop (`retryAcmeOperation`) so the
 * loop can be swapped for a shared retry helper with the same shape:
 * `retry(fn, { attempts, baseMs, signal, retryable: acmeRetryDecision })`.
 */

/** Retry-After values above this are not waited for inline; the error carries the time instead. */
export const RETRY_AFTER_CAP_MS = 60_000;
/** Attempts per ACME operation for transient failures (network, 5xx, short 429). */
export const MAX_ATTEMPTS = 4;
/** First backoff step; doubles per attempt, with full jitter. */
export const BACKOFF_BASE_MS = 500;

/**
 * false: give up. true: back off (exponential, full jitter). `{ afterMs }`: the CA said when
 * (Retry-After), wait exactly that.
 */
export function acmeRetryDecision(err: CertpilotError): boolean | { afterMs: number } {
  if (!err.retryable) return false;
  const retryAfter = err.details.retryAfterMs as number | undefined;
  if (retryAfter === undefined) return true;
  return retryAfter <= RETRY_AFTER_CAP_MS ? { afterMs: retryAfter } : false;
}

export interface RetryOptions {
  signal?: AbortSignal;
  log: Logger;
  maxAttempts?: number;
  /** Maps what one attempt threw to a typed error (see classifyAcmeError). */
  classify(err: unknown): CertpilotError;
}

/** Runs `attempt` until it succeeds, the policy gives up, or the signal aborts. */
export async function retryAcmeOperation<T>(
  op: string,
  opts: RetryOptions,
  attempt: () => Promise<T>,
): Promise<T> {
  const maxAttempts = opts.maxAttempts ?? MAX_ATTEMPTS;
  for (let n = 1; ; n++) {
    throwIfAborted(opts.signal, `acme: ${op}`);
    try {
      return await attempt();
    } catch (err) {
      if (opts.signal?.aborted) throw abortError(`acme: ${op}`, opts.signal);
      const classified = opts.classify(err);
      const decision = n < maxAttempts ? acmeRetryDecision(classified) : false;
      if (decision === false) throw classified;
      const wait =
        decision === true ? Math.round(Math.random() * BACKOFF_BASE_MS * 2 ** (n - 1)) : decision.afterMs;
      opts.log.warn('acme request failed, retrying', {
        op,
        attempt: n,
        waitMs: wait,
        error: classified.message,
      });
      await sleep(wait, opts.signal, `acme: ${op}`);
    }
  }
}
