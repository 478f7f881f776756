import { CertpilotError } from '../core/errors';
import { isCertificateName } from '../core/names';
import { FileStorage } from '../store/file-storage';
import { SECRET_MODE, type LockHandle, type Storage } from '../store/storage';

/**
 * Deploy state, one JSON value per certificate: the key `deploy/<name>.json` of a Storage
 * (src/store/storage.ts), by default the file <stateDir>/deploy/<name>.json.
 *
 * A renewal is only done when every endpoint serves the new certificate. The state records how
 * far the current version got (issued → deployed → verified, per endpoint), so a run that
 * stopped half-way (failed reload, verification timeout, crash) is finished by the next run by
 * deploying and verifying again, without ordering a new certificate: orders cost rate limit
 * (5 per exact set of names per week) and a deploy problem is not fixed by a new certificate.
 */

export type DeployStatus =
  /** Installed in the store; nothing deployed yet (or the run died before it finished). */
  | 'issued'
  /** Every deploy step succeeded; verification pending. */
  | 'deployed'
  /** Every endpoint serves this certificate. */
  | 'verified'
  | 'deploy-failed'
  | 'verify-failed'
  /** A newer version failed and this one was restored and verified. */
  | 'rolled-back'
  /** Restoring the previous version failed too: needs a human. */
  | 'rollback-failed'
  /**
   * Verified once, then an endpoint served an older version again and `certpilot run`'s
   * redeploy failed (src/daemon/self-heal.ts). Not pending: the daemon retries with its own
   * backoff, so `renew` does not redeploy (and alert) on every run.
   */
  | 'redeploy-failed';

/** Statuses after which the next run deploys and verifies the current version again. */
export const PENDING_STATUSES: readonly DeployStatus[] = [
  'issued',
  'deployed',
  'deploy-failed',
  'verify-failed',
  'rollback-failed',
];

export interface EndpointState {
  status: 'pending' | 'verified' | 'stale' | 'unreachable';
  /** SHA-256 fingerprint of the leaf last seen there. */
  served?: string;
  servedSerial?: string;
  checkedAt?: string;
  error?: string;
}

export interface DeployState {
  /** Serial of the version this state describes (the current one). */
  serial: string;
  fingerprint: string;
  status: DeployStatus;
  updatedAt: string;
  previousSerial?: string;
  /** Keyed "host:port" (plus "@connectAddress" when given). */
  endpoints: Record<string, EndpointState>;
  error?: string;
  /** After a rollback: the serial that failed and was replaced. */
  failedSerial?: string;
  attempts: number;
}

/** Where deploy state is kept, and the caller's lock for fenced writes. All optional. */
export interface DeployStateOptions {
  /** Default: the file backend rooted at the state directory. */
  storage?: Storage;
  lock?: LockHandle;
  signal?: AbortSignal;
}

function deployStateKey(name: string): string {
  if (!isCertificateName(name))
    throw new CertpilotError('STORE_IO', `deploy: invalid certificate name "${name}"`);
  return `deploy/${name}.json`;
}

export function deployStatePath(stateDir: string, name: string, storage?: Storage): string {
  return (storage ?? new FileStorage(stateDir)).locate(deployStateKey(name));
}

/** Null when none was recorded; an unreadable value is treated as unknown, never as verified. */
export async function readDeployState(
  stateDir: string,
  name: string,
  opts: DeployStateOptions = {},
): Promise<DeployState | null> {
  const key = deployStateKey(name);
  let value: Buffer | null;
  try {
    value = await (opts.storage ?? new FileStorage(stateDir)).get(key, { signal: opts.signal });
  } catch (err) {
    throw new CertpilotError('STORE_IO', `deploy: cannot read state of ${name}`, { cause: err });
  }
  if (value === null) return null;
  try {
    const parsed = JSON.parse(value.toString('utf8')) as DeployState;
    if (typeof parsed.serial !== 'string' || typeof parsed.status !== 'string') throw new Error('bad shape');
    return { ...parsed, endpoints: parsed.endpoints ?? {}, attempts: parsed.attempts ?? 0 };
  } catch {
    // A torn or hand-edited value: act as if the version was issued but not yet deployed.
    return null;
  }
}

export async function writeDeployState(
  stateDir: string,
  name: string,
  state: DeployState,
  opts: DeployStateOptions = {},
): Promise<void> {
  const storage = opts.storage ?? new FileStorage(stateDir);
  await storage.put(deployStateKey(name), JSON.stringify(state, null, 2) + '\n', {
    mode: SECRET_MODE,
    ...(opts.lock ? { lock: opts.lock } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** True when the stored version `serial` still has deploy or verify work left. */
export function deployPending(state: DeployState | null, serial: string | undefined): boolean {
  return (
    state !== null &&
    serial !== undefined &&
    state.serial === serial &&
    PENDING_STATUSES.includes(state.status)
  );
}

// ---- self-healing redeploys (src/daemon/self-heal.ts) --------------------------------------

/**
 * One certificate whose endpoint served an older version and whose redeploy has not yet
 * succeeded. Persisted so that a restart neither forgets the backoff nor alerts again.
 */
export interface RedeployEntry {
  /** Failed redeploys in a row. */
  attempts: number;
  /** ISO time of the last attempt; a probe older than this says nothing about its result. */
  lastAttemptAt?: string;
  /** ISO time before which no new attempt is made. */
  nextAttemptAt?: string;
  lastError?: string;
  /** True once the redeploy-failed alert went out: one alert per episode. */
  alerted: boolean;
}

const REDEPLOY_KEY = 'redeploy.json';

/** By certificate name; empty when nothing was recorded or the value is unreadable. */
export async function readRedeployState(stateDir: string): Promise<Record<string, RedeployEntry>> {
  let value: Buffer | null;
  try {
    value = await new FileStorage(stateDir).get(REDEPLOY_KEY);
  } catch (err) {
    throw new CertpilotError('STORE_IO', 'redeploy: cannot read its state', { cause: err });
  }
  if (value === null) return {};
  try {
    const parsed = JSON.parse(value.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const out: Record<string, RedeployEntry> = {};
    for (const [name, e] of Object.entries(parsed as Record<string, Partial<RedeployEntry>>)) {
      if (!isCertificateName(name) || typeof e?.attempts !== 'number') continue;
      out[name] = { ...e, attempts: e.attempts, alerted: e.alerted === true };
    }
    return out;
  } catch {
    // Torn or hand-edited: start over (at worst one more attempt and one more alert).
    return {};
  }
}

export async function writeRedeployState(
  stateDir: string,
  entries: Readonly<Record<string, RedeployEntry>>,
): Promise<void> {
  await new FileStorage(stateDir).put(REDEPLOY_KEY, JSON.stringify(entries, null, 2) + '\n', {
    mode: SECRET_MODE,
  });
}
