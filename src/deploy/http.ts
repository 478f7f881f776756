import { maskPath } from '../config/describe';
import crypto from 'node:crypto';
import { sleep, withDeadline } from '../core/abort';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * JSON POSTs for the webhook deployer and webhook alerts: optional HMAC-SHA256 signature,
 * bounded retries with backoff. The secret never leaves this function except as the MAC.
 */

/** First retry after half a second, doubling: three tries finish within a few seconds. */
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
}

/** Signature over "<timestamp>.<body>", the scheme documented in docs/deploy.md. */
export function signBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Redirects are not followed: a POST carrying a signature must not be replayed elsewhere. */
function retryable(status: number): boolean {
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

export async function postJson(opts: PostOptions): Promise<void> {
  const body = JSON.stringify(opts.body);
  const where = safeUrl(opts.url);
  let lastError = '';
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    if (attempt > 0) await sleep(WEBHOOK_RETRY_BASE_MS * 2 ** (attempt - 1), opts.signal, opts.component);
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
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: withDeadline(opts.signal, opts.timeoutMs),
      });
      // Drain so the connection can be reused or closed cleanly.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        opts.log.info('webhook delivered', {
          component: opts.component,
          url: where,
          status: res.status,
          attempt,
        });
        return;
      }
      lastError = `HTTP ${res.status}`;
      if (!retryable(res.status)) break;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      lastError = describeError(err);
    }
    opts.log.warn('webhook attempt failed', {
      component: opts.component,
      url: where,
      attempt,
      error: lastError,
    });
  }
  throw new CertpilotError(
    opts.component === 'notify' ? 'NOTIFY_FAILED' : 'DEPLOY_FAILED',
    `${opts.component}: POST ${where} failed: ${lastError}`,
    { retryable: true },
  );
}
