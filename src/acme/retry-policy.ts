import { CertpilotError, abortError } from '../core/errors';
import type { Logger } from '../core/logger';
import { retry } from '../core/retry';

/**
 * certpilot's retry policy for ACME operations. A whole operation is retried (acme-client
 * re-signs it with a fresh nonce), never a raw signed request: resending a request with the
 * nonce it already used is what acme-client's own interceptor does after a 429, and the CA
 * answers badNonce. badNonce itself is retried inside acme-client with the error's nonce.
 *
 * The decision (`acmeRetryDecision`) is ACME's; the loop is the shared retry helper.
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

/**
 * Runs `attempt` until it succeeds, the policy gives up, or the signal aborts; the loop is the
 * shared one (src/core/retry.ts), the decision is acmeRetryDecision on the classified error.
 */
export async function retryAcmeOperation<T>(
  op: string,
  opts: RetryOptions,
  attempt: () => Promise<T>,
): Promise<T> {
  const component = `acme: ${op}`;
  return retry(
    async () => {
      try {
        return await attempt();
      } catch (err) {
        if (opts.signal?.aborted) throw abortError(component, opts.signal);
        throw opts.classify(err);
      }
    },
    {
      attempts: opts.maxAttempts ?? MAX_ATTEMPTS,
      baseMs: BACKOFF_BASE_MS,
      // A longer Retry-After is refused by acmeRetryDecision, and the computed backoff of
      // MAX_ATTEMPTS tries stays far below this.
      maxMs: RETRY_AFTER_CAP_MS,
      component,
      ...(opts.signal ? { signal: opts.signal } : {}),
      retryable: (err) => err instanceof CertpilotError && acmeRetryDecision(err),
      onRetry: ({ attempt: n, delayMs, error }) =>
        opts.log.warn('acme request failed, retrying', {
          op,
          attempt: n,
          waitMs: Math.round(delayMs),
          error: (error as CertpilotError).message,
        }),
    },
  );
}
