import { withDeadline } from '../core/abort';
import type { Clock } from '../core/clock';
import { CertpilotError, UsageError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { planRenewals, type Decision } from '../plan';
import { CertStore } from '../store/cert-store';
import { generatePrivateKey, keyTypeOfKey, type CertInfo } from '../x509';
import type { AcmeService } from '../acme/service';
import type { Dns01Solver } from '../dns/solver';
import { mapLimit } from '../core/concurrency';
import { ChallengeJournal } from '../store/journal';
import { recoverInterrupted } from './recover';
import { certDeployOf, deploySettingsOf, type DeployAwareConfig } from '../deploy/config';
import { deployCertificate, findPrevious, hasDeployWork, type DeployResult } from '../deploy/deploy';
import { runHookList } from '../deploy/hooks';
import { postVars } from '../deploy/env';
import { deployPending, readDeployState } from '../deploy/state';
import { createNotifier, type Notifier } from '../notify';
import type { CertPaths, StoredCertificate } from '../store/cert-store';

const DAY_MS = 86_400_000;

/** A whole order (propagation included) may not take longer than this. */
export const ORDER_TIMEOUT_MS = 15 * 60_000;

export interface RenewOptions {
  /** Only these certificates (default: all). */
  names?: readonly string[];
  force?: boolean;
  /** Plan and print; contact nothing, write nothing. */
  dryRun?: boolean;
}

/** `deployed`: no renewal, but a pending deploy from an earlier run was finished and verified. */
export type OutcomeStatus = 'renewed' | 'deployed' | 'valid' | 'failed' | 'planned';

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
  /** True when every selected certificate is valid afterwards (dry-run: nothing failed). */
  ok: boolean;
  acmeRequests?: number;
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

/**
 * inspect → plan → issue → store → deploy → verify, for every selected certificate. A
 * certificate whose version is current but whose deploy never completed (see deploy/state.ts)
 * is deployed and verified again without a new order.
 */
export async function runRenew(
  config: AgentConfig | DeployAwareConfig,
  options: RenewOptions,
  deps: RenewDeps,
): Promise<RenewReport> {
  const { log } = deps;
  const specs = selectCertificates(config as AgentConfig, options.names);
  const settings = deploySettingsOf(config);
  const notifier = deps.notifier ?? createNotifier(settings.notify, log);
  const stateDir = config.storage.stateDir;
  const store = new CertStore({
    stateDir: config.storage.stateDir,
    archiveDepth: config.storage.archiveDepth,
    log,
  });

  const current = new Map<string, CertInfo | null>();
  await Promise.all(
    specs.map(async (spec) => {
      try {
        current.set(spec.name, (await store.read(spec.name))?.info ?? null);
      } catch (err) {
        // An unreadable or mismatched pair on disk is treated as missing: issuing a fresh pair
        // is the repair, and install() archives what was there.
        log.warn('stored certificate unusable, will reissue', { cert: spec.name, error: describeError(err) });
        current.set(spec.name, null);
      }
    }),
  );

  const decisions = planRenewals(specs, current, deps.clock.now(), config.renewal, { force: options.force });
  const specByName = new Map(specs.map((s) => [s.name, s]));

  // Versions installed by an earlier run whose deploy or verification did not finish.
  const redeploy = new Set<string>();
  await Promise.all(
    decisions.map(async (d) => {
      const spec = specByName.get(d.name)!;
      if (d.renew || !hasDeployWork(certDeployOf(spec), settings)) return;
      const state = await readDeployState(stateDir, d.name).catch(() => null);
      if (deployPending(state, current.get(d.name)?.serial)) redeploy.add(d.name);
    }),
  );

  if (options.dryRun) {
    return {
      ok: true,
      outcomes: decisions.map((d) => ({
        name: d.name,
        status: d.renew || redeploy.has(d.name) ? 'planned' : 'valid',
        decision: d,
        serial: current.get(d.name)?.serial,
        notAfter: current.get(d.name)?.notAfter,
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

  // Challenge records left by a run that was killed (its journal survived it). Done for every
  // leftover entry, due or not: a forced run that died leaves records behind a valid cert.
  const journal = new ChallengeJournal(stateDir);
  for (const name of await journal.pending()) {
    if (specByName.has(name) || !config.certificates.some((c) => c.name === name)) {
      await recoverInterrupted(name, journal, getSolver, log, deps.signal);
    }
  }

  const hookErrors: string[] = [];
  const working = decisions.filter((d) => d.renew || redeploy.has(d.name)).map((d) => d.name);
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

  const work = async (decision: Decision): Promise<CertOutcome> => {
    const info = current.get(decision.name) ?? undefined;
    const spec = specByName.get(decision.name)!;
    if (!decision.renew && !redeploy.has(decision.name)) {
      return {
        name: decision.name,
        status: 'valid',
        decision,
        serial: info?.serial,
        notAfter: info?.notAfter,
      };
    }
    const clog = log.child({ cert: spec.name });
    const started = performance.now();
    const failedOutcome = (err: unknown, what: string): CertOutcome => {
      const message = describeError(err);
      clog.error(what, { error: message });
      return {
        name: spec.name,
        status: 'failed',
        decision,
        serial: info?.serial,
        notAfter: info?.notAfter,
        error: message,
        errorCode: err instanceof CertpilotError ? err.code : undefined,
        durationMs: Math.round(performance.now() - started),
      };
    };
    if (preFailed) return failedOutcome(new Error('skipped: a pre hook failed'), 'not renewed');
    const preErrors = await perCertHooks(spec, 'pre', {});
    if (preErrors.length > 0) return failedOutcome(new Error(preErrors.join('; ')), 'pre hook failed');

    if (!decision.renew) {
      // A version from an earlier run that was never verified: deploy it again, no new order.
      clog.info('deploy pending from an earlier run; deploying again without a new order', {
        serial: info?.serial,
      });
      try {
        const previous = info ? await findPrevious(store, spec.name, info.serial) : null;
        const result = await deployFor(spec, clog, undefined, previous?.info.serial, previous?.dir);
        return withDeploy(
          {
            name: spec.name,
            status: 'deployed',
            decision,
            serial: info?.serial,
            notAfter: info?.notAfter,
            durationMs: Math.round(performance.now() - started),
          },
          result,
        );
      } catch (err) {
        return failedOutcome(err, 'deploy failed');
      }
    }

    clog.info('renewing', { reason: decision.reason, detail: decision.detail });
    try {
      const service = await getAcme();
      const keyPem = await chooseKey(spec, store, info);
      const signal = withDeadline(deps.signal, ORDER_TIMEOUT_MS);
      const issued = await service.issue({
        name: spec.name,
        domains: spec.domains,
        keyPem,
        providerFor: (domain) => providerFor(spec, domain),
        solver: getSolver(),
        signal,
        journal,
      });
      const installed = await store.install(spec.name, issued, spec.outputs);
      clog.info('certificate installed', {
        serial: installed.info.serial,
        notAfter: installed.info.notAfter,
      });
      await deps.faults?.afterInstall?.(spec.name, store.paths(spec.name));
      const renewed: CertOutcome = {
        name: spec.name,
        status: 'renewed',
        decision,
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
      const outcome = failedOutcome(err, 'renewal failed');
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
  };

  const outcomes = await mapLimit(decisions, config.concurrency, async (decision) => {
    const outcome = await work(decision);
    if (decision.renew || redeploy.has(decision.name)) {
      const spec = specByName.get(decision.name)!;
      const ok = outcome.status !== 'failed';
      const errors = await perCertHooks(spec, 'post', postVars(ok ? [spec.name] : [], ok ? [] : [spec.name]));
      if (errors.length > 0) hookErrors.push(...errors);
    }
    return outcome;
  });

  // Let's Encrypt no longer mails expiry warnings: say it when a failure leaves little time.
  const now = deps.clock.now().getTime();
  for (const o of outcomes) {
    if (o.status !== 'failed') continue;
    const left = o.notAfter ? o.notAfter.getTime() - now : 0;
    if (left < settings.notify.criticalDays * DAY_MS) {
      await notifier.notify({
        kind: 'critical',
        cert: o.name,
        domains: specByName.get(o.name)?.domains,
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
  return {
    outcomes,
    ok: outcomes.every((o) => o.status !== 'failed') && hookErrors.length === 0,
    acmeRequests: service?.stats.total,
    ...(hookErrors.length > 0 ? { hookErrors } : {}),
  };
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
  if (!p)
    throw new CertpilotError(
      'DNS_NO_PROVIDER',
      `renew: no DNS provider configured for ${domain} in certificate "${spec.name}"`,
    );
  return p;
}
