import { readFile } from 'node:fs/promises';
import { withDeadline } from '../core/abort';
import type { Clock } from '../core/clock';
import { mapLimit } from '../core/concurrency';
import { CertpilotError, UsageError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec } from '../config/types';
import type { AcmeService } from '../acme/service';
import { fetchRenewalInfo, tryAriCertId, type DirectoryInfo } from '../acme/ari';
import type { Dns01Solver } from '../dns/solver';
import {
  afterFailure,
  afterSuccess,
  DEFAULT_EMERGENCY_RATIO,
  failureFromError,
  nextAction,
  withAriError,
  withOrder,
  withRenewalInfo,
  type NextAction,
  type SchedulePolicy,
  type ScheduleReason,
} from '../plan/schedule';
import { StateStore, type CertState } from '../state/store';
import { CertStore, type CertPaths, type StoredCertificate } from '../store/cert-store';
import { ChallengeJournal } from '../store/journal';
import { acquireLock, type Lock } from '../store/lock';
import { generatePrivateKey, keyTypeOfKey, type CertInfo } from '../x509';
import { certDeployOf, deploySettingsOf } from '../config/access';
import type { DeployAwareConfig } from '../config/types';
import { deployCertificate, findPrevious, hasDeployWork, type DeployResult } from '../deploy/deploy';
import { postVars } from '../deploy/env';
import { runHookList } from '../deploy/hooks';
import { deployPending, readDeployState } from '../state/deploy-state';
import { createNotifier, type Notifier } from '../notify';
import { cachedDirectoryInfo } from './directory';
import { recoverInterrupted } from './recover';

const DAY_MS = 86_400_000;

/** A whole order (propagation included) may not take longer than this. */
export const ORDER_TIMEOUT_MS = 15 * 60_000;
/**
 * `certpilot renew` runs from a timer twice a day: an ARI time that falls before the next run
 * is taken now (RFC 9773 §4.2). The daemon wakes exactly and passes 0.
 */
export const RENEW_LOOKAHEAD_MS = 12 * 3_600_000;
/**
 * A `renew` that finds the daemon (or another renew) working on a certificate waits this long
 * for it, then reports the certificate as busy. Orders normally take seconds.
 */
export const LOCK_WAIT_MS = 120_000;

export interface RenewOptions {
  /** Only these certificates (default: all). */
  names?: readonly string[];
  force?: boolean;
  /** Plan and print; contact nothing, write nothing. */
  dryRun?: boolean;
}

/**
 * `deployed`: no renewal, but a pending deploy from an earlier run was finished and verified.
 * `waiting`: due, but held back by backoff or a rate limit from an earlier failure.
 * `busy`: another certpilot process held the certificate's lock.
 */
export type OutcomeStatus = 'renewed' | 'deployed' | 'valid' | 'waiting' | 'busy' | 'failed' | 'planned';

/** Why a certificate is (or is not) renewed now, with the scheduler's view of when. */
export interface Decision {
  name: string;
  renew: boolean;
  reason: ScheduleReason;
  detail: string;
  /** When renewal is planned (or the next attempt allowed). */
  renewAt?: Date;
  /** When this certificate must be looked at again (renewal, retry or ARI poll). */
  wakeAt?: Date;
  notAfter?: Date;
}

export interface CertOutcome {
  name: string;
  status: OutcomeStatus;
  decision: Decision;
  /** Of the certificate on disk after the run. */
  serial?: string;
  notAfter?: Date;
  error?: string;
  errorCode?: string;
  /** Wall time of the renewal (issue + install), when one ran. */
  durationMs?: number;
  /** Deploy and verification, when the certificate has deploy work and it ran. */
  deploy?: Pick<DeployResult, 'status' | 'endpoints' | 'rolledBack'>;
}

export interface RenewReport {
  outcomes: CertOutcome[];
  /** True when nothing failed and every selected certificate is in date afterwards. */
  ok: boolean;
  /** Requests this run sent to the CA, total and by endpoint ("METHOD /path"). */
  acmeRequests?: { total: number; byEndpoint: Record<string, number> };
  /** pre/post hook failures (they fail the run too). */
  hookErrors?: string[];
}

export interface RenewDeps {
  log: Logger;
  clock: Clock;
  signal?: AbortSignal;
  /** Created lazily, only when something must be ordered. */
  openAcme?: () => Promise<AcmeService>;
  openSolver?: () => Dns01Solver;
  /** Default: built from `config.notify`. */
  notifier?: Notifier;
  /** ARI lookahead (default RENEW_LOOKAHEAD_MS; the daemon passes 0). */
  lookaheadMs?: number;
  /** How long to wait for another process's lock (default LOCK_WAIT_MS; the daemon passes 0: skip). */
  lockWaitMs?: number;
  /** Test-only fault hooks. */
  faults?: {
    /** After a new version is installed and before it is deployed (e.g. corrupt the pair). */
    afterInstall?: (name: string, paths: CertPaths) => void | Promise<void>;
  };
}

export function selectCertificates(
  config: AgentConfig,
  names: readonly string[] | undefined,
): CertificateSpec[] {
  if (!names || names.length === 0) return [...config.certificates];
  const known = new Map(config.certificates.map((c) => [c.name, c]));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `renew: unknown certificate ${unknown.map((n) => `"${n}"`).join(', ')} (configured: ${[...known.keys()].join(', ') || 'none'})`,
    );
  }
  return names.map((n) => known.get(n)!);
}

export function schedulePolicy(config: AgentConfig, lookaheadMs: number): SchedulePolicy {
  return { ...config.renewal, emergencyRatio: DEFAULT_EMERGENCY_RATIO, lookaheadMs };
}

/** What is known about one certificate before acting: what is installed, its state, the plan. */
interface Observed {
  spec: CertificateSpec;
  info: CertInfo | null;
  state: CertState;
  action: NextAction;
  /** A version installed earlier whose deploy or verification never finished. */
  redeploy: boolean;
}

function toDecision(name: string, action: NextAction, info: CertInfo | null): Decision {
  return {
    name,
    renew: action.renewNow,
    reason: action.reason,
    detail: action.detail,
    renewAt: action.at,
    wakeAt: action.wakeAt,
    ...(info ? { notAfter: info.notAfter } : {}),
  };
}

/**
 * inspect → plan (with ARI, backoff and the exact-set guard) → lock → issue → store → deploy →
 * verify, for every selected certificate. A certificate whose version is current but whose
 * deploy never completed is deployed and verified again without a new order.
 */
export async function runRenew(
  config: AgentConfig | DeployAwareConfig,
  options: RenewOptions,
  deps: RenewDeps,
): Promise<RenewReport> {
  const { log } = deps;
  const cfg = config as AgentConfig;
  const specs = selectCertificates(cfg, options.names);
  const settings = deploySettingsOf(config);
  const notifier = deps.notifier ?? createNotifier(settings.notify, log);
  const stateDir = config.storage.stateDir;
  const store = new CertStore({ stateDir, archiveDepth: config.storage.archiveDepth, log });
  const states = new StateStore(stateDir);
  const policy = schedulePolicy(cfg, deps.lookaheadMs ?? RENEW_LOOKAHEAD_MS);
  const force = options.force === true;

  let directory: Promise<DirectoryInfo> | undefined;
  const getDirectory = (): Promise<DirectoryInfo> =>
    (directory ??= cachedDirectoryInfo(config.acme, stateDir, deps.clock.now(), log, deps.signal));
  // Only certificates that exist can have ARI; a directory lookup is needed only for them.
  const ariSupported = async (info: CertInfo | null): Promise<boolean> =>
    info !== null && tryAriCertId(info) !== undefined && (await getDirectory()).renewalInfo !== undefined;

  /** Reads what is installed and persisted, and plans. Used before locking (to decide on the pre hook) and under the lock. */
  const observe = async (spec: CertificateSpec): Promise<Observed> => {
    let info: CertInfo | null;
    try {
      info = await store.readInfo(spec.name);
    } catch (err) {
      // An unreadable certificate on disk is treated as missing: issuing a fresh pair is the
      // repair, and install() archives what was there.
      log.warn('stored certificate unusable, will reissue', { cert: spec.name, error: describeError(err) });
      info = null;
    }
    const { state, problem } = await states.read(spec.name);
    if (problem) log.warn('renewal state unusable, starting afresh', { cert: spec.name, problem });
    const now = deps.clock.now();
    const action = nextAction(
      spec,
      info,
      state,
      now,
      policy,
      { supported: await ariSupported(info) },
      { force },
    );
    let redeploy = false;
    if (!action.renewNow && info && hasDeployWork(certDeployOf(spec), settings)) {
      const deployState = await readDeployState(stateDir, spec.name).catch(() => null);
      redeploy = deployPending(deployState, info.serial);
    }
    return { spec, info, state, action, redeploy };
  };

  const planned = await Promise.all(specs.map(observe));

  if (options.dryRun) {
    return {
      ok: true,
      outcomes: planned.map((o) => ({
        name: o.spec.name,
        status: o.action.renewNow || o.redeploy ? 'planned' : isHeldBack(o.action) ? 'waiting' : 'valid',
        decision: toDecision(o.spec.name, o.action, o.info),
        serial: o.info?.serial,
        notAfter: o.info?.notAfter,
      })),
    };
  }

  let acme: Promise<AcmeService> | undefined;
  let solver: Dns01Solver | undefined;
  const getAcme = (): Promise<AcmeService> => {
    if (!deps.openAcme) throw new CertpilotError('ACME_ORDER_FAILED', 'renew: no ACME client available');
    acme ??= deps.openAcme();
    return acme;
  };
  const getSolver = (): Dns01Solver => {
    solver ??= deps.openSolver?.();
    if (!solver) throw new CertpilotError('DNS_NO_PROVIDER', 'renew: no DNS-01 solver available');
    return solver;
  };
  const journal = new ChallengeJournal(stateDir);

  // Journals of certificates no longer configured (a run was killed, then the config changed):
  // nobody else will ever clean them. Configured ones are replayed under their own lock below.
  const configured = new Set(cfg.certificates.map((c) => c.name));
  for (const name of await journal.pending()) {
    if (configured.has(name)) continue;
    const lock = await acquireLock(stateDir, name, { wait: false, purpose: 'recover' });
    if (!lock) continue;
    try {
      await recoverInterrupted(name, journal, getSolver, log, deps.signal);
    } finally {
      await lock.release();
    }
  }
  const pendingJournals = new Set(await journal.pending());

  const hookErrors: string[] = [];
  const working = planned.filter((o) => o.action.renewNow || o.redeploy).map((o) => o.spec.name);
  // pre: once, and only when some renewal or deploy work will happen.
  if (working.length > 0 && settings.hooks.pre.length > 0) {
    hookErrors.push(
      ...(await runHookList(
        settings.hooks.pre,
        'hooks.pre',
        { CERTPILOT_CERT_NAMES: working.join(' ') },
        { log, ...(deps.signal ? { signal: deps.signal } : {}), stopOnFailure: true },
      )),
    );
  }
  const preFailed = hookErrors.length > 0;

  /**
   * `installed` is what install() just validated and wrote. It is used as is rather than read
   * back, so files damaged on disk after the install are judged by the deployers (`nginx -t`),
   * which then roll back, instead of stopping the deploy before it starts.
   */
  const deployFor = async (
    spec: CertificateSpec,
    clog: Logger,
    installed: StoredCertificate | undefined,
    previousSerial: string | undefined,
    rollbackTo: string | undefined,
  ): Promise<DeployResult | undefined> => {
    const deploy = certDeployOf(spec);
    if (!hasDeployWork(deploy, settings)) return undefined;
    const stored = installed ?? (await store.read(spec.name));
    if (!stored) throw new CertpilotError('STORE_IO', `store: ${spec.name}: nothing installed to deploy`);
    return deployCertificate(
      {
        spec,
        deploy,
        settings,
        store,
        stateDir,
        notifier,
        log: clog,
        ...(deps.signal ? { signal: deps.signal } : {}),
      },
      {
        current: stored,
        ...(previousSerial ? { previousSerial } : {}),
        ...(rollbackTo ? { rollbackTo } : {}),
      },
    );
  };

  const withDeploy = (outcome: CertOutcome, result: DeployResult | undefined): CertOutcome => {
    if (!result) return outcome;
    const deploy = {
      status: result.status,
      endpoints: result.endpoints,
      ...(result.rolledBack ? { rolledBack: result.rolledBack } : {}),
    };
    if (result.ok) return { ...outcome, deploy };
    return {
      ...outcome,
      status: 'failed',
      serial: result.serial,
      notAfter: result.notAfter,
      error: result.error,
      errorCode: result.errorCode,
      deploy,
    };
  };

  const perCertHooks = async (
    spec: CertificateSpec,
    phase: 'pre' | 'post',
    vars: Record<string, string>,
  ): Promise<string[]> => {
    const list = certDeployOf(spec).hooks[phase];
    if (list.length === 0) return [];
    return runHookList(
      list,
      `certificates["${spec.name}"].hooks.${phase}`,
      { CERTPILOT_CERT_NAME: spec.name, CERTPILOT_DOMAINS: spec.domains.join(' '), ...vars },
      { log, ...(deps.signal ? { signal: deps.signal } : {}), stopOnFailure: phase === 'pre' },
    );
  };

  /** Polls ARI when due and folds the answer into the state; returns the re-planned action. */
  const pollAri = async (o: Observed): Promise<Observed> => {
    const now = deps.clock.now();
    if (!o.info || !o.action.pollAriAt || o.action.pollAriAt.getTime() > now.getTime()) return o;
    const certId = tryAriCertId(o.info);
    const dir = await getDirectory();
    if (!certId || !dir.renewalInfo) return o;
    let state: CertState;
    try {
      const ca = config.acme.caBundle ? await readFile(config.acme.caBundle, 'utf8') : undefined;
      const info = await fetchRenewalInfo(dir.renewalInfo, certId, {
        timeoutMs: config.acme.requestTimeoutMs,
        ...(ca ? { ca } : {}),
        ...(deps.signal ? { signal: deps.signal } : {}),
      });
      state = withRenewalInfo(o.state, certId, info, now);
      log.info('renewal information', {
        cert: o.spec.name,
        windowStart: info.window.start,
        windowEnd: info.window.end,
        ...(info.explanationURL ? { explanation: info.explanationURL } : {}),
      });
    } catch (err) {
      state = withAriError(o.state, certId, err, now);
      log.warn('renewal information unavailable', { cert: o.spec.name, error: describeError(err) });
    }
    const action = nextAction(o.spec, o.info, state, now, policy, { supported: true }, { force });
    return { ...o, state, action };
  };

  const work = async (first: Observed): Promise<CertOutcome> => {
    const { spec } = first;
    const clog = log.child({ cert: spec.name });
    const started = performance.now();
    const hasWork =
      first.action.renewNow ||
      first.redeploy ||
      first.action.reason === 'guarded' ||
      pendingJournals.has(spec.name);
    // Nothing to do and no ARI poll due: no lock, no writes (a no-op run stays cheap and
    // never waits for a daemon that is busy with this certificate).
    const ariDue =
      first.action.pollAriAt !== undefined && first.action.pollAriAt.getTime() <= deps.clock.now().getTime();
    // Held back (backoff, rate limit) is not valid: a due certificate must not report success.
    if (!hasWork && !ariDue) return outcomeFor(first, isHeldBack(first.action) ? 'waiting' : 'valid');

    let lock: Lock | null;
    const waitMs = deps.lockWaitMs ?? LOCK_WAIT_MS;
    try {
      lock = await acquireLock(stateDir, spec.name, {
        wait: waitMs > 0,
        timeoutMs: waitMs,
        purpose: 'renew',
        ...(deps.signal ? { signal: deps.signal } : {}),
        onBusy: (holder) => clog.info('waiting for another certpilot process', { holderPid: holder?.pid }),
      });
    } catch (err) {
      if (err instanceof CertpilotError && err.code === 'LOCKED') lock = null;
      else throw err;
    }
    if (!lock) {
      clog.warn('another certpilot process is working on this certificate; skipped');
      return { ...outcomeFor(first, 'busy'), error: 'another certpilot process holds its lock' };
    }
    try {
      if (pendingJournals.has(spec.name))
        await recoverInterrupted(spec.name, journal, getSolver, clog, deps.signal);
      // Under the lock, look again: another process may have renewed it meanwhile.
      let o = await observe(spec);
      o = await pollAri(o);
      const outcome = await act(o, clog, started);
      return outcome;
    } finally {
      await lock.release();
    }
  };

  const outcomeFor = (o: Observed, status: OutcomeStatus): CertOutcome => ({
    name: o.spec.name,
    status,
    decision: toDecision(o.spec.name, o.action, o.info),
    serial: o.info?.serial,
    notAfter: o.info?.notAfter,
  });

  /** Runs under the certificate's lock. Persists the scheduling state whatever happens. */
  const act = async (o: Observed, clog: Logger, started: number): Promise<CertOutcome> => {
    const { spec, info, action } = o;
    let state = o.state;
    const failedOutcome = (err: unknown, what: string): CertOutcome => {
      const message = describeError(err);
      clog.error(what, { error: message });
      return {
        ...outcomeFor(o, 'failed'),
        error: message,
        errorCode: err instanceof CertpilotError ? err.code : undefined,
        durationMs: Math.round(performance.now() - started),
      };
    };
    try {
      if (action.reason === 'guarded') {
        const message = `renew: ${action.detail}`;
        clog.error('exact-set guard: not ordering again', { detail: action.detail });
        await notifier.notify({ kind: 'renewal-failed', cert: spec.name, domains: spec.domains, message });
        return {
          ...failedOutcome(new CertpilotError('ACME_RATE_LIMITED', message), 'renewal held back'),
          errorCode: 'GUARDED',
        };
      }
      if (!action.renewNow && !o.redeploy) {
        const waiting = isHeldBack(action);
        if (waiting) clog.info('renewal due but held back', { reason: action.reason, detail: action.detail });
        return outcomeFor(o, waiting ? 'waiting' : 'valid');
      }
      if (preFailed) return failedOutcome(new Error('skipped: a pre hook failed'), 'not renewed');
      const preErrors = await perCertHooks(spec, 'pre', {});
      if (preErrors.length > 0) return failedOutcome(new Error(preErrors.join('; ')), 'pre hook failed');

      if (!action.renewNow) {
        // A version from an earlier run that was never verified: deploy it again, no new order.
        clog.info('deploy pending from an earlier run; deploying again without a new order', {
          serial: info?.serial,
        });
        try {
          const previous = info ? await findPrevious(store, spec.name, info.serial) : null;
          const result = await deployFor(spec, clog, undefined, previous?.info.serial, previous?.dir);
          return withDeploy(
            { ...outcomeFor(o, 'deployed'), durationMs: Math.round(performance.now() - started) },
            result,
          );
        } catch (err) {
          return failedOutcome(err, 'deploy failed');
        }
      }

      clog.info('renewing', { reason: action.reason, detail: action.detail });
      try {
        const service = await getAcme();
        const keyPem = await chooseKey(spec, store, info ?? undefined);
        const signal = withDeadline(deps.signal, ORDER_TIMEOUT_MS);
        const issued = await service.issue({
          name: spec.name,
          domains: spec.domains,
          keyPem,
          providerFor: (domain) => providerFor(spec, domain),
          solver: getSolver(),
          signal,
          journal,
          ...(action.replaces ? { replaces: action.replaces } : {}),
          ...(spec.profile ? { profile: spec.profile } : {}),
        });
        // Counted at once: the CA has issued, whatever happens to the files next.
        state = withOrder(state, spec.domains, deps.clock.now());
        const installed = await store.install(spec.name, issued, spec.outputs);
        state = afterSuccess(state, installed.info, deps.clock.now());
        await deps.faults?.afterInstall?.(spec.name, store.paths(spec.name));
        const after = nextAction(spec, installed.info, state, deps.clock.now(), policy, {
          supported: await ariSupported(installed.info),
        });
        const renewed: CertOutcome = {
          name: spec.name,
          status: 'renewed',
          // The scheduler's view after this renewal: when the new certificate is due.
          decision: { ...toDecision(spec.name, action, info), renewAt: after.at, wakeAt: after.wakeAt },
          serial: installed.info.serial,
          notAfter: installed.info.notAfter,
          durationMs: Math.round(performance.now() - started),
        };
        try {
          const files: StoredCertificate = {
            name: spec.name,
            info: installed.info,
            dir: store.paths(spec.name).dir,
            ...issued,
          };
          return withDeploy(renewed, await deployFor(spec, clog, files, info?.serial, installed.archived));
        } catch (err) {
          // Deploy machinery itself failed (state not writable...): the new version stays
          // installed and its deploy state says pending, so the next run retries.
          return {
            ...failedOutcome(err, 'deploy failed'),
            serial: installed.info.serial,
            notAfter: installed.info.notAfter,
          };
        }
      } catch (err) {
        state = afterFailure(state, failureFromError(err), deps.clock.now());
        const outcome = failedOutcome(err, 'renewal failed');
        outcome.decision = { ...outcome.decision, wakeAt: state.failures.nextRetryAt };
        await notifier.notify({
          kind: 'renewal-failed',
          cert: spec.name,
          domains: spec.domains,
          serial: info?.serial,
          notAfter: info?.notAfter,
          message: outcome.error ?? 'renewal failed',
        });
        return outcome;
      }
    } finally {
      await states
        .write(state, deps.clock.now())
        .catch((err: unknown) => clog.error('renewal state not saved', { error: describeError(err) }));
    }
  };

  const outcomes = await mapLimit(planned, config.concurrency, async (o) => {
    const outcome = await work(o);
    if (
      outcome.status === 'renewed' ||
      outcome.status === 'deployed' ||
      (outcome.status === 'failed' && outcome.decision.renew)
    ) {
      const ok = outcome.status !== 'failed';
      const errors = await perCertHooks(
        o.spec,
        'post',
        postVars(ok ? [o.spec.name] : [], ok ? [] : [o.spec.name]),
      );
      if (errors.length > 0) hookErrors.push(...errors);
    }
    return outcome;
  });

  // Let's Encrypt no longer mails expiry warnings: say it when a failure leaves little time.
  const nowMs = deps.clock.now().getTime();
  for (const o of outcomes) {
    if (o.status !== 'failed') continue;
    const left = o.notAfter ? o.notAfter.getTime() - nowMs : 0;
    if (left < settings.notify.criticalDays * DAY_MS) {
      await notifier.notify({
        kind: 'critical',
        cert: o.name,
        domains: specs.find((s) => s.name === o.name)?.domains,
        serial: o.serial,
        notAfter: o.notAfter,
        message: o.notAfter
          ? `expires ${o.notAfter.toISOString()} (in ${Math.max(0, Math.floor(left / DAY_MS))} days) and this run failed: ${o.error ?? ''}`
          : `no usable certificate and this run failed: ${o.error ?? ''}`,
      });
    }
  }

  // post: once at the end, always (nothing renewed is news too), told what renewed and failed.
  if (settings.hooks.post.length > 0) {
    const renewed = outcomes
      .filter((o) => o.status === 'renewed' || o.status === 'deployed')
      .map((o) => o.name);
    const failed = outcomes.filter((o) => o.status === 'failed').map((o) => o.name);
    hookErrors.push(
      ...(await runHookList(settings.hooks.post, 'hooks.post', postVars(renewed, failed), {
        log,
        ...(deps.signal ? { signal: deps.signal } : {}),
        stopOnFailure: false,
      })),
    );
  }

  const service = acme ? await acme.catch(() => undefined) : undefined;
  service?.close();
  await solver?.close();
  // In date afterwards: a certificate held back by backoff is fine while it is still valid.
  const inDate = (o: CertOutcome): boolean => o.notAfter !== undefined && o.notAfter.getTime() > nowMs;
  return {
    outcomes,
    ok:
      outcomes.every(
        (o) => o.status !== 'failed' && (o.status !== 'waiting' && o.status !== 'busy' ? true : inDate(o)),
      ) && hookErrors.length === 0,
    ...(service
      ? { acmeRequests: { total: service.stats.total, byEndpoint: { ...service.stats.byEndpoint } } }
      : {}),
    ...(hookErrors.length > 0 ? { hookErrors } : {}),
  };
}

/** Due, but an earlier failure (backoff, rate limit) or the exact-set guard holds it back. */
function isHeldBack(action: NextAction): boolean {
  return action.reason === 'backoff' || action.reason === 'rate-limited' || action.reason === 'guarded';
}

async function chooseKey(
  spec: CertificateSpec,
  store: CertStore,
  info: CertInfo | undefined,
): Promise<string> {
  if (spec.reuseKey && info) {
    const stored = await store.read(spec.name).catch(() => null);
    if (stored && keyTypeOfKey(stored.key) === spec.keyType) return stored.key;
  }
  return generatePrivateKey(spec.keyType);
}

/** Per-domain mapping first, then the certificate's default provider. The loader guarantees one exists. */
export function providerFor(spec: CertificateSpec, domain: string): string {
  const p = spec.domainProviders[domain] ?? spec.dnsProvider;
  if (!p) {
    throw new CertpilotError(
      'DNS_NO_PROVIDER',
      `renew: no DNS provider configured for ${domain} in certificate "${spec.name}"`,
    );
  }
  return p;
}
