import { readFile } from 'node:fs/promises';
import { fetchRenewalInfo, type DirectoryInfo, type RenewalInfo } from '../acme/ari';
import type { Clock } from '../core/clock';
import { CertpilotError, UsageError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { certDeployOf, deploySettingsOf } from '../config/access';
import type { DeployAwareConfig, DeploySettings } from '../config/types';
import { deployCertificate, findPrevious, hasDeployWork, type DeployResult } from '../deploy/deploy';
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
import { createEtcdBackend } from '../store/etcd';
import { cachedDirectoryInfo, readCachedDirectoryInfo } from './directory';
import type { RenewAcme, RenewDeps } from './types';

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
  solver(): Dns01Solver;
  /** The ACME service if one was opened successfully (for request counts). */
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
  faults?: RenewDeps['faults'];
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
): RenewClients {
  let acme: Promise<RenewAcme> | undefined;
  let solver: Dns01Solver | undefined;
  const openedAcme = async (): Promise<RenewAcme | undefined> =>
    acme ? acme.catch(() => undefined) : undefined;
  return {
    acme: () => {
      if (!openAcme) throw new CertpilotError('ACME_ORDER_FAILED', 'renew: no ACME client available');
      acme ??= openAcme();
      return acme;
    },
    solver: () => {
      solver ??= openSolver?.();
      if (!solver) throw new CertpilotError('DNS_NO_PROVIDER', 'renew: no DNS-01 solver available');
      return solver;
    },
    openedAcme,
    close: async () => {
      // Each is closed even when the other's close throws: a leaked socket keeps the process alive.
      try {
        (await openedAcme())?.close();
      } catch (err) {
        log.warn('ACME client not closed cleanly', { error: describeError(err) });
      }
      await solver
        ?.close()
        .catch((err: unknown) => log.warn('DNS clients not closed cleanly', { error: describeError(err) }));
    },
  };
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
      ? createEtcdBackend(config.storage.etcd, lookup ? { lookup } : {})
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
    clients: createClients(deps.openAcme, deps.openSolver, log),
    notifier,
    deploy: createDeployRunner(store, settings, stateDir, notifier, signal),
    runHooks: runHookList,
    // A dry run contacts nothing and writes nothing: the directory comes from the cache only.
    directory: () =>
      (directory ??= options.dryRun
        ? readCachedDirectoryInfo(config.acme, stateDir, clock.now())
        : cachedDirectoryInfo(config.acme, stateDir, clock.now(), log, signal, readCa)),
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
