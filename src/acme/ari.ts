import type http from 'node:http';
import { withDeadline } from '../core/abort';
import { CertpilotError, abortError } from '../core/errors';
import { configuredHostLookup } from '../dns/host-lookup';
import type { CertInfo } from '../x509';
import { isTlsTrustCode, parseRetryAfter, tlsTrustHint } from './errors';

/**
 * ACME Renewal Information (ARI, RFC 9773). The CA tells each certificate when to renew
 * (a suggested window), which is how it asks for early renewal before a mass revocation and
 * spreads load; renewals inside the window that name the replaced certificate (`replaces`)
 * are exempt from Let's Encrypt's rate limits. acme-client 5.4 knows none of it: the
 * certificate id, the unauthenticated GET and the window choice live here.
 */

/** RFC 9773 §4.3: treat Retry-After under a minute as one minute... */
export const ARI_MIN_RETRY_AFTER_MS = 60_000;
/** ...and over a day as one day (a CA bug must not silence ARI for weeks). */
export const ARI_MAX_RETRY_AFTER_MS = 86_400_000;
/**
 * RFC 9773 §4.3.3: after a long-term error (no or invalid Retry-After, an invalid object, DNS
 * failure, connection refused, a non-5xx HTTP error) ask again after six hours. Also used when
 * a valid answer comes without Retry-After.
 */
export const ARI_LONG_TERM_ERROR_RETRY_MS = 6 * 3_600_000;
/** The answer is a small JSON object; anything larger is not one and is not read further. */
const MAX_BODY_BYTES = 64 * 1024;
/** Default deadline of one renewalInfo or directory GET. */
export const ARI_DEFAULT_TIMEOUT_MS = 30_000;

export interface RenewalWindow {
  start: Date;
  end: Date;
}

export interface RenewalInfo {
  window: RenewalWindow;
  /** A page explaining why the window is what it is (e.g. an incident); log it when present. */
  explanationURL?: string;
  /** When to ask again: the server's Retry-After clamped to [1 min, 1 day], or 6 h when it sent none. */
  retryAfterMs: number;
  /** False when the server sent no usable Retry-After and `retryAfterMs` is the 6-hour default. */
  retryAfterFromServer: boolean;
}

export interface AriRequestOptions {
  signal?: AbortSignal;
  /** Deadline of the request (default 30 s). */
  timeoutMs?: number;
  /** CA certificates (PEM) trusted besides the default roots, as for `acme.caBundle`. */
  ca?: string | readonly string[];
  /** Reuse a keep-alive agent (its own `ca` applies). */
  agent?: http.Agent;
  /** Clock for HTTP-date Retry-After values. */
  now?: () => number;
}

function base64url(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64url');
}

/**
 * RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(DER serial content), unpadded. The
 * serial keeps its leading 00 octet when the top bit is set (the DER INTEGER content bytes,
 * which is what CertInfo.serialDer holds), e.g. 69:88:5B:...:C8:D4 and 00:87:65:43:21 give
 * "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
 */
export function ariCertId(info: Pick<CertInfo, 'authorityKeyId' | 'serialDer'>): string {
  if (!info.authorityKeyId) {
    throw new CertpilotError(
      'X509_PARSE',
      'ari: the certificate has no Authority Key Identifier keyIdentifier, so it has no ARI id',
    );
  }
  if (!info.serialDer) throw new CertpilotError('X509_PARSE', 'ari: the certificate serial is unknown');
  return `${base64url(info.authorityKeyId)}.${base64url(info.serialDer)}`;
}

/** The certificate id, or undefined when the certificate cannot have one (no AKI: self-signed, odd CAs). */
export function tryAriCertId(info: Pick<CertInfo, 'authorityKeyId' | 'serialDer'>): string | undefined {
  return info.authorityKeyId && info.serialDer ? ariCertId(info) : undefined;
}

/** Clamps a Retry-After to RFC 9773 §4.3's bounds. */
export function clampAriRetryAfter(ms: number): number {
  return Math.min(ARI_MAX_RETRY_AFTER_MS, Math.max(ARI_MIN_RETRY_AFTER_MS, ms));
}

/**
 * A uniformly random time in [start, end) (RFC 9773 §4.2), or `now` when that time has
 * already passed (the window is in the past or we are inside it and drew an earlier time).
 * `random` is injected so tests are deterministic.
 */
export function pickRenewalTime(window: RenewalWindow, now: Date, random: () => number = Math.random): Date {
  const start = window.start.getTime();
  const span = Math.max(0, window.end.getTime() - start);
  const at = start + Math.floor(random() * span);
  return at <= now.getTime() ? new Date(now) : new Date(at);
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One unauthenticated GET with a deadline, the caller's signal and optional extra CAs. */
function httpGet(url: string, opts: AriRequestOptions, component: string): Promise<RawResponse> {
  const signal = withDeadline(opts.signal, opts.timeoutMs ?? ARI_DEFAULT_TIMEOUT_MS);
  const u = new URL(url);
  // Loaded on the first request, not with this module: a renew with nothing due asks no CA.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const mod = (u.protocol === 'http:' ? require('node:http') : require('node:https')) as typeof http;
  const { secureContextTrusting } = require('./trust') as typeof import('./trust');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const ca = opts.ca === undefined ? undefined : typeof opts.ca === 'string' ? opts.ca : opts.ca.join('\n');
  // dns.resolvers, when set, resolve the CA's host name too (never getaddrinfo).
  const lookup = configuredHostLookup();
  return new Promise<RawResponse>((resolve, reject) => {
    if (signal.aborted) return reject(abortError(component, signal));
    const req = mod.request(
      u,
      {
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'certpilot' },
        signal,
        ...(opts.agent ? { agent: opts.agent } : {}),
        ...(lookup ? { lookup } : {}),
        // Added to the default roots, as acme.caBundle is (src/acme/trust.ts).
        ...(ca && u.protocol === 'https:' && !opts.agent ? { secureContext: secureContextTrusting(ca) } : {}),
      },
      (res) => {
        let size = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy(new Error(`response larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err) => reject(signal.aborted ? abortError(component, signal) : err));
    req.end();
  });
}

/** Network errors RFC 9773 §4.3.3 calls temporary; everything else (DNS, refused, TLS) is long-term. */
const TEMPORARY_NETWORK = new Set(['ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN']);

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseWindow(body: string): { window: RenewalWindow; explanationURL?: string } | string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return 'the answer is not JSON';
  }
  const w = (json as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  if (!w || typeof w.start !== 'string' || typeof w.end !== 'string')
    return 'no suggestedWindow with start and end';
  const start = new Date(w.start);
  const end = new Date(w.end);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()))
    return 'suggestedWindow has invalid timestamps';
  // §4.2: a window whose end does not follow its start is invalid and treated as no answer.
  if (end.getTime() <= start.getTime()) return 'suggestedWindow ends before it starts';
  const explanation = (json as { explanationURL?: unknown }).explanationURL;
  return {
    window: { start, end },
    ...(typeof explanation === 'string' ? { explanationURL: explanation } : {}),
  };
}

/**
 * GET `<renewalInfoUrl>/<certId>` (RFC 9773 §4.1; unauthenticated, not POST-as-GET).
 *
 * Throws a CertpilotError whose `details.nextPollMs` says when to ask again: for temporary
 * failures (timeouts, resets, 5xx, 429) `retryable` is true and nextPollMs is the server's
 * Retry-After when it gave one (else undefined: use your backoff); for long-term failures
 * (§4.3.3) `retryable` is false and nextPollMs is six hours. In both cases the caller keeps
 * renewing on its fallback schedule: ARI being down must never stop renewals.
 */
export async function fetchRenewalInfo(
  renewalInfoUrl: string,
  certId: string,
  opts: AriRequestOptions = {},
): Promise<RenewalInfo> {
  const url = `${renewalInfoUrl.replace(/\/+$/, '')}/${encodeURIComponent(certId)}`;
  const component = 'ari';
  const now = opts.now ?? Date.now;
  let res: RawResponse;
  try {
    res = await httpGet(url, opts, component);
  } catch (err) {
    if (err instanceof CertpilotError) {
      // Our own deadline is a timeout (temporary); the caller's cancellation is passed through.
      // (Decided by which signal fired, not by the reason's class: DOMException crosses realms.)
      if ((err.code === 'TIMEOUT' || err.code === 'ABORTED') && !opts.signal?.aborted) {
        throw new CertpilotError('ACME_NETWORK', `ari: ${url}: no answer in time`, {
          cause: err,
          retryable: true,
          details: { url },
        });
      }
      throw err;
    }
    const code = (err as { code?: unknown }).code;
    const temporary = typeof code === 'string' && TEMPORARY_NETWORK.has(code);
    throw new CertpilotError('ACME_NETWORK', `ari: ${url}: ${(err as Error).message}`, {
      cause: err,
      retryable: temporary,
      details: { url, nextPollMs: temporary ? undefined : ARI_LONG_TERM_ERROR_RETRY_MS },
    });
  }

  const retryAfter = parseRetryAfter(header(res.headers, 'retry-after'), now());
  if (res.status !== 200) {
    const temporary = res.status >= 500 || res.status === 429;
    throw new CertpilotError(
      res.status === 429 ? 'ACME_RATE_LIMITED' : 'ACME_PROBLEM',
      `ari: ${url}: HTTP ${res.status}`,
      {
        retryable: temporary,
        details: {
          url,
          status: res.status,
          nextPollMs: temporary
            ? retryAfter === undefined
              ? undefined
              : clampAriRetryAfter(retryAfter)
            : ARI_LONG_TERM_ERROR_RETRY_MS,
        },
      },
    );
  }
  const parsed = parseWindow(res.body);
  if (typeof parsed === 'string') {
    throw new CertpilotError('ACME_PROBLEM', `ari: ${url}: ${parsed}`, {
      retryable: false,
      details: { url, status: res.status, nextPollMs: ARI_LONG_TERM_ERROR_RETRY_MS },
    });
  }
  return {
    ...parsed,
    retryAfterMs: retryAfter === undefined ? ARI_LONG_TERM_ERROR_RETRY_MS : clampAriRetryAfter(retryAfter),
    retryAfterFromServer: retryAfter !== undefined,
  };
}

/** What certpilot reads from an ACME directory beyond RFC 8555's resources. */
export interface DirectoryInfo {
  /** Base URL of the renewalInfo resource; absent = the CA has no ARI. */
  renewalInfo?: string;
  /** `meta.profiles` (draft-aaron-acme-profiles): profile name -> description. Empty = none offered. */
  profiles: Readonly<Record<string, string>>;
  /** `meta.caaIdentities` (RFC 8555 §7.1.1): the issuer domains CAA records must name; absent = not published. */
  caaIdentities?: readonly string[];
}

/** Picks `renewalInfo` and `meta.profiles` out of a directory object, ignoring anything malformed. */
export function parseDirectoryInfo(directory: unknown): DirectoryInfo {
  const d = (typeof directory === 'object' && directory !== null ? directory : {}) as {
    renewalInfo?: unknown;
    meta?: { profiles?: unknown; caaIdentities?: unknown };
  };
  const profiles: Record<string, string> = {};
  const raw = d.meta?.profiles;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const [name, desc] of Object.entries(raw as Record<string, unknown>)) {
      profiles[name] = typeof desc === 'string' ? desc : '';
    }
  }
  return {
    ...(typeof d.renewalInfo === 'string' && d.renewalInfo ? { renewalInfo: d.renewalInfo } : {}),
    profiles,
    ...caaIdentitiesOf(d.meta?.caaIdentities),
  };
}

function caaIdentitiesOf(raw: unknown): { caaIdentities?: string[] } {
  if (!Array.isArray(raw)) return {};
  const ids = raw.filter((x): x is string => typeof x === 'string' && x !== '').map((x) => x.toLowerCase());
  return ids.length > 0 ? { caaIdentities: ids } : {};
}

/**
 * Reads the directory with a plain GET. AcmeService.directoryInfo() reads the same through
 * acme-client's cached copy; this one is for callers without an account (status, `config check`).
 */
export async function fetchDirectoryInfo(
  directoryUrl: string,
  opts: AriRequestOptions = {},
): Promise<DirectoryInfo> {
  let res: RawResponse;
  try {
    res = await httpGet(directoryUrl, opts, 'acme directory');
  } catch (err) {
    if (err instanceof CertpilotError) throw err;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && isTlsTrustCode(code)) {
      throw new CertpilotError(
        'ACME_NETWORK',
        `acme: directory ${directoryUrl}: TLS error: ${code}: ${(err as Error).message}; ${tlsTrustHint(code, directoryUrl)}`,
        { cause: err, retryable: false },
      );
    }
    throw new CertpilotError('ACME_NETWORK', `acme: directory ${directoryUrl}: ${(err as Error).message}`, {
      cause: err,
      retryable: true,
    });
  }
  if (res.status !== 200) {
    throw new CertpilotError('ACME_PROBLEM', `acme: directory ${directoryUrl}: HTTP ${res.status}`, {
      retryable: res.status >= 500,
    });
  }
  try {
    return parseDirectoryInfo(JSON.parse(res.body));
  } catch (err) {
    throw new CertpilotError('ACME_PROBLEM', `acme: directory ${directoryUrl} is not JSON`, { cause: err });
  }
}
