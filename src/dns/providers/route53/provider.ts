import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type Change,
  type ChangeResourceRecordSetsCommandOutput,
  type GetChangeCommandOutput,
  type ListHostedZonesByNameCommandOutput,
  type ListResourceRecordSetsCommandOutput,
  type ResourceRecordSet,
  type Route53ClientConfig,
} from '@aws-sdk/client-route-53';
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { abortError, CertpilotError, type ErrorCode } from '../../../core/errors';
import { sleep, throwIfAborted, withDeadline } from '../../../core/abort';
import { retry } from '../../../core/retry';
import type { Logger } from '../../../core/logger';
import type { DnsProvider, ProviderContext, TxtRecord } from '../../provider';
import { ROUTE53_DEFAULT_MAX_RETRIES } from './options';
import http from 'node:http';
import https from 'node:https';
import { SharedLookupCache } from '../../single-flight';
import { configuredHostLookup } from '../../host-lookup';
import { decodeTxtValue, encodeTxtValue, normalizeDnsName } from '../../txt';

const COMPONENT = 'route53';

/** Knobs that are not user options; tests shrink the delays so retries run in milliseconds. */
export interface Route53Tuning {
  /** First backoff step of our own retries; full jitter over base * 2^attempt. */
  readonly retryBaseMs: number;
  readonly retryCapMs: number;
  /** How often GetChange is polled until INSYNC. */
  readonly insyncPollMs: number;
  /**
   * How long to wait for INSYNC. Past it we warn and return: the solver's authoritative
   * propagation check is the real gate, and failing here would leave a half-done change unexplained.
   */
  readonly insyncTimeoutMs: number;
  /** Re-reads after a change batch lost a race with another writer (DELETE no longer matched). */
  readonly conflictRetries: number;
  /** How long a hosted-zone lookup (hit or miss) is remembered. */
  readonly zoneCacheMs: number;
}

export const DEFAULT_ROUTE53_TUNING: Route53Tuning = {
  retryBaseMs: 1_000,
  retryCapMs: 30_000,
  // Route 53 changes usually reach INSYNC in well under a minute; GetChange is rate limited like everything else.
  insyncPollMs: 5_000,
  insyncTimeoutMs: 120_000,
  conflictRetries: 5,
  zoneCacheMs: 5 * 60_000,
};

/** Error names that mean "try again later". The SDK retries these too, but only 3 times. */
const RETRYABLE_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'PriorRequestNotComplete',
  'RequestThrottled',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalError',
  'RequestTimeout',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation']);
const CREDENTIALS_INVALID = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'ExpiredToken',
  'ExpiredTokenException',
  'CredentialsProviderError',
]);

type Operation =
  'ListHostedZonesByName' | 'ListResourceRecordSets' | 'ChangeResourceRecordSets' | 'GetChange';

interface HostedZoneRef {
  /** Bare id: `Z0123456789ABC`. */
  readonly id: string;
  /** Zone name without trailing dot; `undefined` when configured by id only. */
  readonly name?: string;
}

/** One TXT record set as read from Route 53: the raw values are kept verbatim so a DELETE matches exactly. */
interface TxtSet {
  readonly ttl: number;
  readonly raw: readonly string[];
}

interface NameWork {
  readonly fqdn: string;
  readonly values: readonly string[];
  readonly ttl: number;
}

type Mode = 'append' | 'delete';

/** What this provider has had to do beyond the happy path; tests and metrics read it. */
export interface Route53Stats {
  /** Retried requests: the SDK's own retries plus ours. */
  retries: number;
  /** Change batches that lost a race with another writer and were rebuilt from a fresh read. */
  conflicts: number;
}

function str(options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = options[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function errName(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; code?: unknown; Code?: unknown };
    for (const k of [e.name, e.code, e.Code]) if (typeof k === 'string' && k !== 'Error') return k;
  }
  return 'Error';
}

function errMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  // AWS messages name the caller's ARN at most, never keys; still, keep them short.
  return m.length > 400 ? m.slice(0, 400) + '...' : m;
}

function httpStatus(err: unknown): number | undefined {
  const s = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof s === 'number' ? s : undefined;
}

/** A bounded async mutex per key: concurrent appends to one name in this process must not lose values. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Acquires all keys in sorted order (no deadlock between overlapping batches); returns the release. */
  async acquire(keys: readonly string[], signal: AbortSignal): Promise<() => void> {
    const releases: (() => void)[] = [];
    try {
      for (const key of [...new Set(keys)].sort()) releases.push(await this.acquireOne(key, signal));
    } catch (err) {
      for (const r of releases.reverse()) r();
      throw err;
    }
    return () => {
      for (const r of releases.reverse()) r();
    };
  }

  private async acquireOne(key: string, signal: AbortSignal): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    if (signal.aborted) {
      // Keep the chain intact: our slot is released as soon as we would have had it.
      void prev.then(release);
      throw abortError(COMPONENT, signal);
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        void prev.then(release);
        reject(abortError(COMPONENT, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void prev.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
    return release;
  }
}

/**
 * Route 53 provider. Route 53 keeps all TXT values of one name in one record set and has no
 * "add a value" call, so every write is read-modify-write. Two defences keep values from being
 * lost (apex and wildcard share `_acme-challenge.<name>`, and an UPSERT replaces the whole set):
 * - inside this process, writers to the same zone+name are serialised by a mutex;
 * - across processes, a changed set is written as `DELETE <exact set read>` + `CREATE <new set>`
 *   in one atomic change batch instead of an UPSERT. If anyone changed the set since our read,
 *   the DELETE no longer matches, Route 53 rejects the whole batch (InvalidChangeBatch), and we
 *   re-read and try again. An UPSERT would silently overwrite the other writer's values.
 */
export class Route53Provider implements DnsProvider {
  readonly stats: Route53Stats = { retries: 0, conflicts: 0 };
  private readonly client: Route53Client;
  private readonly log: Logger;
  private readonly tuning: Route53Tuning;
  private readonly maxRetries: number;
  private readonly requestTimeoutMs: number;
  private readonly hostedZoneId?: string;
  private readonly privateZone: boolean;
  private readonly zones: SharedLookupCache<HostedZoneRef | undefined>;
  private readonly mutex = new KeyedMutex();

  constructor(
    options: Readonly<Record<string, unknown>>,
    ctx: ProviderContext,
    tuning: Partial<Route53Tuning> = {},
  ) {
    this.tuning = { ...DEFAULT_ROUTE53_TUNING, ...tuning };
    this.log = ctx.log.child({ provider: COMPONENT, instance: ctx.instance });
    this.requestTimeoutMs = ctx.requestTimeoutMs;
    this.maxRetries =
      typeof options.maxRetries === 'number' ? options.maxRetries : ROUTE53_DEFAULT_MAX_RETRIES;
    this.privateZone = options.privateZone === true;
    const hz = str(options, 'hostedZoneId');
    this.hostedZoneId = hz?.replace(/^\/hostedzone\//, '');
    // Shared by concurrent callers: its own deadline, cancelled when the last caller gives up.
    this.zones = new SharedLookupCache(
      (name, s) => this.listZonesNamed(name, s),
      this.requestTimeoutMs * (this.maxRetries + 2),
      this.tuning.zoneCacheMs,
      COMPONENT,
    );

    const region = str(options, 'region') ?? 'us-east-1';
    const config: Route53ClientConfig = { region, credentials: buildCredentials(options, region) };
    const endpoint = str(options, 'endpoint');
    if (endpoint) config.endpoint = endpoint;
    // dns.resolvers, when set, resolve the API host too: the SDK's NodeHttpHandler takes agents.
    if (configuredHostLookup()) config.requestHandler = lookupHandler();
    this.client = new Route53Client(config);
  }

  async appendRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    await this.apply('append', zone, records, signal);
    return records;
  }

  async deleteRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    await this.apply('delete', zone, records, signal);
    return records;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async apply(
    mode: Mode,
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<void> {
    throwIfAborted(signal, COMPONENT);
    if (records.length === 0) return;
    // Group by FQDN (one record set each), then by hosted zone (one change batch each).
    const byName = new Map<string, { values: string[]; ttl: number }>();
    for (const r of records) {
      const fqdn = toFqdn(r.name, zone);
      const entry = byName.get(fqdn) ?? { values: [], ttl: r.ttl };
      if (!entry.values.includes(r.value)) entry.values.push(r.value);
      entry.ttl = Math.min(entry.ttl, r.ttl);
      byName.set(fqdn, entry);
    }
    const byZone = new Map<string, { zone: HostedZoneRef; work: NameWork[] }>();
    for (const [fqdn, { values, ttl }] of byName) {
      const hz = await this.findHostedZone(fqdn, signal);
      const group = byZone.get(hz.id) ?? { zone: hz, work: [] };
      group.work.push({ fqdn, values, ttl });
      byZone.set(hz.id, group);
    }
    for (const { zone: hz, work } of byZone.values()) await this.changeZone(mode, hz, work, signal);
  }

  /** Read, merge, write one change batch for `work` in hosted zone `hz`, retrying lost races. */
  private async changeZone(
    mode: Mode,
    hz: HostedZoneRef,
    work: readonly NameWork[],
    signal: AbortSignal,
  ): Promise<void> {
    const release = await this.mutex.acquire(
      work.map((w) => `${hz.id}|${w.fqdn}`),
      signal,
    );
    try {
      for (let attempt = 0; ; attempt++) {
        const changes: Change[] = [];
        for (const w of work) {
          const current = await this.readTxtSet(hz, w.fqdn, signal);
          changes.push(...planChanges(mode, w, current));
        }
        if (changes.length === 0) return; // already as wanted: idempotent, and no write needed
        let changeId: string;
        try {
          const out = await this.send<ChangeResourceRecordSetsCommandOutput>(
            'ChangeResourceRecordSets',
            new ChangeResourceRecordSetsCommand({
              HostedZoneId: hz.id,
              ChangeBatch: { Comment: `certpilot ${mode}`, Changes: changes },
            }),
            signal,
            `hostedzone/${hz.id}`,
          );
          changeId = (out.ChangeInfo?.Id ?? '').replace(/^\/change\//, '');
        } catch (err) {
          const cause = (err as { cause?: unknown }).cause;
          if (err instanceof CertpilotError && errName(cause) === 'InvalidChangeBatch' && isConflict(cause)) {
            if (attempt < this.tuning.conflictRetries) {
              this.stats.conflicts++;
              this.log.info('record set changed while we wrote it; re-reading', {
                zone: hz.name ?? hz.id,
                names: work.map((w) => w.fqdn),
                attempt: attempt + 1,
              });
              continue;
            }
          }
          throw err;
        }
        this.log.debug('change submitted', {
          zone: hz.name ?? hz.id,
          change: changeId,
          mode,
          changes: changes.length,
        });
        if (changeId) await this.waitInsync(changeId, signal);
        return;
      }
    } finally {
      release();
    }
  }

  private async readTxtSet(
    hz: HostedZoneRef,
    fqdn: string,
    signal: AbortSignal,
  ): Promise<TxtSet | undefined> {
    // Record sets are listed in name, then type order starting at (name, TXT): the first entries
    // are ours if the set exists. Weighted/latency sets (SetIdentifier) are not ours to touch.
    const out = await this.send<ListResourceRecordSetsCommandOutput>(
      'ListResourceRecordSets',
      new ListResourceRecordSetsCommand({
        HostedZoneId: hz.id,
        StartRecordName: fqdn + '.',
        StartRecordType: 'TXT',
        MaxItems: 10,
      }),
      signal,
      `hostedzone/${hz.id}`,
    );
    const set = (out.ResourceRecordSets ?? []).find(
      (s: ResourceRecordSet) =>
        s.Type === 'TXT' && !s.SetIdentifier && !s.AliasTarget && normalizeDnsName(s.Name ?? '') === fqdn,
    );
    if (!set) return undefined;
    return {
      ttl: set.TTL ?? 300,
      raw: (set.ResourceRecords ?? []).map((r) => r.Value ?? '').filter((v) => v !== ''),
    };
  }

  private async waitInsync(changeId: string, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    for (;;) {
      const out = await this.send<GetChangeCommandOutput>(
        'GetChange',
        new GetChangeCommand({ Id: changeId }),
        signal,
        `change/${changeId}`,
      );
      if (out.ChangeInfo?.Status === 'INSYNC') return;
      if (Date.now() - started + this.tuning.insyncPollMs > this.tuning.insyncTimeoutMs) {
        this.log.warn('change not INSYNC in time; continuing, the propagation check decides', {
          change: changeId,
          waitedMs: Date.now() - started,
        });
        return;
      }
      await sleep(this.tuning.insyncPollMs, signal, COMPONENT);
    }
  }

  /** The hosted zone for `fqdn`: the configured id, or the deepest zone whose name contains it. */
  private async findHostedZone(fqdn: string, signal: AbortSignal): Promise<HostedZoneRef> {
    if (this.hostedZoneId) return { id: this.hostedZoneId };
    const labels = fqdn.split('.');
    // Deepest first, label by label, so `ample.test` never matches `example.test`.
    for (let i = 0; i < labels.length; i++) {
      const candidate = labels.slice(i).join('.');
      const hz = await this.lookupZone(candidate, signal);
      if (hz) return hz;
    }
    throw new CertpilotError(
      'DNS_ZONE_NOT_FOUND',
      `route53: no ${this.privateZone ? '' : 'public '}hosted zone contains ${fqdn}` +
        (this.privateZone ? '' : ' (private zones are skipped unless privateZone is set)'),
      { details: { fqdn } },
    );
  }

  private lookupZone(name: string, signal: AbortSignal): Promise<HostedZoneRef | undefined> {
    return this.zones.get(name, signal);
  }

  private async listZonesNamed(name: string, signal: AbortSignal): Promise<HostedZoneRef | undefined> {
    const matches: { id: string; private: boolean }[] = [];
    let dnsName: string | undefined = name + '.';
    let startId: string | undefined;
    // Zones come sorted by reversed labels starting at DNSName; only the first entries can match,
    // and several zones may share a name (public + private, or private ones in several VPCs).
    while (dnsName) {
      const out: ListHostedZonesByNameCommandOutput = await this.send<ListHostedZonesByNameCommandOutput>(
        'ListHostedZonesByName',
        new ListHostedZonesByNameCommand({ DNSName: dnsName, HostedZoneId: startId, MaxItems: 100 }),
        signal,
        '*',
      );
      let past = false;
      for (const z of out.HostedZones ?? []) {
        if (normalizeDnsName(z.Name ?? '') !== name) {
          past = true;
          break;
        }
        matches.push({
          id: (z.Id ?? '').replace(/^\/hostedzone\//, ''),
          private: z.Config?.PrivateZone === true,
        });
      }
      if (past || !out.IsTruncated || normalizeDnsName(out.NextDNSName ?? '') !== name) break;
      dnsName = out.NextDNSName;
      startId = out.NextHostedZoneId;
    }
    const usable = this.privateZone
      ? [...matches.filter((m) => m.private), ...matches.filter((m) => !m.private)]
      : matches.filter((m) => !m.private);
    if (usable.length === 0) return undefined;
    const best = usable.filter((m) => m.private === usable[0].private);
    if (best.length > 1) {
      throw new CertpilotError(
        'DNS_ZONE_NOT_FOUND',
        `route53: ${best.length} ${best[0].private ? 'private' : 'public'} hosted zones are named ${name} ` +
          `(${best.map((b) => b.id).join(', ')}); set hostedZoneId`,
      );
    }
    return { id: best[0].id, name };
  }

  /**
   * One API call with the SDK's own retries, then ours (the shared retry loop: exponential
   * backoff with full jitter, bounded by `maxRetries` and the signal). Errors come out as
   * CertpilotError `route53: ...`.
   */
  private async send<T extends { $metadata?: { attempts?: number } }>(
    op: Operation,
    command: { input: unknown },
    signal: AbortSignal,
    resource: string,
  ): Promise<T> {
    let retries = 0;
    try {
      return await retry(
        async (attempt) => {
          retries = attempt - 1;
          const requestSignal = withDeadline(signal, this.requestTimeoutMs);
          try {
            // The SDK's send() is overloaded per command; the union of our four is what we pass.
            const out = (await this.client.send(command as never, { abortSignal: requestSignal })) as T;
            this.countSdkRetries(out);
            return out;
          } catch (err) {
            if (signal.aborted) throw abortError(COMPONENT, signal);
            this.countSdkRetries(err);
            throw new FailedCall(err, requestSignal.aborted);
          }
        },
        {
          attempts: this.maxRetries + 1,
          baseMs: this.tuning.retryBaseMs,
          maxMs: this.tuning.retryCapMs,
          signal,
          component: COMPONENT,
          retryable: (err) => err instanceof FailedCall && (err.timedOut || isRetryable(err.cause)),
          onRetry: ({ attempt, error }) => {
            this.stats.retries++;
            const { cause, timedOut } = error as FailedCall;
            this.log.info('retrying', {
              operation: op,
              error: timedOut ? 'request timeout' : errName(cause),
              attempt,
            });
          },
        },
      );
    } catch (err) {
      if (!(err instanceof FailedCall)) throw err;
      throw mapError(err.cause, op, resource, retries, err.timedOut);
    }
  }

  private countSdkRetries(outOrErr: unknown): void {
    const attempts = (outOrErr as { $metadata?: { attempts?: unknown } } | undefined)?.$metadata?.attempts;
    if (typeof attempts === 'number' && attempts > 1) this.stats.retries += attempts - 1;
  }
}

function toFqdn(name: string, zone: string): string {
  const z = zone.replace(/\.$/, '').toLowerCase();
  const n = name.replace(/\.$/, '').toLowerCase();
  return n === '@' || n === '' ? z : `${n}.${z}`;
}

/** The changes that turn `current` into the wanted set, or none when it already is. */
function planChanges(mode: Mode, w: NameWork, current: TxtSet | undefined): Change[] {
  const raw = current?.raw ?? [];
  const present = new Set(raw.map(decodeTxtValue));
  let next: string[];
  if (mode === 'append') {
    const missing = w.values.filter((v) => !present.has(v));
    if (missing.length === 0) return [];
    next = [...raw, ...missing.map(encodeTxtValue)];
  } else {
    const drop = new Set(w.values);
    next = raw.filter((r) => !drop.has(decodeTxtValue(r)));
    if (next.length === raw.length) return []; // nothing of ours there: deleting absent values succeeds
  }
  const changes: Change[] = [];
  const name = w.fqdn + '.';
  if (current) {
    changes.push({
      Action: 'DELETE',
      ResourceRecordSet: {
        Name: name,
        Type: 'TXT',
        TTL: current.ttl,
        ResourceRecords: raw.map((Value) => ({ Value })),
      },
    });
  }
  if (next.length > 0) {
    changes.push({
      Action: 'CREATE',
      // Other values keep the set's TTL; a new set gets ours.
      ResourceRecordSet: {
        Name: name,
        Type: 'TXT',
        TTL: current?.ttl ?? w.ttl,
        ResourceRecords: next.map((Value) => ({ Value })),
      },
    });
  }
  return changes;
}

/** InvalidChangeBatch messages that mean "the set is not what you read", not "your request is wrong". */
function isConflict(err: unknown): boolean {
  return /not found|do not match|already exists/i.test(errMessage(err));
}

/** One failed SDK call, and whether it failed by running out of time (our per-request deadline). */
class FailedCall extends Error {
  constructor(
    override readonly cause: unknown,
    readonly timedOut: boolean,
  ) {
    super(errMessage(cause));
    this.name = 'FailedCall';
  }
}

function isRetryable(err: unknown): boolean {
  const status = httpStatus(err);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (RETRYABLE_NAMES.has(errName(err))) return true;
  return (err as { $retryable?: unknown } | undefined)?.$retryable !== undefined;
}

function permissionOf(op: Operation, resource: string): string {
  return resource === '*' ? `route53:${op}` : `route53:${op} on ${resource}`;
}

function mapError(
  err: unknown,
  op: Operation,
  resource: string,
  retries: number,
  timedOut: boolean,
): CertpilotError {
  const name = errName(err);
  const msg = errMessage(err);
  const details = { operation: op, resource, awsError: name, status: httpStatus(err) };
  const fail = (code: ErrorCode, message: string, retryable = false): CertpilotError =>
    new CertpilotError(code, message, { cause: err, retryable, details });
  // Before the 403 check: a bad signature or expired token is also a 403, but no missing permission.
  if (CREDENTIALS_INVALID.has(name)) {
    return fail('DNS_UPDATE_FAILED', `route53: credentials rejected calling ${op} (${name}: ${msg})`);
  }
  if (ACCESS_DENIED.has(name) || httpStatus(err) === 403) {
    return fail(
      'DNS_UPDATE_FAILED',
      `route53: access denied: missing permission ${permissionOf(op, resource)} (${msg})`,
    );
  }
  if (name === 'NoSuchHostedZone') {
    return fail(
      'DNS_ZONE_NOT_FOUND',
      `route53: hosted zone ${resource.replace(/^hostedzone\//, '')} does not exist (${msg})`,
    );
  }
  if (name === 'InvalidChangeBatch') {
    return fail('DNS_UPDATE_FAILED', `route53: change rejected in ${resource}: ${msg}`);
  }
  if (timedOut || isRetryable(err)) {
    return fail(
      'DNS_UPDATE_FAILED',
      `route53: ${op} still failing after ${retries} retries (${timedOut ? 'request timeout' : `${name}: ${msg}`})`,
      true,
    );
  }
  return fail('DNS_UPDATE_FAILED', `route53: ${op} failed: ${name}: ${msg}`);
}

/**
 * Credentials: static keys when given; otherwise the SDK default chain (env, shared files with
 * `profile`, SSO, web identity, container and instance roles). With `roleArn`, those become
 * the source credentials of an STS AssumeRole whose temporary credentials are refreshed as needed.
 */
function buildCredentials(
  options: Readonly<Record<string, unknown>>,
  region: string,
): Route53ClientConfig['credentials'] {
  const accessKeyId = str(options, 'accessKeyId');
  const secretAccessKey = str(options, 'secretAccessKey');
  const sessionToken = str(options, 'sessionToken');
  const profile = str(options, 'profile');
  const roleArn = str(options, 'roleArn');
  let base: Route53ClientConfig['credentials'];
  if (accessKeyId && secretAccessKey) base = { accessKeyId, secretAccessKey, sessionToken };
  else if (profile) base = fromNodeProviderChain({ profile, clientConfig: { region } });
  if (!roleArn) return base;
  const stsEndpoint = str(options, 'stsEndpoint');
  return fromTemporaryCredentials({
    masterCredentials: base,
    params: {
      RoleArn: roleArn,
      RoleSessionName: str(options, 'sessionName') ?? 'certpilot',
      ExternalId: str(options, 'externalId'),
    },
    clientConfig: {
      region,
      ...(stsEndpoint ? { endpoint: stsEndpoint } : {}),
      ...(configuredHostLookup() ? { requestHandler: lookupHandler() } : {}),
    },
  });
}

/** The SDK's NodeHttpHandler options with agents resolving through dns.resolvers (set when called). */
function lookupHandler(): NonNullable<Route53ClientConfig['requestHandler']> {
  const lookup = configuredHostLookup();
  return {
    httpsAgent: new https.Agent({ keepAlive: true, ...(lookup ? { lookup } : {}) }),
    httpAgent: new http.Agent({ keepAlive: true, ...(lookup ? { lookup } : {}) }),
  };
}
