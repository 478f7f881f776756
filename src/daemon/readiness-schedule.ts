import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../core/clock';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig } from '../config/types';
import type { CheckResult } from '../inspect/check';
import { readinessRows, runReadiness, type ReadinessReport } from '../inspect/readiness';
import type { AlertEvent, Notifier } from '../notify';
import { atomicWriteFile } from '../store/atomic';

/**
 * The renewal-readiness canary in the daemon: `certpilot check --readiness` every
 * `daemon.readinessInterval` (default 24h, jittered by up to 10%; 0/off disables it), at the
 * first cycle after it is due. Each check that fails alerts once (`readiness-failed`, naming the
 * certificate, the check and the reason) and once more when it passes again
 * (`readiness-resolved`); a check that fails again with another reason is the same failure. The
 * time of the next run, what is failing and the last rows (for /metrics) are kept in
 * <stateDir>/readiness.json, so a restart neither runs it again at once nor postpones it: a run
 * missed while the daemon was down happens at the first cycle after the restart.
 *
 * A fresh installation runs it at the first cycle after a random delay within the first 10% of
 * the interval, so a fleet deployed at once does not write canary records in lockstep.
 */

export const READINESS_FILE = 'readiness.json';
export const READINESS_JITTER = 0.1;
const READINESS_MODE = 0o600;

export interface ReadinessScheduleDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** In [0, 1); tests pass a fixed value. */
  readonly random?: () => number;
}

/** One check of one certificate as exported on /metrics (certpilot_readiness_status). */
export interface ReadinessStatus {
  readonly name: string;
  readonly check: string;
  readonly ok: boolean;
}

interface ReadinessState {
  /** Epoch ms of the last run; 0 = never. */
  readonly lastRunAt: number;
  /** Epoch ms when the next run is due. */
  readonly nextAt: number;
  /** `name|check` -> the reason alerted (only failing checks). */
  readonly failing: Readonly<Record<string, string>>;
  readonly rows: readonly CheckResult[];
  readonly checks: readonly ReadinessStatus[];
}

export interface ReadinessAlertPlan {
  readonly alerts: readonly AlertEvent[];
  readonly failing: Record<string, string>;
}

/**
 * Alerts for a run: a check failing now and not before alerts; one failing before and passing
 * now resolves; one that did not run this time (dns-write after a failed cname) keeps its state.
 * Certificates no longer configured are forgotten.
 */
export function planReadinessAlerts(
  report: ReadinessReport,
  before: Readonly<Record<string, string>>,
  domainsOf: (name: string) => readonly string[] | undefined,
): ReadinessAlertPlan {
  const alerts: AlertEvent[] = [];
  const failing: Record<string, string> = {};
  for (const r of report.results) {
    const domains = domainsOf(r.name) ?? [];
    for (const [key, reason] of Object.entries(before)) {
      if (key.startsWith(`${r.name}|`)) failing[key] = reason;
    }
    for (const c of r.checks) {
      const key = `${r.name}|${c.check}`;
      if (!c.ok && before[key] === undefined) {
        const reason = c.message ?? `${c.check} check failed`;
        failing[key] = reason;
        alerts.push({
          kind: 'readiness-failed',
          cert: r.name,
          domains,
          message: `next renewal would fail: ${c.check} check: ${reason}`,
        });
      } else if (c.ok && before[key] !== undefined) {
        delete failing[key];
        alerts.push({
          kind: 'readiness-resolved',
          cert: r.name,
          domains,
          message: `${c.check} check passes again (it failed: ${before[key]})`,
        });
      }
    }
  }
  return { alerts, failing };
}

export class ReadinessSchedule {
  private state: ReadinessState | undefined;

  constructor(private readonly deps: ReadinessScheduleDeps) {}

  /** The rows of the last run (source `readiness`), for /metrics and the digest. */
  get rows(): readonly CheckResult[] {
    return this.state?.rows ?? [];
  }

  get checks(): readonly ReadinessStatus[] {
    return this.state?.checks ?? [];
  }

  /** Runs the canary when due and sends the alerts it calls for. Never throws. */
  async refresh(config: AgentConfig, notifier: Notifier, signal: AbortSignal): Promise<void> {
    const interval = config.daemon.readinessIntervalMs ?? 0;
    const stateDir = config.storage.stateDir;
    if (interval === 0 || config.certificates.length === 0) return;
    const now = this.deps.clock.now().getTime();
    try {
      if (!this.state) {
        const stored = await readReadinessState(stateDir);
        this.state = stored ?? this.freshState(now, interval);
        // Persisted at once: restarts before the first run must not draw a new delay each time.
        if (!stored) await writeReadinessState(stateDir, this.state);
      }
    } catch (err) {
      this.deps.log.warn('readiness state unusable; running the canary now', { error: describeError(err) });
      this.state = { lastRunAt: 0, nextAt: now, failing: {}, rows: [], checks: [] };
    }
    // A shorter interval in a reloaded configuration applies to the run already planned.
    const due = Math.min(
      this.state.nextAt,
      this.state.lastRunAt > 0 ? this.state.lastRunAt + interval : Infinity,
    );
    if (now < due) return;
    await this.run(config, notifier, signal, interval);
  }

  private freshState(now: number, interval: number): ReadinessState {
    const delay = Math.floor(interval * READINESS_JITTER * (this.deps.random ?? Math.random)());
    return { lastRunAt: 0, nextAt: now + delay, failing: {}, rows: [], checks: [] };
  }

  /** The state is written before the alerts go out, so a crash in between cannot repeat them. */
  private async run(
    config: AgentConfig,
    notifier: Notifier,
    signal: AbortSignal,
    interval: number,
  ): Promise<void> {
    const started = this.deps.clock.now();
    let report: ReadinessReport;
    try {
      report = await runReadiness(config, { now: started, signal, log: this.deps.log });
    } catch (err) {
      // Not a finding about a certificate (the CA's directory is, each check catches its own):
      // a bug or a cancelled run. Try again at the next cycle's due time.
      this.deps.log.error('readiness check failed', { error: describeError(err) });
      return;
    }
    const plan = planReadinessAlerts(
      report,
      this.state?.failing ?? {},
      (name) => config.certificates.find((c) => c.name === name)?.domains,
    );
    const jitter = Math.floor(interval * READINESS_JITTER * (this.deps.random ?? Math.random)());
    this.state = {
      lastRunAt: started.getTime(),
      nextAt: started.getTime() + interval - jitter,
      failing: plan.failing,
      rows: readinessRows(report),
      checks: report.results.flatMap((r) =>
        r.checks.map((c) => ({ name: r.name, check: c.check, ok: c.ok })),
      ),
    };
    this.deps.log.info('readiness checked', {
      certificates: report.results.length,
      failing: Object.keys(plan.failing).length,
      nextAt: new Date(this.state.nextAt),
    });
    // A state directory that cannot be written still gets the alerts out: this process
    // remembers them, only a restart before the disk is fixed could repeat one.
    await writeReadinessState(config.storage.stateDir, this.state).catch((err: unknown) =>
      this.deps.log.error('cannot persist the readiness state', { error: describeError(err) }),
    );
    for (const a of plan.alerts) await notifier.notify(a);
  }
}

function readinessPath(stateDir: string): string {
  return path.join(stateDir, READINESS_FILE);
}

async function readReadinessState(stateDir: string): Promise<ReadinessState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(readinessPath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as Partial<ReadinessState> & { version?: unknown };
  if (
    v.version !== 1 ||
    typeof v.nextAt !== 'number' ||
    typeof v.failing !== 'object' ||
    v.failing === null
  ) {
    throw new Error(`${readinessPath(stateDir)}: not a readiness state (version 1)`);
  }
  return {
    lastRunAt: Number(v.lastRunAt) || 0,
    nextAt: v.nextAt,
    failing: v.failing,
    rows: Array.isArray(v.rows) ? v.rows : [],
    checks: Array.isArray(v.checks) ? v.checks : [],
  };
}

async function writeReadinessState(stateDir: string, state: ReadinessState): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const body = JSON.stringify({ version: 1, ...state }, null, 2) + '\n';
  await atomicWriteFile(readinessPath(stateDir), body, { mode: READINESS_MODE });
}
