import { readFile } from 'node:fs/promises';
import { fetchRenewalInfo, type DirectoryInfo, type RenewalInfo } from '../acme/ari';
import type { Clock } from '../core/clock';
import { CertpilotError, UsageError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { certDeployOf, deploySettingsOf } from '../config/access';
import type { AcmeSettings, DeployAwareConfig, DeploySettings } from '../config/types';
import type { DeployResult } from '../deploy/deploy';
import { hasDeployWork } from '../deploy/work';
import { runHookList } from '../deploy/hooks';
import { deployPending, readDeployState } from '../state/deploy-state';
import { dropKept, readKept, type KeptVersion } from '../state/kept';
import { configuredHostLookup } from '../dns/host-lookup';
import type { Dns01Solver } from '../dns/solver';
import { createNotifier, type Notifier } from '../notify';
import { DEFAULT_EMERGENCY_RATIO, type SchedulePolicy } from '../plan/schedule';
import { StateStore } from '../state/store';
import { CertStore, type StoredCertificate } from '../store/cert-store';
import { ChallengeJournal } from '../store/journal';
import { acquireLock, type AcquireLockOptions, type Lock } from '../store/lock';
import type { DnsResolver } from '../dns/resolver';
import type { CaaProperty } from '../inspect/caa';
import { cachedDirectoryInfo, readCachedDirectoryInfo } from './directory';
import type { RenewAcme, RenewDeps } from './types';

/** A name's relevant CAA set and where it was found (none found: no CAA up to the root). */
export interface CaaSet {
  readonly foundAt?: string;
  readonly properties: readonly CaaProperty[];
}

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

/** The store operations a renewal uses (deploy gets the real store through the DeployRunner). */
export type RenewCertStore = Pick<CertStore, 'readInfo' | 'read' | 'install' | 'paths'>;
export type RenewStateStore = Pick<StateStore, 'read' | 'write'>;
export type LockAcquirer = (name: string, opts: AcquireLockOptions) => Promise<Lock | null>;
export type HookRunner = typeof runHookList;

/** The ACME service and the DNS solver, opened on first use and closed once at the end. */
export interface RenewClients {
  acme(): Promise<RenewAcme>;
  /** The service of `ca`: the primary's for acme itself, else that fallback CA's, opened on first use. */
  acmeFor(ca: AcmeSettings): Promise<RenewAcme>;
  solver(): Dns01Solver;
  /** The ACME service if one was opened successfully (for request counts: every CA's, summed). */
  openedAcme(): Promise<RenewAcme | undefined>;
  /** Closes whatever was opened; never rejects. */
  close(): Promise<void>;
}

/** Deploy and verification of installed versions (src/deploy), as a renewal needs them. */
export interface DeployRunner {
  hasWork(spec: CertificateSpec): boolean;
  /** True when the deploy of `serial` started in an earlier run never finished. */
  pending(name: string, serial: string): Promise<boolean>;
  /** The newest archived version with another serial (the rollback target). */
  previous(name: string, serial: string): Promise<{ serial: string; dir: string } | null>;
  run(
    spec: CertificateSpec,
    log: Logger,
    req: { installed?: StoredCertificate; previousSerial?: string; rollbackTo?: string },
  ): Promise<DeployResult | undefined>;
  /** The version a rollback replaced (src/state/kept.ts), or null. */
  kept(name: string): Promise<KeptVersion | null>;
  /** Forgets it: a newer version was deployed and verified. */
  dropKept(name: string): Promise<void>;
}

/** Everything a renewal run works with, built once per run. Every collaborator can be replaced. */
export interface RenewContext {
  config: AgentConfig;
  settings: DeploySettings;
  policy: SchedulePolicy;
  force: boolean;
  /** See RenewOptions.overrideGuard. */
  overrideGuard: boolean;
  log: Logger;
  clock: Clock;
  signal?: AbortSignal;
  lockWaitMs: number;
  store: RenewCertStore;
  states: RenewStateStore;
  journal: ChallengeJournal;
  acquireLock: LockAcquirer;
  clients: RenewClients;
  notifier: Notifier;
  deploy: DeployRunner;
  runHooks: HookRunner;
  /** The CA's directory (ARI support), cached on disk and fetched at most once per run. */
  directory(): Promise<DirectoryInfo>;
  /** One ARI request for `certId` at `url`. */
  renewalInfo(url: string, certId: string): Promise<RenewalInfo>;
  /** The relevant CAA set of `name` (RFC 8659 tree climbing) through dns.resolvers; only with acme.fallback. */
  findCaa(name: string, signal: AbortSignal): Promise<CaaSet>;
  /** A CA's CAA issuer domains: its directory's caaIdentities (cached like the primary's), else its configured ones. */
  caIdentities(ca: AcmeSettings): Promise<readonly string[] | undefined>;
  faults?: RenewDeps['faults'];
}

/**
 * The CAA issuer domains of `ca`: what its directory publishes (RFC 8555 §7.1.1 meta.caaIdentities,
 * cached on disk per directory URL like the primary's), else the configured ones. The same
 * order as `check --readiness`.
 */
async function identitiesOf(
  ca: AcmeSettings,
  primary: AcmeSettings,
  stateDir: string,
  clock: Clock,
  log: Logger,
  signal: AbortSignal | undefined,
  primaryDirectory: () => Promise<DirectoryInfo>,
): Promise<readonly string[] | undefined> {
  const info =
    ca.directoryUrl === primary.directoryUrl
      ? await primaryDirectory()
      : await cachedDirectoryInfo(ca, stateDir, clock.now(), log, signal);
  return info.caaIdentities ?? ca.caaIdentities;
}

/** Scheduling state for a dry run: read without moving a damaged value aside, never written. */
function readOnlyStates(states: StateStore): RenewStateStore {
  return {
    read: (name) => states.read(name, { readOnly: true }),
    write: async () => {
      throw new Error('state: a dry run writes nothing (a bug if reached)');
    },
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

export function createClients(
  openAcme: RenewDeps['openAcme'],
  openSolver: RenewDeps['openSolver'],
  log: Logger,
  /** Where fallback CAs' services come from; without it every CA gets the primary's service. */
  fallback?: { primaryUrl: string; stateDir: string; open?: RenewDeps['openFallbackAcme'] },
): RenewClients {
  let acme: Promise<RenewAcme> | undefined;
  let solver: Dns01Solver | undefined;
  // Fallback CAs by directory URL: nothing is opened for them unless an order fails over.
  const fallbacks = new Map<string, Promise<RenewAcme>>();
  const opened = async (): Promise<RenewAcme[]> => {
    const all = await Promise.all([acme, ...fallbacks.values()].map((p) => p?.catch(() => undefined)));
    return all.filter((s): s is RenewAcme => s !== undefined);
  };
  const open = (): Promise<RenewAcme> => {
    if (!openAcme) throw new CertpilotError('ACME_ORDER_FAILED', 'renew: no ACME client available');
    acme ??= openAcme();
    return acme;
  };
  return {
    acme: open,
    acmeFor: async (ca) => {
      if (!fallback || ca.directoryUrl === fallback.primaryUrl) return open();
      let service = fallbacks.get(ca.directoryUrl);
      if (!service) {
        service = fallback.open ? fallback.open(ca) : openFallbackService(ca, fallback.stateDir, log);
        fallbacks.set(ca.directoryUrl, service);
      }
      return service;
    },
    solver: () => {
      solver ??= openSolver?.();
      if (!solver) throw new CertpilotError('DNS_NO_PROVIDER', 'renew: no DNS-01 solver available');
      return solver;
    },
    openedAcme: async () => {
      const all = await opened();
      return all.length <= 1 ? all[0] : summedStats(all);
    },
    close: async () => {
      // Each is closed even when another's close throws: a leaked socket keeps the process alive.
      for (const service of await opened()) {
        try {
          service.close();
        } catch (err) {
          log.warn('ACME client not closed cleanly', { error: describeError(err) });
        }
      }
      await solver
        ?.close()
        .catch((err: unknown) => log.warn('DNS clients not closed cleanly', { error: describeError(err) }));
    },
  };
}

/** The default opener of a fallback CA's service: its account is kept per CA, beside the primary's. */
async function openFallbackService(ca: AcmeSettings, stateDir: string, log: Logger): Promise<RenewAcme> {
  // Loaded only when an order fails over: a run that does not never loads it for this.
  const { AcmeService } = await import('../acme/service');
  return AcmeService.open(ca, stateDir, log);
}

/** The report counts every request of the run, whichever CA it went to. */
function summedStats(services: readonly RenewAcme[]): RenewAcme {
  const byEndpoint: Record<string, number> = {};
  let total = 0;
  for (const s of services) {
    total += s.stats.total;
    for (const [k, v] of Object.entries(s.stats.byEndpoint)) byEndpoint[k] = (byEndpoint[k] ?? 0) + v;
  }
  const [first] = services;
  return { issue: (req) => first!.issue(req), close: () => undefined, stats: { total, byEndpoint } };
}

function createDeployRunner(
  store: CertStore,
  settings: DeploySettings,
  stateDir: string,
  notifier: Notifier,
  signal: AbortSignal | undefined,
): DeployRunner {
  return {
    hasWork: (spec) => hasDeployWork(certDeployOf(spec), settings),
    pending: async (name, serial) =>
      deployPending(await readDeployState(stateDir, name).catch(() => null), serial),
    kept: (name) => readKept(stateDir, name),
    dropKept: (name) => dropKept(stateDir, name),
    previous: async (name, serial) => {
      const { findPrevious } = await import('../deploy/deploy');
      const p = await findPrevious(store, name, serial);
      return p ? { serial: p.info.serial, dir: p.dir } : null;
    },
    /**
     * `installed` is what install() just validated and wrote. It is used as is rather than read
     * back, so files damaged on disk after the install are judged by the deployers (`nginx -t`),
     * which then roll back, instead of stopping the deploy before it starts.
     */
    run: async (spec, log, req) => {
      const deploy = certDeployOf(spec);
      if (!hasDeployWork(deploy, settings)) return undefined;
      const current = req.installed ?? (await store.read(spec.name));
      if (!current) throw new CertpilotError('STORE_IO', `store: ${spec.name}: nothing installed to deploy`);
      // The deployers, their process runner and the verifier load when there is a deploy.
      const { deployCertificate } = await import('../deploy/deploy');
      return deployCertificate(
        { spec, deploy, settings, store, stateDir, notifier, log, ...(signal ? { signal } : {}) },
        {
          current,
          ...(req.previousSerial ? { previousSerial: req.previousSerial } : {}),
          ...(req.rollbackTo ? { rollbackTo: req.rollbackTo } : {}),
        },
      );
    },
  };
}

/** The real collaborators, from the configuration; `overrides` replaces any of them (tests). */
export function createRenewContext(
  config: AgentConfig | DeployAwareConfig,
  options: { force?: boolean; dryRun?: boolean; overrideGuard?: boolean },
  deps: RenewDeps,
  overrides: Partial<RenewContext> = {},
): RenewContext {
  const { log, clock, signal } = deps;
  const cfg = config as AgentConfig;
  const stateDir = config.storage.stateDir;
  const settings = deploySettingsOf(config);
  const notifier = overrides.notifier ?? deps.notifier ?? createNotifier(settings.notify, log);
  // storage.backend: etcd puts certificates, state, journal and locks in the cluster; its
  // endpoints are resolved like every other connection (dns.resolvers).
  const lookup = configuredHostLookup();
  const etcd =
    config.storage.etcd && config.storage.backend === 'etcd'
      ? // eslint-disable-next-line @typescript-eslint/no-require-imports
        (require('../store/etcd') as typeof import('../store/etcd')).createEtcdBackend(
          config.storage.etcd,
          lookup ? { lookup } : {},
        )
      : undefined;
  const storage = etcd?.storage;
  const store = new CertStore({
    stateDir,
    archiveDepth: config.storage.archiveDepth,
    log,
    ...(storage ? { storage } : {}),
  });
  let directory: Promise<DirectoryInfo> | undefined;
  // acme.caBundle, read at most once per run for the directory and ARI requests.
  let ca: Promise<string | undefined> | undefined;
  const readCa = (): Promise<string | undefined> =>
    (ca ??= config.acme.caBundle ? readFile(config.acme.caBundle, 'utf8') : Promise.resolve(undefined));
  // A dry run contacts nothing and writes nothing: the directory comes from the cache only.
  const directoryOf = (): Promise<DirectoryInfo> =>
    (directory ??= options.dryRun
      ? readCachedDirectoryInfo(config.acme, stateDir, clock.now())
      : cachedDirectoryInfo(config.acme, stateDir, clock.now(), log, signal, readCa));
  // Made on the first CAA question: only orders with acme.fallback ask any.
  let resolver: DnsResolver | undefined;
  return {
    config: cfg,
    settings,
    policy: schedulePolicy(cfg, deps.lookaheadMs ?? RENEW_LOOKAHEAD_MS),
    force: options.force === true,
    overrideGuard: options.overrideGuard === true,
    log,
    clock,
    ...(signal ? { signal } : {}),
    lockWaitMs: deps.lockWaitMs ?? LOCK_WAIT_MS,
    store,
    states: options.dryRun
      ? readOnlyStates(new StateStore(stateDir, storage))
      : new StateStore(stateDir, storage),
    journal: new ChallengeJournal(stateDir, storage),
    acquireLock: (name, opts) => (etcd ? etcd.locker.acquire(name, opts) : acquireLock(stateDir, name, opts)),
    clients: createClients(deps.openAcme, deps.openSolver, log, {
      primaryUrl: config.acme.directoryUrl,
      stateDir,
      ...(deps.openFallbackAcme ? { open: deps.openFallbackAcme } : {}),
    }),
    notifier,
    deploy: createDeployRunner(store, settings, stateDir, notifier, signal),
    runHooks: runHookList,
    directory: directoryOf,
    findCaa: (name, caaSignal) => {
      // The resolver (and its DNS wire code) loads on the first CAA question, not per run.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { findRelevantCaa } = require('../inspect/caa') as typeof import('../inspect/caa');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { DnsResolver: Resolver } = require('../dns/resolver') as typeof import('../dns/resolver');
      return findRelevantCaa(name, (resolver ??= new Resolver(config.dns, log)), caaSignal);
    },
    caIdentities: (ca) => identitiesOf(ca, config.acme, stateDir, clock, log, signal, () => directoryOf()),
    renewalInfo: async (url, certId) => {
      const ca = await readCa();
      return fetchRenewalInfo(url, certId, {
        timeoutMs: config.acme.requestTimeoutMs,
        ...(ca ? { ca } : {}),
        ...(signal ? { signal } : {}),
      });
    },
    ...(deps.faults ? { faults: deps.faults } : {}),
    ...overrides,
  };
}
