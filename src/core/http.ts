import crypto from 'node:crypto';
import { withDeadline } from './abort';
import { CertpilotError, describeError } from './errors';
import type { Logger } from './logger';
import { maskPath } from './redact';
import { parseRetryAfter, retry, type RetryOptions } from './retry';

/**
 * JSON POSTs for the webhook deployer and webhook alerts: optional HMAC-SHA256 signature,
 * bounded retries (src/core/retry.ts). The secret never leaves this module except as the MAC.
 */

/** Backoff base: the first retry within half a second, then doubling (full jitter): three tries finish within a few seconds. */
export const WEBHOOK_RETRY_BASE_MS = 500;
/** Sent with the signature so a receiver can reject replays of an old request. */
export const TIMESTAMP_HEADER = 'X-Certpilot-Timestamp';

export interface PostOptions {
  url: string;
  body: unknown;
  /** HMAC key; when set, `signatureHeader: sha256=<hex HMAC of "<timestamp>.<body>">`. */
  secret?: string;
  signatureHeader: string;
  headers: Readonly<Record<string, string>>;
  retries: number;
  timeoutMs: number;
  /** Component for messages, e.g. `webhook` or `notify`. */
  component: string;
  log: Logger;
  signal?: AbortSignal;
  /** Now in seconds, injectable for tests. */
  now?: () => number;
  /** The wait between attempts, injectable for tests. */
  sleep?: RetryOptions['sleep'];
}

/** Signature over "<timestamp>.<body>", the scheme documented in docs/deploy.md. */
export function signBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Retry-After values above this are capped: an alert or deploy must not hang for an hour. */
export const WEBHOOK_RETRY_MAX_MS = 30_000;

/** 408, 429 and 5xx are worth another try; redirects are not followed (a signed POST must not be replayed elsewhere). */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Only scheme, host and the first path segment in messages: a query string may carry a token,
 * and Slack-style webhook URLs carry their secret in the rest of the path.
 */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${maskPath(u.pathname)}`;
  } catch {
    return '(invalid url)';
  }
}

/** A failed delivery attempt: why, whether to try again, and the server's Retry-After. */
class AttemptFailed extends Error {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    readonly afterMs?: number,
  ) {
    super(reason);
    this.name = 'AttemptFailed';
  }
}

function buildHeaders(opts: PostOptions, body: string): Record<string, string> {
  const timestamp = String(Math.floor(opts.now?.() ?? Date.now() / 1000));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'certpilot',
    ...opts.headers,
  };
  if (opts.secret !== undefined) {
    headers[TIMESTAMP_HEADER] = timestamp;
    headers[opts.signatureHeader] = signBody(opts.secret, timestamp, body);
  }
  return headers;
}

/** One POST; resolves with the status on 2xx, throws AttemptFailed otherwise. */
async function postOnce(opts: PostOptions, body: string): Promise<number> {
  let res: Response;
  try {
    res = await fetch(opts.url, {
      method: 'POST',
      // Per attempt: the timestamp (and so the signature) is fresh on every retry.
      headers: buildHeaders(opts, body),
      body,
      redirect: 'manual',
      signal: withDeadline(opts.signal, opts.timeoutMs),
    });
    // Drain so the connection can be reused or closed cleanly.
    await res.arrayBuffer().catch(() => undefined);
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new AttemptFailed(describeError(err), true);
  }
  if (res.status >= 200 && res.status < 300) return res.status;
  throw new AttemptFailed(
    `HTTP ${res.status}`,
    retryableStatus(res.status),
    parseRetryAfter(res.headers.get('retry-after')),
  );
}

/**
 * POSTs `opts.body` as JSON, retrying network errors, 408, 429 and 5xx up to `opts.retries`
 * times with the shared backoff (a Retry-After is honoured up to WEBHOOK_RETRY_MAX_MS).
 */
export async function postJson(opts: PostOptions): Promise<void> {
  const body = JSON.stringify(opts.body);
  const where = safeUrl(opts.url);
  const attempt = async (n: number): Promise<{ status: number; n: number }> => {
    try {
      return { status: await postOnce(opts, body), n };
    } catch (err) {
      if (err instanceof AttemptFailed) {
        opts.log.warn('webhook attempt failed', {
          component: opts.component,
          url: where,
          attempt: n - 1,
          error: err.reason,
        });
      }
      throw err;
    }
  };
  try {
    const done = await retry(attempt, {
      attempts: opts.retries + 1,
      baseMs: WEBHOOK_RETRY_BASE_MS,
      maxMs: WEBHOOK_RETRY_MAX_MS,
      component: opts.component,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.sleep ? { sleep: opts.sleep } : {}),
      retryable: (err) =>
        err instanceof AttemptFailed && err.retryable
          ? err.afterMs === undefined || { afterMs: err.afterMs }
          : false,
    });
    opts.log.info('webhook delivered', {
      component: opts.component,
      url: where,
      status: done.status,
      attempt: done.n - 1,
    });
  } catch (err) {
    if (!(err instanceof AttemptFailed)) throw err;
    throw new CertpilotError(
      opts.component === 'notify' ? 'NOTIFY_FAILED' : 'DEPLOY_FAILED',
      `${opts.component}: POST ${where} failed: ${err.reason}`,
      { retryable: true },
    );
  }
}
