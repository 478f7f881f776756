import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeError } from '../core/errors';
import type { Clock } from '../core/clock';
import type { Logger } from '../core/logger';
import { checkSettingsOf } from '../config/access';
import type { AgentConfig } from '../config/types';
import { runCheck, worstStatus, type CheckReport, type CheckResult } from '../inspect/check';
import type { Notifier } from '../notify';
import { atomicWriteFile } from '../store/atomic';
import { planReminders, readReminderState, writeReminderState } from './reminders';

/**
 * The daemon's inventory: everything `certpilot check` inspects (managed certificates as stored
 * and their endpoints, watched files and endpoints), on the daemon's own schedule, for /metrics
 * and for expiry reminders. Two parts:
 *
 *  - local (stored certificates, watched files): every cycle; reading a few files is cheap and
 *    a certificate replaced on disk shows on /metrics at the next cycle;
 *  - remote (every endpoint): every `daemon.endpointInterval`, jittered so a fleet of agents
 *    does not probe shared endpoints in lockstep, and at once when the configuration changed or
 *    a managed certificate's stored version changed (a renewal: its endpoints must be looked at
 *    again, not reported with the old leaf for an hour).
 *
 * The last endpoint rows and when they are next due are kept in the state directory, so after
 * a restart /metrics is complete again within one cycle without probing everything again.
 */

/** Up to this fraction of the interval is taken off at random. */
export const ENDPOINT_JITTER = 0.1;
export const INVENTORY_FILE = 'inventory.json';
/** Certificate names, endpoints and public certificates only; still nobody else's business. */
const INVENTORY_MODE = 0o600;
const DEFAULT_ENDPOINT_INTERVAL_MS = 3_600_000;

export interface InventoryDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** In [0, 1); tests pass a fixed value. */
  readonly random?: () => number;
}

/** The last endpoint probes, as persisted. */
interface Probed {
  /** Hash of what decides the endpoint rows (endpoints, names, thresholds). */
  readonly configKey: string;
  /** Epoch ms when the endpoints are next due. */
  readonly dueAt: number;
  /** Epoch ms when the endpoints were probed (0: unknown, from an older state file). */
  readonly probedAt: number;
  /** Managed certificate name -> fingerprint of the stored version the rows were compared with. */
  readonly stored: Readonly<Record<string, string>>;
  readonly rows: readonly CheckResult[];
}

export class Inventory {
  private last: CheckReport | undefined;
  private probed: Probed | undefined;
  private restored = false;
  private forced = false;

  constructor(private readonly deps: InventoryDeps) {}

  /** The last completed inventory; undefined before the first one. */
  get report(): CheckReport | undefined {
    return this.last;
  }

  /** When the endpoints are next probed (epoch 0 before the first inventory). */
  get nextAt(): Date {
    return new Date(this.probed?.dueAt ?? 0);
  }

  /**
   * When the endpoint rows of the last report were probed: a report's own checkedAt is the
   * local part's time, newer than endpoint rows kept from an earlier probe.
   */
  get endpointsCheckedAt(): Date | undefined {
    return this.probed ? new Date(this.probed.probedAt) : undefined;
  }

  /** A reload may change what is watched: probe the endpoints again at the next cycle. */
  invalidate(): void {
    this.forced = true;
  }

  /**
   * Inspects the local part, and the endpoints when due, then sends the expiry reminders the
   * rows call for. Never throws: an inventory that fails is logged and retried at the next
   * cycle, and must not fail renewals.
   */
  async refresh(config: AgentConfig, notifier: Notifier, signal: AbortSignal): Promise<void> {
    try {
      if (!this.restored) {
        this.probed = await readInventoryState(config.storage.stateDir).catch((err: unknown) => {
          this.deps.log.warn('inventory state unreadable; probing endpoints again', {
            error: describeError(err),
          });
          return undefined;
        });
        this.restored = true;
      }
      this.last = await this.inspect(config, signal);
    } catch (err) {
      this.deps.log.error('inventory failed', { error: describeError(err) });
      return;
    }
    await this.remind(config, notifier, this.last);
  }

  private async inspect(config: AgentConfig, signal: AbortSignal): Promise<CheckReport> {
    const now = this.deps.clock.now();
    const checkDeps = { now, signal, log: this.deps.log };
    const key = configKeyOf(config);
    const p = this.probed;
    const interval = config.daemon.endpointIntervalMs || DEFAULT_ENDPOINT_INTERVAL_MS;
    // A shorter interval in a new config applies to probes kept from before the restart too.
    const dueAt = p ? Math.min(p.dueAt, p.probedAt + interval) : 0;
    if (p && dueAt !== p.dueAt) this.probed = { ...p, dueAt };
    if (p && !this.forced && p.configKey === key && now.getTime() < dueAt) {
      const local = await runCheck(config, { endpoints: false }, checkDeps);
      if (sameStoredVersions(local.results, p.stored)) return mergeEndpointRows(local, p.rows);
    }
    const full = await runCheck(config, {}, checkDeps);
    const jitter = Math.floor(interval * ENDPOINT_JITTER * (this.deps.random ?? Math.random)());
    this.forced = false;
    this.probed = {
      configKey: key,
      dueAt: now.getTime() + interval - jitter,
      probedAt: now.getTime(),
      stored: storedVersionsOf(full.results),
      rows: full.results.filter((r) => r.source === 'endpoint'),
    };
    await writeInventoryState(config.storage.stateDir, this.probed).catch((err: unknown) =>
      this.deps.log.warn('cannot persist the inventory; endpoints are probed again after a restart', {
        error: describeError(err),
      }),
    );
    return full;
  }

  /**
   * The state is written before the alerts go out: a crash in between loses an alert rather
   * than repeating it on every restart (a channel that is down is logged by the notifier).
   */
  private async remind(config: AgentConfig, notifier: Notifier, report: CheckReport): Promise<void> {
    const stateDir = config.storage.stateDir;
    try {
      const previous = await readReminderState(stateDir);
      const plan = planReminders(report.results, previous);
      if (JSON.stringify(plan.state) !== JSON.stringify(previous))
        await writeReminderState(stateDir, plan.state);
      for (const alert of plan.alerts) await notifier.notify(alert);
    } catch (err) {
      this.deps.log.error('expiry reminders failed', { error: describeError(err) });
    }
  }
}

/** What the endpoint rows depend on besides the servers: a change probes them again at once. */
function configKeyOf(config: AgentConfig): string {
  const basis = {
    certificates: config.certificates.map((c) => [c.name, c.domains, c.endpoints ?? [], c.thresholds]),
    endpoints: config.watch?.endpoints ?? [],
    check: checkSettingsOf(config),
  };
  return createHash('sha256').update(JSON.stringify(basis)).digest('hex');
}

function storedVersionsOf(rows: readonly CheckResult[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rows) {
    if (r.managed && r.source === 'file' && r.certificate) out[r.name] = r.certificate.fingerprint256;
  }
  return out;
}

function sameStoredVersions(rows: readonly CheckResult[], before: Readonly<Record<string, string>>): boolean {
  const now = storedVersionsOf(rows);
  const names = new Set([...Object.keys(now), ...Object.keys(before)]);
  return [...names].every((n) => now[n] === before[n]);
}

/**
 * The local rows with the kept endpoint rows in runCheck's order: each managed certificate's
 * stored row followed by its endpoints, the watched files, then the watched endpoints.
 */
export function mergeEndpointRows(local: CheckReport, endpoints: readonly CheckResult[]): CheckReport {
  const results: CheckResult[] = [];
  for (const r of local.results) {
    results.push(r);
    if (r.managed && r.source === 'file')
      results.push(...endpoints.filter((e) => e.managed && e.name === r.name));
  }
  results.push(...endpoints.filter((e) => !e.managed));
  return { checkedAt: local.checkedAt, status: worstStatus(results.map((r) => r.status)), results };
}

function inventoryPath(stateDir: string): string {
  return path.join(stateDir, INVENTORY_FILE);
}

/** JSON has no dates: the leaf's validity comes back as strings. */
function reviveRow(r: CheckResult): CheckResult {
  if (!r.certificate) return r;
  const c = r.certificate;
  return { ...r, certificate: { ...c, notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter) } };
}

async function readInventoryState(stateDir: string): Promise<Probed | undefined> {
  let text: string;
  try {
    text = await fs.readFile(inventoryPath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as Partial<Probed> & { version?: unknown };
  if (v.version !== 1 || typeof v.configKey !== 'string' || !Array.isArray(v.rows)) {
    throw new Error(`${inventoryPath(stateDir)}: not an inventory state (version 1)`);
  }
  return {
    configKey: v.configKey,
    dueAt: Number(v.dueAt) || 0,
    probedAt: Number(v.probedAt) || 0,
    stored: v.stored ?? {},
    rows: v.rows.map(reviveRow),
  };
}

async function writeInventoryState(stateDir: string, p: Probed): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const body = JSON.stringify({ version: 1, ...p }) + '\n';
  await atomicWriteFile(inventoryPath(stateDir), body, { mode: INVENTORY_MODE });
}
