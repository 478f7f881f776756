import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig } from '../config/types';
import type { RenewalStateMetrics } from '../metrics/registry';
import type { CertOutcome } from '../renew/run';
import { StateStore, type CertState } from '../state/store';
import { createEtcdBackend } from '../store/etcd';

/**
 * The renewal state /metrics exports (backoff, ARI window), read from the persisted scheduling
 * state (src/state/store.ts), so after a restart the series are complete at the first cycle.
 *
 * A certificate's state is read again only when it may have changed: at its first cycle, when
 * the cycle did work on it (anything but `valid`/`waiting`: those take no lock and write
 * nothing), or when its serial changed (a `certpilot renew` of another process). An idle cycle
 * thus reads no file.
 */
export class RenewalStateTracker {
  private readonly known = new Map<
    string,
    { serial?: string; state: CertState; guarded: boolean; renewAt?: Date }
  >();

  constructor(private readonly log: Logger) {}

  /** After each cycle's renewals; never throws (a state that cannot be read keeps the last one). */
  async observe(config: AgentConfig, outcomes: readonly CertOutcome[]): Promise<void> {
    const names = new Set(outcomes.map((o) => o.name));
    for (const name of [...this.known.keys()]) if (!names.has(name)) this.known.delete(name);
    const stale = outcomes.filter((o) => {
      const k = this.known.get(o.name);
      return !k || k.serial !== o.serial || !['valid', 'waiting'].includes(o.status);
    });
    for (const o of outcomes) {
      const k = this.known.get(o.name);
      if (k) Object.assign(k, { guarded: o.decision.reason === 'guarded', renewAt: o.decision.renewAt });
    }
    if (stale.length === 0) return;
    const etcd =
      config.storage.backend === 'etcd' && config.storage.etcd
        ? createEtcdBackend(config.storage.etcd)
        : undefined;
    try {
      const states = new StateStore(config.storage.stateDir, etcd?.storage);
      for (const o of stale) {
        try {
          const { state } = await states.read(o.name, { readOnly: true });
          const guarded = o.decision.reason === 'guarded';
          const renewAt = o.decision.renewAt;
          this.known.set(o.name, { ...(o.serial ? { serial: o.serial } : {}), state, guarded, renewAt });
        } catch (err) {
          this.log.warn('renewal state unreadable for /metrics', { cert: o.name, error: describeError(err) });
        }
      }
    } finally {
      etcd?.close();
    }
  }

  /** One row per certificate seen, in the order they were first seen. */
  rows(
    failing: ReadonlyMap<string, number>,
    redeploys: ReadonlyMap<string, NonNullable<RenewalStateMetrics['redeploys']>>,
  ): RenewalStateMetrics[] {
    return [...this.known].map(([name, k]) => ({
      name,
      guarded: k.guarded,
      ...(k.renewAt ? { nextRenewal: laterOf(k.renewAt, k.state.failures.nextRetryAt) } : {}),
      ...(k.state.failures.nextRetryAt ? { backoffUntil: k.state.failures.nextRetryAt } : {}),
      ...(k.state.ari?.window ? { ariWindow: k.state.ari.window } : {}),
      redeployFailures: failing.get(name) ?? 0,
      ...(redeploys.has(name) ? { redeploys: redeploys.get(name)! } : {}),
    }));
  }
}

/**
 * A failed order's outcome still carries the plan it was made under ("due now"); the backoff
 * the failure started is what holds the next attempt back.
 */
function laterOf(a: Date, b: Date | undefined): Date {
  return b && b.getTime() > a.getTime() ? b : a;
}
