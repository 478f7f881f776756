import { readFile } from 'node:fs/promises';
import type { Clock } from '../core/clock';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec, FileOutput } from '../config/types';
import type { CheckReport } from '../inspect/check';
import type { Registry } from 'prom-client';
import { addRenewalStateMetrics } from '../metrics/registry';
import { createNotifier, silentNotifier, type AlertEvent, type Notifier } from '../notify';
import type { CertOutcome } from '../renew/run';
import { createRenewContext, type RenewContext } from '../renew/context';
import {
  readDeployState,
  readRedeployState,
  writeDeployState,
  writeRedeployState,
  type RedeployEntry,
} from '../state/deploy-state';
import type { StoredCertificate } from '../store/cert-store';
import { commitOutputs, prepareOutputs, resolveOwners } from '../store/outputs';
import { RenewalStateTracker } from './renewal-state';

/**
 * Self-healing deploys for `certpilot run`: when the inventory (src/daemon/inventory.ts) finds
 * an endpoint of a managed certificate serving an older version (`served-stale`: a reload that
 * did not happen, old files put back by another tool), the current version is deployed and
 * verified again, as `renew` finishes an interrupted deploy: the outputs are written again if
 * they differ, the deploy steps run, the endpoints are verified. The CA is never contacted: the
 * certificate is fine, the server is not serving it.
 *
 * A redeploy that fails is retried with exponential backoff (daemon.redeployBackoff, doubling,
 * at most daemon.endpointInterval), persisted in the state directory, so a restart neither
 * retries at once nor alerts again. After REDEPLOY_ALERT_AFTER failures in a row one
 * `redeploy-failed` alert goes out; one `redeploy-resolved` follows once the current version
 * is served again. After every attempt the inventory probes again at the next cycle, instead
 * of an endpoint interval later.
 */

/** Failed redeploys in a row before the alert: one failure is often a reload racing a restart. */
export const REDEPLOY_ALERT_AFTER = 3;
/** Default of daemon.redeployBackoff: the wait after the first failed redeploy. */
export const DEFAULT_REDEPLOY_BACKOFF_MS = 5 * 60_000;
const DEFAULT_ENDPOINT_INTERVAL_MS = 3_600_000;

export interface SelfHealDeps {
  readonly log: Logger;
  readonly clock: Clock;
}

/** The part of the inventory self-healing needs: its report, and a way to probe again soon. */
export interface InventoryView {
  readonly report: CheckReport | undefined;
  /** When the endpoint rows were probed (the report's checkedAt when not known). */
  readonly endpointsCheckedAt?: Date | undefined;
  invalidate(): void;
}

/** Managed certificates with at least one endpoint serving an older version, by name. */
export function staleCertificates(report: CheckReport): Set<string> {
  const names = new Set<string>();
  for (const r of report.results) {
    if (r.managed && r.source === 'endpoint' && r.findings.some((f) => f.code === 'served-stale'))
      names.add(r.name);
  }
  return names;
}

/** The wait after the `attempts`-th failure in a row: `first`, doubling, at most `max`. */
export function redeployDelay(attempts: number, first: number, max: number): number {
  const exp = Math.min(Math.max(attempts - 1, 0), 30);
  return Math.min(first * 2 ** exp, Math.max(max, first));
}

/** True when a plain PEM output file does not hold what the store holds (a format output always counts). */
async function outputsDiffer(cert: StoredCertificate, outputs: readonly FileOutput[]): Promise<boolean> {
  for (const out of outputs) {
    // A PKCS#12 file is salted anew on every write, a DER one would need decoding: rewrite them.
    if (out.format !== undefined) return true;
    for (const key of ['cert', 'chain', 'fullchain', 'key'] as const) {
      const target = out[key];
      if (target === undefined) continue;
      const now = await readFile(target, 'utf8').catch(() => undefined);
      if (now !== cert[key]) return true;
    }
  }
  return false;
}

/** Writes the configured outputs again from the store, when they differ (same checks as an install). */
async function rewriteOutputs(spec: CertificateSpec, cert: StoredCertificate, log: Logger): Promise<void> {
  if (spec.outputs.length === 0 || !(await outputsDiffer(cert, spec.outputs))) return;
  log.warn('outputs do not hold the current version; writing them again', { serial: cert.info.serial });
  const owners = await resolveOwners(spec.outputs, log);
  await commitOutputs(spec.name, await prepareOutputs(spec.name, cert, spec.outputs, owners));
}

export class SelfHeal {
  /** The renewal-state series, which /metrics exports next to the redeploy ones. */
  private readonly renewalState: RenewalStateTracker;
  private entries: Record<string, RedeployEntry> | undefined;
  private wake: Date | undefined;
  private readonly totals = new Map<string, { success: number; failure: number }>();
  /** Alerts of this cycle, sent once the state that records them is written. */
  private alerts: AlertEvent[] = [];

  constructor(private readonly deps: SelfHealDeps) {
    this.renewalState = new RenewalStateTracker(deps.log);
  }

  /** The daemon's hook, once per cycle after the inventory: renewal state, then redeploys. */
  async afterCycle(
    config: AgentConfig,
    outcomes: readonly CertOutcome[] | undefined,
    inventory: InventoryView,
    signal: AbortSignal,
  ): Promise<void> {
    // A cycle that failed as a whole tells nothing new: keep the last known state.
    if (outcomes) await this.renewalState.observe(config, outcomes);
    if (signal.aborted) return;
    const notifier = config.notify ? createNotifier(config.notify, this.deps.log) : silentNotifier;
    await this.heal(config, inventory, notifier, signal);
  }

  /** Adds the renewal-state and redeploy series to the daemon's /metrics registry. */
  async addMetrics(registry: Registry): Promise<void> {
    const rows = this.renewalState.rows(this.failing, this.totals);
    // No rows before the first cycle: the series are declared, and no clock is needed yet.
    await addRenewalStateMetrics(registry, rows, rows.length > 0 ? this.deps.clock.now() : new Date(0));
  }

  /** When the daemon must run a cycle for a retry or a probe after a redeploy; undefined: no need. */
  get wakeAt(): Date | undefined {
    return this.wake;
  }

  /** Redeploys by this process, by certificate and result (certpilot_redeploys_total). */
  get redeploys(): ReadonlyMap<string, { success: number; failure: number }> {
    return this.totals;
  }

  /** Failed redeploys in a row, by certificate (certpilot_certificate_redeploy_failures). */
  get failing(): ReadonlyMap<string, number> {
    return new Map(Object.entries(this.entries ?? {}).map(([n, e]) => [n, e.attempts]));
  }

  /**
   * Once per cycle, after the inventory. Never throws: a failure is logged and the next cycle
   * tries again; it must not fail the cycle's renewals.
   */
  async heal(
    config: AgentConfig,
    inventory: InventoryView,
    notifier: Notifier,
    signal: AbortSignal,
  ): Promise<void> {
    this.wake = undefined;
    const report = inventory.report;
    if (!report) return;
    const stale = staleCertificates(report);
    if (stale.size === 0 && this.entries !== undefined && Object.keys(this.entries).length === 0) return;
    this.alerts = [];
    try {
      const before = JSON.stringify((this.entries ??= await readRedeployState(config.storage.stateDir)));
      const probedAt = inventory.endpointsCheckedAt ?? report.checkedAt;
      const probe = await this.healAll(config, probedAt, stale, signal);
      if (probe) inventory.invalidate();
      // Written before the alerts go out: a crash in between loses an alert rather than
      // repeating it on every restart.
      if (JSON.stringify(this.entries) !== before)
        await writeRedeployState(config.storage.stateDir, this.entries);
      for (const alert of this.alerts) await notifier.notify(alert);
    } catch (err) {
      this.deps.log.error('self-healing deploy failed', { error: describeError(err) });
    }
  }

  /** Returns true when the inventory must probe again at the next cycle. */
  private async healAll(
    config: AgentConfig,
    probedAt: Date,
    stale: ReadonlySet<string>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const entries = this.entries!;
    const now = this.deps.clock.now();
    const specs = new Map(config.certificates.map((s) => [s.name, s]));
    let probe = false;
    for (const [name, e] of Object.entries(entries)) {
      // Served again (fixed by hand, or a renewal deployed a new version), or no longer configured.
      const observed = !e.lastAttemptAt || probedAt.getTime() > Date.parse(e.lastAttemptAt);
      if (!specs.has(name) || (observed && !stale.has(name))) this.resolve(name, specs.get(name));
    }
    let ctx: RenewContext | undefined;
    try {
      for (const name of stale) {
        const spec = specs.get(name);
        if (!spec || signal.aborted) continue;
        const e = entries[name];
        const dueAt = e?.nextAttemptAt ? Date.parse(e.nextAttemptAt) : 0;
        if (dueAt > now.getTime()) {
          this.wakeBy(new Date(dueAt));
          continue;
        }
        if (e?.lastAttemptAt && probedAt.getTime() <= Date.parse(e.lastAttemptAt)) {
          // The last probe predates the last attempt: look again before deploying again.
          probe = true;
          this.wakeBy(now);
          continue;
        }
        ctx ??= createRenewContext(
          config,
          {},
          { log: this.deps.log, clock: this.deps.clock, signal },
          {
            notifier: silentNotifier,
          },
        );
        await this.attempt(ctx, config, spec);
        probe = true;
      }
    } finally {
      await ctx?.clients.close();
    }
    return probe;
  }

  private wakeBy(at: Date): void {
    if (!this.wake || at.getTime() < this.wake.getTime()) this.wake = at;
  }

  private resolve(name: string, spec: CertificateSpec | undefined): void {
    const e = this.entries![name];
    delete this.entries![name];
    if (!e?.alerted || !spec) return;
    this.alerts.push({
      kind: 'redeploy-resolved',
      cert: name,
      domains: spec.domains,
      message: `every endpoint serves the current version again (after ${e.attempts} failed redeploy(s))`,
    });
  }

  /** One redeploy of the current version under the certificate's lock; records the result. */
  private async attempt(ctx: RenewContext, config: AgentConfig, spec: CertificateSpec): Promise<void> {
    const log = this.deps.log.child({ cert: spec.name });
    const lock = await ctx.acquireLock(spec.name, { wait: false, purpose: 'redeploy' });
    if (!lock) {
      // A renewal in another process is deploying it: look again at the next cycle.
      log.info('another certpilot process holds the lock; redeploy postponed');
      this.wakeBy(this.deps.clock.now());
      return;
    }
    let error: string | undefined;
    try {
      log.warn('an endpoint serves an older version; deploying the current one again (no new order)');
      const current = await ctx.store.read(spec.name);
      if (!current) return;
      await rewriteOutputs(spec, current, log);
      // No rollback target: the current version was verified before; the server is the problem.
      const result = await ctx.deploy.run(spec, log, { installed: current });
      if (result && !result.ok) {
        error = result.error ?? result.status;
        // Not pending: retries follow this module's backoff, not every `renew` run.
        const state = await readDeployState(config.storage.stateDir, spec.name);
        if (state?.serial === current.info.serial)
          await writeDeployState(config.storage.stateDir, spec.name, { ...state, status: 'redeploy-failed' });
      }
    } catch (err) {
      error = describeError(err);
    } finally {
      await lock
        .release()
        .catch((err: unknown) => log.warn('lock not released', { error: describeError(err) }));
    }
    this.record(config, spec, error, log);
  }

  private record(config: AgentConfig, spec: CertificateSpec, error: string | undefined, log: Logger): void {
    const total = this.totals.get(spec.name) ?? { success: 0, failure: 0 };
    this.totals.set(spec.name, total);
    const now = this.deps.clock.now();
    if (error === undefined) {
      total.success++;
      log.info('redeployed: the endpoints serve the current version again');
      this.resolve(spec.name, spec);
      this.wakeBy(now);
      return;
    }
    total.failure++;
    const before = this.entries![spec.name];
    const attempts = (before?.attempts ?? 0) + 1;
    const first = config.daemon.redeployBackoffMs ?? DEFAULT_REDEPLOY_BACKOFF_MS;
    const max = config.daemon.endpointIntervalMs ?? DEFAULT_ENDPOINT_INTERVAL_MS;
    const next = new Date(now.getTime() + redeployDelay(attempts, first, max));
    const alert = attempts >= REDEPLOY_ALERT_AFTER && before?.alerted !== true;
    this.entries![spec.name] = {
      attempts,
      lastAttemptAt: now.toISOString(),
      nextAttemptAt: next.toISOString(),
      lastError: error,
      alerted: alert || before?.alerted === true,
    };
    log.error('redeploy failed', { attempt: attempts, retryAt: next, error });
    this.wakeBy(next);
    if (alert) {
      this.alerts.push({
        kind: 'redeploy-failed',
        cert: spec.name,
        domains: spec.domains,
        message: `an endpoint serves an older version and ${attempts} redeploys in a row failed (last: ${error}); retrying until ${next.toISOString()} and later`,
      });
    }
  }
}
