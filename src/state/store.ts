import { CertpilotError } from '../core/errors';
import { isCertificateName } from '../core/names';
import { FileStorage } from '../store/file-storage';
import { SECRET_MODE, type LockHandle, type Storage } from '../store/storage';

/**
 * Persisted scheduling state, one JSON file per certificate under `<stateDir>/state/<name>.json`.
 *
 * Why persisted: a daemon restart or a `certpilot renew` from a timer must not forget that the
 * CA is failing (or else it gets a request every tick: "too many failed authorizations"), that
 * ARI asked us to come back in six hours, or how many certificates were already ordered for
 * this exact set of names this week (lost state and restart loops are how operators hit
 * "too many certificates (5) already issued for this exact set of identifiers").
 *
 * The value is the key `state/<name>.json` of a Storage (src/store/storage.ts; by default the
 * file backend under the state directory), written with an atomic put and only under the
 * certificate's lock (src/store/lock.ts), so the daemon and `renew` never interleave updates.
 * Transitions are pure functions in src/plan/schedule.ts; this module only stores and loads.
 */

/** Bump when the layout changes incompatibly; older files are then read as empty with a warning. */
export const STATE_VERSION = 1;

export interface AriState {
  /** ARI id of the certificate the rest refers to; a different installed certificate voids it. */
  certId: string;
  /** Last valid suggested window. Kept across temporary ARI errors (better than nothing). */
  window?: { start: Date; end: Date };
  explanationURL?: string;
  /** The random time drawn inside `window` (RFC 9773 §4.2); redrawn only when the window changes. */
  chosenAt?: Date;
  /** When to ask the renewalInfo resource again (Retry-After, or error backoff). */
  nextPollAt: Date;
  lastPolledAt?: Date;
  /** Consecutive failed polls, for the exponential backoff of temporary errors. */
  errorCount: number;
  lastError?: string;
}

export interface FailureState {
  /** Consecutive failed renewals; 0 after a success. */
  count: number;
  /** Do not try again before this (backoff, or a rateLimited Retry-After). */
  nextRetryAt?: Date;
  lastFailureAt?: Date;
  lastError?: string;
  lastErrorCode?: string;
  /** True when nextRetryAt came from the CA's Retry-After on a rateLimited problem. */
  rateLimited?: boolean;
  /**
   * SHA-256 of the settings the failure depended on (names, provider and its options, CA,
   * account; secrets enter only through the hash). A different value now means the operator
   * changed something since: the backoff no longer applies (src/renew/fingerprint.ts).
   */
  fingerprint?: string;
}

export interface OrderRecord {
  /** When the CA issued the certificate (what its exact-set limit counts). */
  at: Date;
  /** The names ordered, lower-case, sorted: the "exact set". */
  names: string[];
  /**
   * The CA's directory URL: each CA has its own limits, so a loopback or staging CA's orders
   * never count against a production CA. Absent in records written before it existed (they
   * count against every CA, the safe side).
   */
  ca?: string;
}

export interface GuardState {
  /** End of the guarded period an alert was sent for: one alert per period, across restarts. */
  alertedUntil: Date;
}

export interface SuccessRecord {
  at: Date;
  serial: string;
  notAfter: Date;
  /**
   * The ACME profile this version was ordered with; null: none (the CA's default). Absent: not
   * known (written before profiles were recorded, or a version installed without an order), and
   * an unknown profile never triggers a renewal by itself.
   */
  profile?: string | null;
  /** A `preferred` profile the CA did not offer when this version was ordered (it went without). */
  profileUnavailable?: string;
  /** Directory URL of the CA that issued `serial` (acme.fallback); absent in older records = the primary. */
  ca?: string;
}

export interface CertState {
  name: string;
  ari?: AriState;
  failures: FailureState;
  /** Issuances in the guard window (older ones are pruned on write). */
  orders: OrderRecord[];
  lastSuccess?: SuccessRecord;
  guard?: GuardState;
}

export function emptyState(name: string): CertState {
  return { name, failures: { count: 0 }, orders: [] };
}

/** How long order records are kept: the exact-set limit looks back 7 days; keep a little more for reports. */
export const ORDER_HISTORY_MS = 8 * 86_400_000;
/** Upper bound of records kept whatever their age, so a loop cannot grow the file without bound. */
export const MAX_ORDER_RECORDS = 100;

// ---- (de)serialisation: Dates as ISO strings; anything malformed is dropped, not trusted ----

type Json = Record<string, unknown>;

function date(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function decodeAri(v: unknown): AriState | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const certId = str(o.certId);
  const nextPollAt = date(o.nextPollAt);
  if (!certId || !nextPollAt) return undefined;
  const w = o.window as Json | undefined;
  const start = date(w?.start);
  const end = date(w?.end);
  return defined({
    certId,
    window: start && end ? { start, end } : undefined,
    explanationURL: str(o.explanationURL),
    chosenAt: date(o.chosenAt),
    nextPollAt,
    lastPolledAt: date(o.lastPolledAt),
    errorCount: typeof o.errorCount === 'number' ? o.errorCount : 0,
    lastError: str(o.lastError),
  });
}

function decodeFailures(v: unknown): FailureState {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Json;
  return defined({
    count: typeof o.count === 'number' && o.count >= 0 ? Math.floor(o.count) : 0,
    nextRetryAt: date(o.nextRetryAt),
    lastFailureAt: date(o.lastFailureAt),
    lastError: str(o.lastError),
    lastErrorCode: str(o.lastErrorCode),
    rateLimited: o.rateLimited === true ? true : undefined,
    fingerprint: str(o.fingerprint),
  });
}

function decodeOrders(v: unknown): OrderRecord[] {
  if (!Array.isArray(v)) return [];
  const out: OrderRecord[] = [];
  for (const item of v) {
    const o = (item ?? {}) as Json;
    const at = date(o.at);
    if (at && Array.isArray(o.names) && o.names.every((n) => typeof n === 'string')) {
      out.push(defined({ at, names: o.names as string[], ca: str(o.ca) }));
    }
  }
  return out;
}

function decodeSuccess(v: unknown): SuccessRecord | undefined {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Json;
  const at = date(o.at);
  const notAfter = date(o.notAfter);
  const serial = str(o.serial);
  if (!at || !notAfter || !serial) return undefined;
  const profile = o.profile === null ? null : str(o.profile);
  return defined({
    at,
    serial,
    notAfter,
    profile,
    profileUnavailable: str(o.profileUnavailable),
    ca: str(o.ca),
  });
}

function decodeGuard(v: unknown): GuardState | undefined {
  const alertedUntil = date((v as Json | null | undefined)?.alertedUntil);
  return alertedUntil ? { alertedUntil } : undefined;
}

/** Parses a state file's JSON. Exported for tests. Throws on a wrong version or non-object. */
export function decodeState(name: string, json: unknown): CertState {
  if (typeof json !== 'object' || json === null) throw new Error('not a JSON object');
  const o = json as Json;
  if (o.version !== STATE_VERSION) throw new Error(`unsupported state version ${String(o.version)}`);
  return defined({
    name,
    ari: decodeAri(o.ari),
    failures: decodeFailures(o.failures),
    orders: decodeOrders(o.orders),
    lastSuccess: decodeSuccess(o.lastSuccess),
    guard: decodeGuard(o.guard),
  });
}

/** The JSON written to disk (Dates become ISO strings through JSON.stringify). */
export function encodeState(state: CertState, now: Date): string {
  const cutoff = now.getTime() - ORDER_HISTORY_MS;
  const orders = state.orders.filter((o) => o.at.getTime() > cutoff).slice(-MAX_ORDER_RECORDS);
  return JSON.stringify({ version: STATE_VERSION, ...state, orders }, null, 2) + '\n';
}

export interface StateReadResult {
  state: CertState;
  /** Set when the file existed but could not be used; it was moved aside to `<file>.corrupt-<time>`. */
  problem?: string;
}

/** Options of StateStore.write: the caller's lock (a fenced write) and cancellation. */
export interface StateWriteOptions {
  lock?: LockHandle;
  signal?: AbortSignal;
}

/**
 * Reads and writes the key `state/<name>.json` (`<stateDir>/state/<name>.json` on the file
 * backend). Callers hold the certificate's lock around read-modify-write.
 */
export class StateStore {
  /** Where the state values live (file backend: the directory). */
  readonly dir: string;
  private readonly storage: Storage;

  constructor(stateDir: string, storage?: Storage) {
    this.storage = storage ?? new FileStorage(stateDir);
    this.dir = this.storage.locate('state');
  }

  private key(name: string): string {
    if (!isCertificateName(name)) {
      throw new CertpilotError('STORE_IO', `state: invalid certificate name "${name}"`);
    }
    return `state/${name}.json`;
  }

  /** Where the state of `name` lives (file backend: its path). */
  file(name: string): string {
    return this.storage.locate(this.key(name));
  }

  /**
   * The state of `name`, or an empty state when there is none. A value that cannot be parsed
   * is moved aside (kept for the operator) and reported in `problem` instead of stopping the
   * daemon: an empty state errs towards renewing, and the exact-set guard then still counts the
   * CA's own limit as the backstop. `readOnly` (dry runs) reports the problem and moves nothing.
   */
  async read(name: string, opts: { readOnly?: boolean } = {}): Promise<StateReadResult> {
    const key = this.key(name);
    let value: Buffer | null;
    try {
      value = await this.storage.get(key);
    } catch (err) {
      // The backend's message names the location and the system error.
      throw new CertpilotError('STORE_IO', `state: ${(err as Error).message}`, {
        cause: err,
        retryable: true,
      });
    }
    if (value === null) return { state: emptyState(name) };
    const text = value.toString('utf8');
    try {
      return { state: decodeState(name, JSON.parse(text)) };
    } catch (err) {
      if (opts.readOnly) {
        // `renew --dry-run` changes no file: report it, leave it where it is.
        return {
          state: emptyState(name),
          problem: `state: ${this.file(name)} is unusable (${(err as Error).message}); left in place`,
        };
      }
      const asideKey = `${key}.corrupt-${Date.now()}`;
      const aside = this.storage.locate(asideKey);
      // Copy, then delete: Storage has no rename, and losing the copy is worse than keeping both.
      await this.storage
        .put(asideKey, text)
        .then(() => this.storage.delete(key))
        .catch(() => undefined);
      return {
        state: emptyState(name),
        problem: `state: ${this.file(name)} is unusable (${(err as Error).message}); moved to ${aside}`,
      };
    }
  }

  /** Atomically replaces the state (mode 0600, directory 0700), fenced on `opts.lock` when given. */
  async write(state: CertState, now: Date = new Date(), opts: StateWriteOptions = {}): Promise<void> {
    await this.storage.put(this.key(state.name), encodeState(state, now), { ...opts, mode: SECRET_MODE });
  }

  /** Names with a state value (for status output and cleanup of removed certificates). */
  async list(): Promise<string[]> {
    return (await this.storage.list('state'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  }
}
