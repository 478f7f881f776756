import { abortError, CertpilotError, type ErrorCode } from '../../../core/errors';
import { throwIfAborted, withDeadline } from '../../../core/abort';
import { registerSecret, redactText } from '../../../core/redact';
import { parseRetryAfter, retry } from '../../../core/retry';
import { headerValue, httpRequest, type HttpResponse } from '../../../core/http';
import { configuredHostLookup } from '../../host-lookup';
import type { Logger } from '../../../core/logger';
import type { DnsProvider, ProviderContext, TxtRecord } from '../../provider';
// Generic helpers (TXT presentation format, shared cancellable lookups) that live with the Route 53 provider.
import { SharedLookupCache } from '../../single-flight';
import { decodeTxtValue } from '../../txt';
import { CLOUDFLARE_API_BASE, CLOUDFLARE_DEFAULT_MAX_RETRIES } from './options';

const COMPONENT = 'cloudflare';
/** Cloudflare rejects TTLs under 60 s outside Enterprise plans (1 means "automatic"). */
const MIN_TTL = 60;
const MAX_TTL = 86_400;
/** The API's largest page for DNS records and zones. */
const PER_PAGE = 100;
const PER_PAGE_ZONES = 50;
/** Cloudflare's codes for "that is already so": an identical record exists / the record is gone. */
const CODE_IDENTICAL_RECORD = 81058;
const CODE_RECORD_NOT_FOUND = 81044;

export interface CloudflareTuning {
  /** Longest wait for one Retry-After; a server asking for more gets this much and then is asked again. */
  readonly retryAfterCapMs: number;
  /** Backoff base when a 429/5xx carries no Retry-After (full jitter over base * 2^attempt). */
  readonly retryBaseMs: number;
  readonly zoneCacheMs: number;
}

export const DEFAULT_CLOUDFLARE_TUNING: CloudflareTuning = {
  retryAfterCapMs: 60_000,
  retryBaseMs: 1_000,
  zoneCacheMs: 5 * 60_000,
};

interface CfError {
  code?: number;
  message?: string;
}

interface CfEnvelope<T> {
  success?: boolean;
  errors?: CfError[];
  result?: T;
  result_info?: {
    page?: number;
    per_page?: number;
    total_pages?: number;
    count?: number;
    total_count?: number;
  };
}

interface CfZone {
  id: string;
  name: string;
  status?: string;
}

interface CfRecord {
  id: string;
  type: string;
  name: string;
  content: string;
  ttl?: number;
}

/** An API answer that is not success; `errors` are Cloudflare's own. */
class CloudflareApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly CfError[],
  ) {
    super(errors.map((e) => `${e.code ?? '?'} ${e.message ?? ''}`.trim()).join('; ') || `HTTP ${status}`);
  }
  has(code: number): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

export interface CloudflareStats {
  /** Requests retried after 429, 5xx or a network error. */
  retries: number;
}

function toFqdn(name: string, zone: string): string {
  const z = zone.replace(/\.$/, '').toLowerCase();
  const n = name.replace(/\.$/, '').toLowerCase();
  return n === '@' || n === '' ? z : `${n}.${z}`;
}

/** Cloudflare stores TXT content quoted (`"v"`) or, for records made by older clients, bare. */
function contentValue(content: string): string {
  return content.trimStart().startsWith('"') ? decodeTxtValue(content) : content;
}

/**
 * Cloudflare keeps every TXT value as its own record with an id, so appending is a plain
 * create (no read-modify-write; concurrent appends cannot lose each other) and deleting is
 * "find the ids whose content is one of our values, delete those".
 */
export class CloudflareProvider implements DnsProvider {
  readonly stats: CloudflareStats = { retries: 0 };
  private readonly token: string;
  private readonly baseUrl: string;
  private readonly zoneId?: string;
  private readonly maxRetries: number;
  private readonly requestTimeoutMs: number;
  private readonly tuning: CloudflareTuning;
  private readonly log: Logger;
  private readonly zones: SharedLookupCache<CfZone | undefined>;

  constructor(
    options: Readonly<Record<string, unknown>>,
    ctx: ProviderContext,
    tuning: Partial<CloudflareTuning> = {},
  ) {
    const token = options.apiToken;
    if (typeof token !== 'string' || token === '') {
      throw new CertpilotError('CONFIG_INVALID', 'cloudflare: apiToken is required');
    }
    this.token = token;
    // Usually registered already by the config loader; a provider built directly (library use)
    // must be covered too: nothing we echo may contain the token, whatever a server or proxy says.
    registerSecret(token);
    this.baseUrl = (
      typeof options.baseUrl === 'string' && options.baseUrl !== '' ? options.baseUrl : CLOUDFLARE_API_BASE
    ).replace(/\/+$/, '');
    this.zoneId = typeof options.zoneId === 'string' && options.zoneId !== '' ? options.zoneId : undefined;
    this.maxRetries =
      typeof options.maxRetries === 'number' ? options.maxRetries : CLOUDFLARE_DEFAULT_MAX_RETRIES;
    this.requestTimeoutMs = ctx.requestTimeoutMs;
    this.tuning = { ...DEFAULT_CLOUDFLARE_TUNING, ...tuning };
    // Shared by concurrent callers: its own deadline, cancelled when the last caller gives up.
    this.zones = new SharedLookupCache(
      (name, s) => this.listZonesNamed(name, s),
      this.requestTimeoutMs * (this.maxRetries + 2),
      this.tuning.zoneCacheMs,
      COMPONENT,
    );
    this.log = ctx.log.child({ provider: COMPONENT, instance: ctx.instance });
  }

  async appendRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    throwIfAborted(signal, COMPONENT);
    for (const [fqdn, group] of groupByName(zone, records)) {
      const zoneId = await this.findZoneId(fqdn, signal);
      // Skip values already there: Cloudflare may not see `v` and `"v"` as identical records.
      const present = new Set((await this.listTxt(zoneId, fqdn, signal)).map((r) => contentValue(r.content)));
      for (const r of group) {
        if (present.has(r.value)) continue;
        try {
          await this.request<CfRecord>(
            'POST',
            `/zones/${encodeURIComponent(zoneId)}/dns_records`,
            undefined,
            {
              type: 'TXT',
              name: fqdn,
              // Quoted as the API documents for TXT content; Cloudflare splits long values itself.
              content: '"' + r.value.replace(/["\\]/g, (c) => '\\' + c) + '"',
              ttl: Math.min(MAX_TTL, Math.max(MIN_TTL, r.ttl)),
              comment: 'certpilot ACME challenge',
            },
            signal,
            `create TXT ${fqdn}`,
          );
        } catch (err) {
          // A concurrent append of the same value got there first: already present is success.
          if (
            err instanceof CertpilotError &&
            (err.cause as CloudflareApiError | undefined)?.has?.(CODE_IDENTICAL_RECORD)
          )
            continue;
          throw err;
        }
        present.add(r.value);
      }
    }
    return records;
  }

  async deleteRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    throwIfAborted(signal, COMPONENT);
    for (const [fqdn, group] of groupByName(zone, records)) {
      const zoneId = await this.findZoneId(fqdn, signal);
      const ours = new Set(group.map((r) => r.value));
      const matching = (await this.listTxt(zoneId, fqdn, signal)).filter((r) =>
        ours.has(contentValue(r.content)),
      );
      for (const rec of matching) {
        try {
          await this.request(
            'DELETE',
            `/zones/${encodeURIComponent(zoneId)}/dns_records/${encodeURIComponent(rec.id)}`,
            undefined,
            undefined,
            signal,
            `delete TXT ${fqdn}`,
          );
        } catch (err) {
          // Someone (a concurrent cleanup) deleted it already: absent is success.
          const cause =
            err instanceof CertpilotError ? (err.cause as CloudflareApiError | undefined) : undefined;
          if (
            cause instanceof CloudflareApiError &&
            (cause.status === 404 || cause.has(CODE_RECORD_NOT_FOUND))
          )
            continue;
          throw err;
        }
      }
    }
    return records;
  }

  /** All TXT records at exactly `fqdn`, across pages. */
  private async listTxt(zoneId: string, fqdn: string, signal: AbortSignal): Promise<CfRecord[]> {
    const out: CfRecord[] = [];
    for (let page = 1; ; page++) {
      const res = await this.request<CfRecord[]>(
        'GET',
        `/zones/${encodeURIComponent(zoneId)}/dns_records`,
        { type: 'TXT', name: fqdn, page: String(page), per_page: String(PER_PAGE) },
        undefined,
        signal,
        `list TXT ${fqdn}`,
      );
      const batch = res.result ?? [];
      // `name` is an exact filter on the API; checking again costs nothing and guards a proxy that ignores it.
      out.push(...batch.filter((r) => r.type === 'TXT' && r.name.toLowerCase() === fqdn));
      const totalPages = res.result_info?.total_pages ?? 1;
      if (batch.length === 0 || page >= totalPages) return out;
    }
  }

  private async findZoneId(fqdn: string, signal: AbortSignal): Promise<string> {
    if (this.zoneId) return this.zoneId;
    const labels = fqdn.split('.');
    // Deepest first, label by label, so `ample.test` never matches `example.test`.
    for (let i = 0; i < labels.length - 1; i++) {
      const zone = await this.lookupZone(labels.slice(i).join('.'), signal);
      if (zone) return zone.id;
    }
    throw new CertpilotError(
      'DNS_ZONE_NOT_FOUND',
      `cloudflare: no zone visible to this API token contains ${fqdn} (the token needs Zone:Read, or set zoneId)`,
      { details: { fqdn } },
    );
  }

  private lookupZone(name: string, signal: AbortSignal): Promise<CfZone | undefined> {
    return this.zones.get(name, signal);
  }

  private async listZonesNamed(name: string, signal: AbortSignal): Promise<CfZone | undefined> {
    const found: CfZone[] = [];
    for (let page = 1; ; page++) {
      const res = await this.request<CfZone[]>(
        'GET',
        '/zones',
        { name, page: String(page), per_page: String(PER_PAGE_ZONES) },
        undefined,
        signal,
        `find zone ${name}`,
      );
      const batch = res.result ?? [];
      found.push(...batch.filter((z) => z.name.toLowerCase() === name));
      const totalPages = res.result_info?.total_pages ?? 1;
      if (batch.length === 0 || page >= totalPages) break;
    }
    // A name can be in several accounts the token sees (e.g. a pending move): prefer the active one.
    return found.find((z) => z.status === undefined || z.status === 'active') ?? found[0];
  }

  /**
   * One API call; 429 (Retry-After, capped at retryAfterCapMs), 5xx and network errors are
   * retried up to `maxRetries` times by the shared retry loop (src/core/retry.ts).
   */
  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    query: Record<string, string> | undefined,
    body: unknown,
    signal: AbortSignal,
    what: string,
  ): Promise<CfEnvelope<T>> {
    const url = `${this.baseUrl}${path}${query ? '?' + new URLSearchParams(query).toString() : ''}`;
    try {
      return await retry((attempt) => this.attempt<T>(method, url, body, signal, what, attempt), {
        attempts: this.maxRetries + 1,
        baseMs: this.tuning.retryBaseMs,
        maxMs: this.tuning.retryAfterCapMs,
        signal,
        component: COMPONENT,
        retryable: (err) =>
          err instanceof TransientFailure
            ? err.afterMs === undefined
              ? true
              : { afterMs: err.afterMs }
            : false,
        onRetry: ({ attempt, delayMs, error }) => {
          this.stats.retries++;
          const reason = (error as TransientFailure).reason;
          this.log.info('retrying', { what, reason, attempt, delayMs: Math.round(delayMs) });
        },
      });
    } catch (err) {
      throw err instanceof TransientFailure ? err.final : err;
    }
  }

  /** One try of `request`: the envelope, or a TransientFailure (worth another try) or a final error. */
  private async attempt<T>(
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    body: unknown,
    signal: AbortSignal,
    what: string,
    attempt: number,
  ): Promise<CfEnvelope<T>> {
    const requestSignal = withDeadline(signal, this.requestTimeoutMs);
    let res: HttpResponse;
    let text: string;
    // node:http(s) rather than fetch: dns.resolvers, when set, must resolve the API host too.
    const lookup = configuredHostLookup();
    try {
      res = await httpRequest({
        url,
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        timeoutMs: this.requestTimeoutMs,
        signal: requestSignal,
        ...(lookup ? { lookup } : {}),
      });
      text = res.body.toString('utf8');
    } catch (err) {
      if (signal.aborted) throw abortError(COMPONENT, signal);
      const reason = requestSignal.aborted ? 'request timeout' : redactText(describeFetchError(err));
      const final = new CertpilotError(
        'DNS_UPDATE_FAILED',
        `cloudflare: ${what} failed after ${attempt - 1} retries: ${reason}`,
        { cause: err, retryable: true },
      );
      throw new TransientFailure(final, reason);
    }
    let json: CfEnvelope<T> | undefined;
    try {
      json = JSON.parse(text) as CfEnvelope<T>;
    } catch {
      json = undefined;
    }
    if (res.status >= 200 && res.status < 300 && json && json.success !== false) return json;
    const final = this.fail(new CloudflareApiError(res.status, json?.errors ?? []), what);
    if (res.status === 429 || res.status >= 500) {
      throw new TransientFailure(
        final,
        `HTTP ${res.status}`,
        parseRetryAfter(headerValue(res.headers, 'retry-after')),
      );
    }
    throw final;
  }

  private fail(err: CloudflareApiError, what: string): CertpilotError {
    const auth = err.status === 401 || err.status === 403;
    const code: ErrorCode =
      err.status === 404 && what.startsWith('find zone') ? 'DNS_ZONE_NOT_FOUND' : 'DNS_UPDATE_FAILED';
    const hint = auth ? ' (the API token needs Zone:Read and DNS:Edit on this zone)' : '';
    return new CertpilotError(
      code,
      `cloudflare: ${what} failed (HTTP ${err.status}): ${redactText(err.message)}${hint}`,
      {
        cause: err,
        retryable: err.status === 429 || err.status >= 500,
        details: { status: err.status, errors: err.errors.map((e) => e.code) },
      },
    );
  }
}

function groupByName(zone: string, records: readonly TxtRecord[]): Map<string, TxtRecord[]> {
  const byName = new Map<string, TxtRecord[]>();
  for (const r of records) {
    const fqdn = toFqdn(r.name, zone);
    const list = byName.get(fqdn) ?? [];
    if (!list.some((x) => x.value === r.value)) list.push(r);
    byName.set(fqdn, list);
  }
  return byName;
}

/**
 * A failed try worth repeating (429, 5xx, network): `final` is what the caller gets if no try
 * is left, `reason` what the retry log line says, `afterMs` the server's Retry-After.
 */
class TransientFailure extends Error {
  constructor(
    readonly final: CertpilotError,
    readonly reason: string,
    readonly afterMs?: number,
  ) {
    super(final.message);
    this.name = 'TransientFailure';
  }
}

function describeFetchError(err: unknown): string {
  // undici hides the socket error in `cause` behind "fetch failed".
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const base = err instanceof Error ? err.message : String(err);
  if (cause && typeof cause.message === 'string')
    return `${base}: ${typeof cause.code === 'string' ? cause.code + ' ' : ''}${cause.message}`;
  return base;
}
