import { describeError } from '../core/errors';
import type { Clock } from '../core/clock';
import type { Logger } from '../core/logger';
import type { AgentConfig } from '../config/types';
import { runCheck, type CheckReport } from '../inspect/check';
import type { Notifier } from '../notify';
import { planReminders, readReminderState, writeReminderState } from './reminders';

/**
 * The daemon's inventory: everything `certpilot check` inspects (managed certificates as stored
 * and their endpoints, watched files and endpoints), on the daemon's own schedule, for /metrics
 * and for expiry reminders. It runs at the first cycle after start, so /metrics is complete
 * again within one cycle of a restart, and then every `daemon.endpointInterval`, jittered so a
 * fleet of agents does not probe shared endpoints in lockstep.
 */

/** Up to this fraction of the interval is taken off at random. */
export const ENDPOINT_JITTER = 0.1;

export interface InventoryDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** In [0, 1); tests pass a fixed value. */
  readonly random?: () => number;
}

export class Inventory {
  private last: CheckReport | undefined;
  private dueAt = 0;

  constructor(private readonly deps: InventoryDeps) {}

  /** The last completed inventory; undefined before the first one. */
  get report(): CheckReport | undefined {
    return this.last;
  }

  /** When the next inventory is due (the daemon wakes for it). */
  get nextAt(): Date {
    return new Date(this.dueAt);
  }

  /** A reload may change what is watched: inspect again at the next cycle. */
  invalidate(): void {
    this.dueAt = 0;
  }

  /**
   * Inspects everything when due, then sends the expiry reminders it calls for. Never throws:
   * an inventory that fails is logged and retried at the next cycle, and must not fail renewals.
   */
  async refresh(config: AgentConfig, notifier: Notifier, signal: AbortSignal): Promise<void> {
    const now = this.deps.clock.now();
    if (now.getTime() < this.dueAt) return;
    const interval = config.daemon.endpointIntervalMs ?? 3_600_000;
    const jitter = Math.floor(interval * ENDPOINT_JITTER * (this.deps.random ?? Math.random)());
    try {
      this.last = await runCheck(config, {}, { now, signal, log: this.deps.log });
      this.dueAt = now.getTime() + interval - jitter;
    } catch (err) {
      this.deps.log.error('inventory failed', { error: describeError(err) });
      return;
    }
    await this.remind(config, notifier, this.last);
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
