import { deploySettingsOf } from '../config/access';
import type { AgentConfig, CertificateSpec, FleetSettings } from '../config/types';
import { sleep } from '../core/abort';
import type { Clock } from '../core/clock';
import { mapLimit } from '../core/concurrency';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { createNotifier, silentNotifier, type Notifier } from '../notify';
import { CertStore } from '../store/cert-store';
import { createEtcdBackend, type EtcdBackend } from '../store/etcd';
import { deployOnNode, type NodeDeployContext } from './deploy-node';
import {
  announceNode,
  readCurrentRevisions,
  readFleetRecords,
  writeDeployRecord,
  type DeployRecord,
  type FleetRecords,
} from './records';
import { canaryOf, decideRollout, type Version } from './rollout';

/** What one sync saw and did (logged, and returned to tests). */
export interface SyncSummary {
  deployed: number;
  failed: number;
  waiting: number;
  blocked: number;
  /** When this node must look again (a stagger slot, a retry), if before the next poll. */
  wakeAt?: Date;
}

interface CachedVersion extends Version {
  revision: string;
}

/**
 * Deploys at once on one node: one. The deploy steps of different certificates usually act on
 * the same server, and a config test (`nginx -t`) loads every certificate: run while another
 * certificate's output pair is being swapped (key first, then the chain), it sees a key and a
 * certificate that do not match and fails that other deploy.
 */
const DEPLOY_CONCURRENCY = 1;
/** Reads of changed certificates at once (two small etcd requests each). */
const READ_CONCURRENCY = 8;

/**
 * The fleet side of one `certpilot run`: a loop of its own, beside the renewal cycle, that
 * every `fleet.pollInterval` (or at once when poked after a renewal cycle) compares the store's
 * current versions with this node's records and deploys what the rollout allows. The loop
 * never orders: ordering stays with the renewal cycle (under the lock, one node per
 * certificate), which in fleet mode installs into the store without deploying.
 */
export class FleetAgent {
  private config: AgentConfig;
  private backend: EtcdBackend;
  private store: CertStore;
  private readonly versions = new Map<string, CachedVersion>();
  /** Versions already reported as blocked, so a stopped rollout is logged once, not every poll. */
  private readonly blockedSeen = new Set<string>();
  private announced = false;
  /** Set at start and on reload: failed versions are tried again at the next sync (see decideRollout). */
  private retryFailed = true;
  private readonly stopping = new AbortController();
  private wake = new AbortController();
  private loop: Promise<void> | undefined;
  private last: SyncSummary | undefined;
  private readonly listeners = new Set<(s: SyncSummary) => void>();

  constructor(
    config: AgentConfig,
    private readonly deps: { log: Logger; clock: Clock; notifier?: Notifier },
  ) {
    this.config = config;
    this.backend = createEtcdBackend(config.storage.etcd!);
    this.store = this.storeOf(config);
  }

  private get fleet(): FleetSettings {
    return this.config.fleet!;
  }

  private get log(): Logger {
    return this.deps.log.child({ node: this.fleet.nodeName });
  }

  private storeOf(config: AgentConfig): CertStore {
    return new CertStore({
      stateDir: config.storage.stateDir,
      archiveDepth: config.storage.archiveDepth,
      log: this.deps.log,
      storage: this.backend.storage,
    });
  }

  get lastSync(): SyncSummary | undefined {
    return this.last;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Look now (after a renewal cycle that may have installed new versions). */
  poke(): void {
    this.wake.abort();
  }

  /** A reloaded configuration: new settings and, if the cluster settings changed, a new client. */
  reconfigure(config: AgentConfig): void {
    if (JSON.stringify(config.storage.etcd) !== JSON.stringify(this.config.storage.etcd)) {
      this.backend.close();
      this.backend = createEtcdBackend(config.storage.etcd!);
      this.versions.clear();
    }
    if (config.fleet?.nodeName !== this.fleet.nodeName) this.announced = false;
    this.config = config;
    this.store = this.storeOf(config);
    this.retryFailed = true;
    this.poke();
  }

  /** Resolves after the next sync that finishes. */
  nextSync(): Promise<SyncSummary> {
    return new Promise((resolve) => {
      const once = (s: SyncSummary): void => {
        this.listeners.delete(once);
        resolve(s);
      };
      this.listeners.add(once);
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort(new Error('fleet: stopping'));
    this.wake.abort();
    await this.loop;
    this.backend.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      this.wake = new AbortController();
      let summary: SyncSummary | undefined;
      try {
        summary = await this.sync();
        this.last = summary;
        for (const l of [...this.listeners]) l(summary);
      } catch (err) {
        // etcd unreachable: the store's own retries already waited; try again next poll.
        if (!this.stopping.signal.aborted) this.log.error('fleet sync failed', { error: describeError(err) });
      }
      if (this.stopping.signal.aborted) break;
      const now = this.deps.clock.now().getTime();
      const until = Math.min(now + this.fleet.pollIntervalMs, summary?.wakeAt?.getTime() ?? Infinity);
      if (this.wake.signal.aborted) continue;
      await sleep(Math.max(0, until - now), AbortSignal.any([this.wake.signal, this.stopping.signal])).catch(
        () => undefined,
      );
    }
  }

  /** One look at the fleet: read the shared records and versions, deploy what is this node's turn. */
  async sync(): Promise<SyncSummary> {
    const signal = this.stopping.signal;
    const { client, storage } = this.backend;
    const [records, revisions] = await Promise.all([
      readFleetRecords(client, storage.prefix, signal),
      readCurrentRevisions(client, storage.prefix, signal),
    ]);
    if (!this.announced || !records.nodes.includes(this.fleet.nodeName)) {
      await announceNode(storage, this.fleet.nodeName, this.deps.clock.now());
      this.announced = true;
    }
    const summary: SyncSummary = { deployed: 0, failed: 0, waiting: 0, blocked: 0 };
    const retryFailed = this.retryFailed;
    this.retryFailed = false;
    const due: { spec: CertificateSpec; version: Version }[] = [];
    const specs = this.config.certificates;
    // Reads happen only for certificates whose `current` moved: all of them at start.
    const versions = await mapLimit(specs, READ_CONCURRENCY, (spec) =>
      this.versionOf(spec.name, revisions.get(spec.name)),
    );
    for (const [i, spec] of specs.entries()) {
      const version = versions[i];
      if (version) this.plan(spec, version, records, summary, due, retryFailed);
    }
    const results = await mapLimit(due, DEPLOY_CONCURRENCY, ({ spec, version }) =>
      this.deployOne(spec, version, records.deploys.get(spec.name)?.get(this.fleet.nodeName), records),
    );
    for (const r of results) {
      if (r === 'verified') summary.deployed++;
      else if (r !== 'skipped') summary.failed++;
    }
    this.log.info('fleet sync done', { ...summary });
    return summary;
  }

  private plan(
    spec: CertificateSpec,
    version: Version,
    records: FleetRecords,
    summary: SyncSummary,
    due: { spec: CertificateSpec; version: Version }[],
    retryFailed: boolean,
  ): void {
    const step = decideRollout(this.fleet, version, records, spec.name, this.deps.clock.now(), retryFailed);
    const later = (at: Date | undefined): void => {
      if (at && (!summary.wakeAt || at < summary.wakeAt)) summary.wakeAt = at;
    };
    if (step.kind === 'deploy') due.push({ spec, version });
    else if (step.kind === 'done') later(step.until);
    else if (step.kind === 'wait') {
      summary.waiting++;
      later(step.until);
    } else {
      summary.blocked++;
      const seen = `${spec.name}/${version.fingerprint}`;
      if (!this.blockedSeen.has(seen)) {
        this.blockedSeen.add(seen);
        this.log.error('rollout stopped: not deploying this version', { cert: spec.name, why: step.why });
      }
    }
  }

  /** The store's current version, read again only when its `current` key changed. */
  private async versionOf(name: string, revision: string | undefined): Promise<Version | null> {
    if (revision === undefined) return null;
    const cached = this.versions.get(name);
    if (cached?.revision === revision) return cached;
    const info = await this.store.readInfo(name).catch((err: unknown) => {
      this.log.warn('cannot read the stored version', { cert: name, error: describeError(err) });
      return null;
    });
    if (!info) return null;
    const version = { revision, serial: info.serial, fingerprint: info.fingerprint256 };
    this.versions.set(name, version);
    return version;
  }

  private deployContext(log: Logger): NodeDeployContext {
    const notifier =
      this.deps.notifier ?? (this.config.notify ? createNotifier(this.config.notify, log) : silentNotifier);
    return {
      node: this.fleet.nodeName,
      store: this.store,
      stateDir: this.config.storage.stateDir,
      settings: deploySettingsOf(this.config),
      notifier,
      log,
      signal: this.stopping.signal,
      now: () => this.deps.clock.now(),
    };
  }

  private async deployOne(
    spec: CertificateSpec,
    version: Version,
    before: DeployRecord | undefined,
    records: FleetRecords,
  ): Promise<DeployRecord['status'] | 'skipped'> {
    const log = this.log.child({ cert: spec.name });
    const files = await this.store.read(spec.name).catch((err: unknown) => {
      log.warn('cannot read the stored version', { error: describeError(err) });
      return null;
    });
    // A newer version was installed since the look: the next sync deploys that one.
    if (!files || files.info.fingerprint256 !== version.fingerprint) return 'skipped';
    log.info('fleet: deploying', { serial: version.serial });
    const ctx = this.deployContext(log);
    const record = await deployOnNode(ctx, spec, files, before);
    await writeDeployRecord(this.backend.storage, record);
    if (record.status !== 'verified') await this.alertCanary(ctx.notifier, spec, record, before, records);
    return record.status;
  }

  /** The canary failed a version: the rollout stops there, and someone must know. Once per version. */
  private async alertCanary(
    notifier: Notifier,
    spec: CertificateSpec,
    record: DeployRecord,
    before: DeployRecord | undefined,
    records: FleetRecords,
  ): Promise<void> {
    if (this.fleet.rollout !== 'canary' || canaryOf(this.fleet, records.nodes) !== this.fleet.nodeName)
      return;
    if (before?.fingerprint === record.fingerprint && before.status !== 'verified') return;
    await notifier.notify({
      kind: 'fleet-canary-failed',
      cert: spec.name,
      domains: spec.domains,
      serial: record.serial,
      message: `canary ${record.node} failed serial ${record.serial}; the other nodes keep the previous version: ${record.error ?? record.status}`,
    });
  }
}
