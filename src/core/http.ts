import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
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
  /** Host name resolution (dns.resolvers, src/dns/host-lookup.ts); absent = the system resolver. */
  lookup?: net.LookupFunction;
}

export interface HttpRequestOptions {
  url: string;
  method: string;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
  /** Deadline of the whole exchange, connection to last body byte. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Host name resolution; absent = the system resolver. */
  lookup?: net.LookupFunction;
  /** Larger bodies fail the request (default 1 MiB): every peer here answers a few KB. */
  maxBodyBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * One HTTP(S) request with node:http(s), not global fetch: fetch cannot be given a `lookup`
 * (only undici's dispatcher can), and with dns.resolvers set no host name may go to
 * getaddrinfo. Redirects are never followed. Rejects on network errors, the deadline and abort.
 */
export function httpRequest(opts: HttpRequestOptions): Promise<HttpResponse> {
  const url = new URL(opts.url);
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!client) return Promise.reject(new Error(`unsupported URL scheme ${url.protocol}`));
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const signal = withDeadline(opts.signal, opts.timeoutMs);
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = client.request(url, {
      method: opts.method,
      headers: {
        ...opts.headers,
        ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}),
      },
      signal,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
    req.on('error', (err) =>
      reject(signal.aborted && !opts.signal?.aborted ? timeoutError(opts.timeoutMs) : err),
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) res.destroy(new Error(`response larger than ${max} bytes`));
        else chunks.push(c);
      });
      res.on('error', (err) =>
        reject(signal.aborted && !opts.signal?.aborted ? timeoutError(opts.timeoutMs) : err),
      );
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(opts.body);
  });
}

function timeoutError(ms: number): Error {
  return Object.assign(new Error(`timeout of ${ms}ms exceeded`), { name: 'TimeoutError' });
}

/** A header's value as one string (repeated headers joined), or null like fetch's Headers.get. */
export function headerValue(headers: http.IncomingHttpHeaders, name: string): string | null {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
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
  let res: HttpResponse;
  try {
    res = await httpRequest({
      url: opts.url,
      method: 'POST',
      // Per attempt: the timestamp (and so the signature) is fresh on every retry.
      headers: buildHeaders(opts, body),
      body,
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new AttemptFailed(describeError(err), true);
  }
  if (res.status >= 200 && res.status < 300) return res.status;
  throw new AttemptFailed(
    `HTTP ${res.status}`,
    retryableStatus(res.status),
    parseRetryAfter(headerValue(res.headers, 'retry-after')),
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
