import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '../core/abort';
import type { Clock } from '../core/clock';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig } from '../config/types';
import type { AcmeService } from '../acme/service';
import type { Dns01Solver } from '../dns/solver';
import type { Gauge } from 'prom-client';
import {
  CERTIFICATE_NOT_AFTER,
  createCounter,
  createGauge,
  DAEMON_CYCLE_FAILURES,
  DAEMON_CYCLES,
  DAEMON_HEALTHY,
  DAEMON_LAST_CYCLE,
  LAST_SUCCESS,
  loadPromClient,
  NEXT_RENEWAL,
  RENEWALS,
  toEpochSeconds,
} from '../metrics/definitions';
import { certificateProblems } from '../config/problems';
import { runRenew, type CertOutcome, type RenewReport } from '../renew/run';
import { createNotifier, silentNotifier, type Notifier } from '../notify';
import { Digest } from './digest';
import { sendHeartbeat } from './heartbeat';
import { Inventory } from './inventory';
import { ReadinessSchedule } from './readiness-schedule';
import { gateCritical } from './reminders';
import { readLastRun, recordSuccessfulRun } from './last-run';
import type { FleetAgent } from '../fleet';
import { SelfHeal } from './self-heal';

/**
 * `certpilot run`: the long-running agent. Every check interval, or earlier when a certificate
 * asks to be looked at (its planned renewal, a retry after backoff, an ARI poll), it runs the
 * same inspect → plan → renew → deploy pipeline as `certpilot renew`, with an exact schedule
 * (no ARI lookahead) and without waiting for locks held by a concurrent `renew`.
 */

/** Never spin: even when something is due "now" again, leave this long between cycles. */
export const MIN_CYCLE_GAP_MS = 1_000;
/** SIGTERM: in-flight orders are cancelled; their cleanup gets this long before we exit anyway. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;
/** /healthz fails when no cycle finished for this many check intervals (the scheduler is stuck). */
export const HEALTH_STALE_INTERVALS = 3;

export interface DaemonOptions {
  /** Reads and validates the configuration (called at start and on reload). */
  loadConfig: () => Promise<AgentConfig>;
  log: Logger;
  clock: Clock;
  openAcme: (config: AgentConfig) => Promise<AcmeService>;
  openSolver: (config: AgentConfig) => Dns01Solver;
}

export interface CycleRecord {
  startedAt: Date;
  finishedAt: Date;
  report?: RenewReport;
  error?: string;
  /** When the next cycle is planned. */
  nextAt: Date;
}

interface CertCounters {
  renewed: number;
  failed: number;
  lastSuccess?: Date;
  nextRenewal?: Date;
  notAfter?: Date;
}

export class Daemon {
  private config!: AgentConfig;
  private readonly stopping = new AbortController();
  private wake = new AbortController();
  private reloadRequested = false;
  private server: http.Server | undefined;
  private readonly counters = new Map<string, CertCounters>();
  private cycles = 0;
  private startedAt = new Date(0);
  private cycleFailures = 0;
  /** Last cycle with nothing failing (or the state directory's record of the last run). */
  private lastSuccessfulRun: Date | undefined;
  private last: CycleRecord | undefined;
  private loop: Promise<void> | undefined;
  private readonly listeners = new Set<(c: CycleRecord) => void>();
  private readonly inventory: Inventory;
  private readonly readiness: ReadinessSchedule;
  private readonly digest: Digest;
  /** Fleet mode only (src/fleet, loaded then): the deploy loop and the renewal config it needs. */
  private fleet: { agent: FleetAgent; renewConfigOf: (c: AgentConfig) => AgentConfig } | undefined;
  /** Redeploys of endpoints serving an older version, and the renewal state for /metrics. */
  private readonly selfHeal: SelfHeal;

  constructor(private readonly opts: DaemonOptions) {
    this.inventory = new Inventory({ log: opts.log, clock: opts.clock });
    this.readiness = new ReadinessSchedule({ log: opts.log, clock: opts.clock });
    this.digest = new Digest({ log: opts.log, clock: opts.clock });
    this.selfHeal = new SelfHeal({ log: opts.log, clock: opts.clock });
  }

  /** Loads the config, starts the HTTP endpoint and the loop. A bad config rejects (exit 2). */
  async start(): Promise<void> {
    this.config = await this.opts.loadConfig();
    this.startedAt = this.opts.clock.now();
    this.lastSuccessfulRun = await readLastRun(this.config.storage.stateDir).then(
      (r) => r?.at,
      () => undefined,
    );
    await this.listen();
    await this.applyFleet(this.config);
    this.opts.log.info('certpilot daemon started', {
      certificates: this.config.certificates.length,
      checkIntervalMs: this.config.daemon.checkIntervalMs,
      listen: this.address ?? 'off',
    });
    this.loop = this.run();
  }

  /** host:port of the metrics/health server, when listening. */
  get address(): string | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : undefined;
  }

  get cycleCount(): number {
    return this.cycles;
  }

  get lastCycle(): CycleRecord | undefined {
    return this.last;
  }

  /** Resolves after the next cycle that finishes (tests and `reload` use it; no polling). */
  nextCycle(): Promise<CycleRecord> {
    return new Promise((resolve) => {
      const once = (c: CycleRecord): void => {
        this.listeners.delete(once);
        resolve(c);
      };
      this.listeners.add(once);
    });
  }

  /**
   * SIGHUP: re-read the config. An invalid new config is logged and the old one kept. The new
   * one takes effect at once (a new cycle starts when the current one is done).
   */
  async reload(): Promise<boolean> {
    try {
      const next = await this.opts.loadConfig();
      const listenChanged = JSON.stringify(next.daemon.listen) !== JSON.stringify(this.config.daemon.listen);
      this.config = next;
      if (listenChanged) {
        await this.closeServer();
        await this.listen();
      }
      this.inventory.invalidate();
      await this.applyFleet(next);
      this.opts.log.info('configuration reloaded', { certificates: next.certificates.length });
      this.reloadRequested = true;
      this.wake.abort();
      return true;
    } catch (err) {
      this.opts.log.error('configuration reload failed; keeping the running configuration', {
        error: describeError(err),
      });
      return false;
    }
  }

  /** SIGTERM/SIGINT: stop taking work, cancel in-flight orders (their TXT cleanup still runs), stop. */
  async stop(): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.opts.log.info('stopping: cancelling in-flight work');
      this.stopping.abort(new Error('daemon stopping'));
      this.wake.abort();
    }
    const deadline = new AbortController();
    const timeout = sleep(SHUTDOWN_TIMEOUT_MS, deadline.signal).then(
      () => 'timeout' as const,
      () => 'cancelled' as const,
    );
    const done = (this.loop ?? Promise.resolve()).then(() => 'done' as const);
    const first = await Promise.race([done, timeout]);
    deadline.abort();
    if (first === 'timeout') {
      this.opts.log.error('shutdown deadline passed with work still running', {
        timeoutMs: SHUTDOWN_TIMEOUT_MS,
      });
    }
    await this.fleet?.agent.stop();
    await this.closeServer();
    this.opts.log.info('certpilot daemon stopped');
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      this.reloadRequested = false;
      const record = await this.cycle();
      this.last = record;
      for (const l of [...this.listeners]) l(record);
      if (this.stopping.signal.aborted) break;
      if (this.reloadRequested) continue;
      const waitMs = Math.max(MIN_CYCLE_GAP_MS, record.nextAt.getTime() - this.opts.clock.now().getTime());
      this.wake = new AbortController();
      await sleep(waitMs, this.wake.signal).catch(() => undefined);
    }
  }

  private async cycle(): Promise<CycleRecord> {
    const config = this.config;
    const startedAt = this.opts.clock.now();
    const interval = config.daemon.checkIntervalMs;
    let report: RenewReport | undefined;
    let error: string | undefined;
    const notifier = config.notify ? createNotifier(config.notify, this.opts.log) : silentNotifier;
    try {
      report = await runRenew(
        this.fleet ? this.fleet.renewConfigOf(config) : config,
        {},
        {
          log: this.opts.log,
          clock: this.opts.clock,
          signal: this.stopping.signal,
          openAcme: () => this.opts.openAcme(config),
          openSolver: () => this.opts.openSolver(config),
          lookaheadMs: 0,
          lockWaitMs: 0,
          certificateProblems: certificateProblems(config),
          // One `critical` alert per certificate version, not one per failed run.
          ...(config.notify
            ? { notifier: gateCritical(notifier, config.storage.stateDir, this.opts.log) }
            : {}),
        },
      );
      this.record(report.outcomes);
      // New versions may be in the store: this node deploys them without waiting for its poll.
      this.fleet?.agent.poke();
    } catch (err) {
      // A bug or an unreadable state directory: log it, keep the daemon alive, try next time.
      this.cycleFailures++;
      error = describeError(err);
      this.opts.log.error('check cycle failed', { error });
    }
    // After the renewals, so the inventory sees (and reminders resolve on) what was just deployed.
    if (!this.stopping.signal.aborted) {
      await this.monitor(config, notifier);
      // In fleet mode the fleet agent owns deploys (canary order, per-node records): a redeploy
      // here would bypass the rollout.
      if (!this.fleet) {
        await this.selfHeal.afterCycle(config, report?.outcomes, this.inventory, this.stopping.signal);
      }
    }
    // Announced after the inventory, so whoever the heartbeat wakes finds /metrics complete.
    this.cycles++;
    if (report?.ok) await this.succeeded(config);
    const finishedAt = this.opts.clock.now();
    const wakes = (report?.outcomes ?? [])
      .map((o) => o.decision.wakeAt?.getTime())
      .filter((t): t is number => t !== undefined);
    const healAt = this.selfHeal.wakeAt?.getTime() ?? Infinity;
    // An endpoint interval shorter than the check interval is honoured (epoch 0: not yet due);
    // with no endpoint configured there is nothing to wake for.
    const hasEndpoints =
      (config.watch?.endpoints?.length ?? 0) > 0 ||
      config.certificates.some((c) => (c.endpoints?.length ?? 0) > 0);
    const probeAt = (hasEndpoints && this.inventory.nextAt.getTime()) || Infinity;
    const nextAt = new Date(Math.min(finishedAt.getTime() + interval, healAt, probeAt, ...wakes));
    this.opts.log.debug('check cycle done', {
      cycle: this.cycles,
      nextAt,
      renewed: report?.outcomes.filter((o) => o.status === 'renewed').length ?? 0,
    });
    return { startedAt, finishedAt, nextAt, ...(report ? { report } : {}), ...(error ? { error } : {}) };
  }

  /** The inventory (and its reminders), the daily readiness canary and the digest: never throw. */
  private async monitor(config: AgentConfig, notifier: Notifier): Promise<void> {
    const signal = this.stopping.signal;
    await this.inventory.refresh(config, notifier, signal);
    if (!signal.aborted) await this.readiness.refresh(config, notifier, signal);
    const inventory = this.inventory.report;
    if (inventory && !signal.aborted) {
      await this.digest.refresh(config, notifier, [...inventory.results, ...this.readiness.rows]);
    }
  }

  /**
   * A cycle with nothing failing: recorded in the state directory (for `certpilot check`'s
   * renewer-silent) and announced to the heartbeat URL. Neither may fail the cycle: a full
   * disk or a monitoring service that is down is logged, and the next cycle tries again.
   */
  private async succeeded(config: AgentConfig): Promise<void> {
    const at = this.opts.clock.now();
    this.lastSuccessfulRun = at;
    await recordSuccessfulRun(config.storage.stateDir, { at, by: 'run' }).catch((err: unknown) =>
      this.opts.log.warn('cannot record the successful run', { error: describeError(err) }),
    );
    if (config.daemon.heartbeat) await sendHeartbeat(config.daemon.heartbeat, this.opts.log);
  }

  private record(outcomes: readonly CertOutcome[]): void {
    for (const o of outcomes) {
      const c = this.counters.get(o.name) ?? { renewed: 0, failed: 0 };
      if (o.status === 'renewed' || o.status === 'deployed') {
        c.renewed += o.status === 'renewed' ? 1 : 0;
        c.lastSuccess = this.opts.clock.now();
      }
      if (o.status === 'failed') c.failed++;
      c.nextRenewal = o.decision.renewAt;
      c.notAfter = o.notAfter;
      this.counters.set(o.name, c);
    }
  }

  /**
   * The Prometheus text exposition: the inventory's series, built exactly as `certpilot check
   * --prometheus` builds its textfile (src/metrics/registry.ts, one definition per metric), plus
   * the daemon's renewal state. The expiry series also carries the daemon's own view of the
   * store, with source="store".
   */
  async metrics(): Promise<string> {
    const prom = loadPromClient();
    const { buildMetricsRegistry, checkResultMetrics } = await import('../metrics/registry');
    const inventory = this.inventory.report;
    const rows = [...(inventory?.results ?? []), ...this.readiness.rows];
    const readiness = this.readiness.checks;
    const registry = await buildMetricsRegistry(rows.map(checkResultMetrics), {
      ...(inventory ? { checkedAt: inventory.checkedAt } : {}),
      ...(readiness.length > 0 ? { readiness: [...readiness] } : {}),
      ...(this.lastSuccessfulRun ? { lastSuccessfulRun: this.lastSuccessfulRun } : {}),
    });
    const seconds = toEpochSeconds;
    const renewals = createCounter(prom, registry, RENEWALS);
    const lastSuccess = createGauge(prom, registry, LAST_SUCCESS);
    const next = createGauge(prom, registry, NEXT_RENEWAL);
    const notAfter = registry.getSingleMetric(CERTIFICATE_NOT_AFTER.name) as Gauge<string>;
    for (const [name, c] of this.counters) {
      renewals.inc({ name, result: 'success' }, c.renewed);
      renewals.inc({ name, result: 'failure' }, c.failed);
      if (c.lastSuccess) lastSuccess.set({ name }, seconds(c.lastSuccess));
      if (c.nextRenewal) next.set({ name }, seconds(c.nextRenewal));
      if (c.notAfter) notAfter.set({ name, source: 'store', endpoint: '' }, seconds(c.notAfter));
    }
    await this.selfHeal.addMetrics(registry);
    createCounter(prom, registry, DAEMON_CYCLES).inc(this.cycles);
    createCounter(prom, registry, DAEMON_CYCLE_FAILURES).inc(this.cycleFailures);
    if (this.last) createGauge(prom, registry, DAEMON_LAST_CYCLE).set(seconds(this.last.finishedAt));
    // Before start() there is no configuration to judge health against.
    if (this.config) createGauge(prom, registry, DAEMON_HEALTHY).set(this.health().ok ? 1 : 0);
    return registry.metrics();
  }

  /**
   * Unhealthy (503) when the loop is stuck (no cycle finished for HEALTH_STALE_INTERVALS check
   * intervals: certbot#9931's silent scheduler), when the last cycle failed as a whole, or when
   * any certificate's renewal failed in the last cycle or is due and held back after failures.
   * Each reason is one line an operator can act on. Healthy again as soon as a cycle ends with
   * nothing failing.
   */
  health(): { ok: boolean; body: Record<string, unknown> } {
    const now = this.opts.clock.now().getTime();
    const staleAfter = HEALTH_STALE_INTERVALS * this.config.daemon.checkIntervalMs;
    const last = this.last;
    const since = last?.finishedAt ?? this.startedAt;
    const stale = now - since.getTime() > staleAfter;
    const reasons: string[] = [];
    if (stale) {
      reasons.push(
        `no check cycle finished since ${since.toISOString()} (${HEALTH_STALE_INTERVALS} check intervals): the loop is stuck`,
      );
    }
    if (last?.error) reasons.push(`the last check cycle failed: ${last.error}`);
    const failing: string[] = [];
    for (const o of last?.report?.outcomes ?? []) {
      if (o.status === 'failed') {
        failing.push(o.name);
        reasons.push(`${o.name}: renewal failed: ${o.error ?? 'unknown error'}`);
      } else if (o.status === 'waiting') {
        failing.push(o.name);
        reasons.push(`${o.name}: renewal due but held back: ${o.decision.detail}`);
      }
    }
    for (const h of last?.report?.hookErrors ?? []) reasons.push(`hook failed: ${h}`);
    const ok = reasons.length === 0;
    return {
      ok,
      body: {
        status: ok ? 'ok' : stale ? 'stale' : 'failing',
        reasons,
        cycles: this.cycles,
        lastCycleAt: last?.finishedAt.toISOString() ?? null,
        nextCycleAt: last?.nextAt.toISOString() ?? null,
        failing,
      },
    };
  }

  /** Fleet mode follows the configuration: started, reconfigured or stopped on start and reload. */
  private async applyFleet(config: AgentConfig): Promise<void> {
    if (!config.fleet || config.storage.backend !== 'etcd') {
      await this.fleet?.agent.stop();
      this.fleet = undefined;
      return;
    }
    if (this.fleet) return this.fleet.agent.reconfigure(config);
    const { FleetAgent, renewConfigOf } = await import('../fleet');
    this.fleet = {
      agent: new FleetAgent(config, { log: this.opts.log, clock: this.opts.clock }),
      renewConfigOf,
    };
    this.fleet.agent.start();
  }

  private async listen(): Promise<void> {
    const listen = this.config.daemon.listen;
    if (!listen) return;
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end();
        return;
      }
      if (path === '/metrics') {
        this.metrics().then(
          (text) =>
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
          (err: unknown) => {
            // The details go to the log, not to whoever can reach the port.
            this.opts.log.error('metrics failed', { error: describeError(err) });
            res.writeHead(500).end('internal error\n');
          },
        );
        return;
      }
      if (path === '/healthz') {
        const h = this.health();
        res
          .writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(h.body) + '\n');
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  private async closeServer(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
