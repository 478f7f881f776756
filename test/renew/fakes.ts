import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RenewalInfo } from '../../src/acme/ari';
import type { IssueRequest, IssueResult } from '../../src/acme/service';
import type { AgentConfig, CertificateSpec } from '../../src/config/types';
import { fixedClock } from '../../src/core/clock';
import { abortError } from '../../src/core/errors';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger';
import type { DeployResult } from '../../src/deploy/deploy';
import type { Dns01Solver } from '../../src/dns/solver';
import type { AlertEvent, Notifier } from '../../src/notify';
import type { DeployRunner, HookRunner, LockAcquirer, RenewContext } from '../../src/renew/context';
import { runRenew, type RenewDeps, type RenewOptions, type RenewReport } from '../../src/renew/run';
import type { KeptVersion } from '../../src/state/kept';
import { emptyState, type CertState } from '../../src/state/store';
import type { CertificateFiles, CertPaths, StoredCertificate } from '../../src/store/cert-store';
import type { Lock } from '../../src/store/lock';
import type { CertInfo } from '../../src/x509';

/**
 * In-memory collaborators for runRenew's context: every call is recorded, any of them can be
 * told to fail. Only the journal is real (an empty directory): it is a file format, not a seam.
 */

export const NOW = new Date('2026-11-01T00:00:00Z');
const DAY = 86_400_000;

let serials = 0x1000;

/** A 90-day certificate issued `ageDays` before NOW (60+ days old: due by the fallback ratio). */
export function certInfo(domains: readonly string[], ageDays: number): CertInfo {
  const notBefore = new Date(NOW.getTime() - ageDays * DAY);
  const serial = (serials++).toString(16).toUpperCase();
  return {
    pem: '',
    serial,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 90 * DAY),
    names: [...domains].sort(),
    subject: `CN=${domains[0]}`,
    issuer: 'CN=Fake CA',
    fingerprint256: serial,
    keyType: 'ec-p256',
    selfSigned: false,
    authorityKeyId: '69885B6B87464041E1B37B847BA0AE2CDE01C8D4',
    serialDer: `00${serial}`,
  };
}

export function spec(name: string): CertificateSpec {
  return {
    name,
    domains: [`${name}.example.test`],
    keyType: 'ec-p256',
    reuseKey: false,
    domainProviders: {},
    dnsProvider: 'fake',
    outputs: [],
  };
}

export function config(names: string[], over: Partial<AgentConfig> = {}): AgentConfig {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-renew-unit-'));
  return {
    source: '(test)',
    acme: { directoryUrl: 'https://127.0.0.1:1/dir', termsAgreed: true, requestTimeoutMs: 1000 },
    storage: { stateDir, archiveDepth: 3 },
    renewal: { renewRatio: 1 / 3, shortLifetimeRatio: 1 / 2, shortLifetimeDays: 10, maxOrdersPerWeek: 3 },
    defaultKeyType: 'ec-p256',
    concurrency: 2,
    daemon: { checkIntervalMs: 600_000 },
    dns: { resolvers: [], nameserverPort: 53, queryTimeoutMs: 1000, providers: {} },
    certificates: names.map(spec),
    ...over,
  };
}

export class FakeCertStore {
  readonly installed = new Map<string, { info: CertInfo; files: CertificateFiles }>();
  readonly installs: string[] = [];

  put(name: string, info: CertInfo): void {
    this.installed.set(name, { info, files: { cert: 'C', chain: 'CH', fullchain: 'CCH', key: 'K' } });
  }

  paths(name: string): CertPaths {
    const dir = `/fake/certs/${name}`;
    return {
      dir,
      cert: `${dir}/cert.pem`,
      chain: `${dir}/chain.pem`,
      fullchain: `${dir}/fullchain.pem`,
      key: `${dir}/privkey.pem`,
    };
  }

  async readInfo(name: string): Promise<CertInfo | null> {
    return this.installed.get(name)?.info ?? null;
  }

  async read(name: string): Promise<StoredCertificate | null> {
    const c = this.installed.get(name);
    return c ? { name, info: c.info, dir: this.paths(name).dir, ...c.files } : null;
  }

  async install(name: string, files: CertificateFiles): Promise<{ info: CertInfo; archived?: string }> {
    const before = this.installed.get(name);
    const info = certInfo([`${name}.example.test`], 0);
    this.installed.set(name, { info, files });
    this.installs.push(name);
    return { info, ...(before ? { archived: `/fake/archive/${name}/${before.info.serial}` } : {}) };
  }
}

export class FakeStateStore {
  readonly states = new Map<string, CertState>();
  readonly writes: CertState[] = [];
  /** Errors thrown by read(name): once per listed entry, then reads succeed. */
  readonly readErrors = new Map<string, unknown[]>();

  async read(name: string): Promise<{ state: CertState }> {
    const err = this.readErrors.get(name)?.shift();
    if (err) throw err;
    return { state: this.states.get(name) ?? emptyState(name) };
  }

  async write(state: CertState): Promise<void> {
    this.writes.push(state);
    this.states.set(state.name, state);
  }
}

export class FakeLocks {
  readonly held = new Set<string>();
  readonly acquired: string[] = [];
  readonly busy = new Set<string>();
  readonly errors = new Map<string, unknown>();

  acquire: LockAcquirer = async (name) => {
    const err = this.errors.get(name);
    if (err) throw err;
    if (this.busy.has(name) || this.held.has(name)) return null;
    this.held.add(name);
    this.acquired.push(name);
    const lock: Lock = {
      path: `/fake/locks/${name}.lock`,
      name,
      token: name,
      owner: { pid: process.pid, hostname: 'test', startedAt: NOW.toISOString(), nonce: name },
      signal: new AbortController().signal,
      renew: async () => undefined,
      check: async () => undefined,
      release: async () => {
        this.held.delete(name);
      },
    };
    return lock;
  };
}

export class FakeAcme {
  readonly stats = { total: 0, byEndpoint: {} as Record<string, number> };
  readonly requests: IssueRequest[] = [];
  closed = 0;
  /** Names whose order never finishes by itself; `hanging` is called when one starts. */
  readonly hang = new Set<string>();
  hanging: (() => void) | undefined;
  /** Names whose order fails with this error. */
  readonly failures = new Map<string, Error>();

  async issue(req: IssueRequest): Promise<IssueResult> {
    this.requests.push(req);
    this.stats.total += 3;
    const err = this.failures.get(req.name);
    if (err) throw err;
    if (this.hang.has(req.name)) {
      // Like a real order: runs until the run's signal (or the order deadline) aborts it.
      await new Promise<void>((_resolve, reject) => {
        req.signal.addEventListener('abort', () => reject(abortError('acme', req.signal)), { once: true });
        this.hanging?.();
      });
    }
    return {
      cert: `C-${req.name}`,
      chain: 'CH',
      fullchain: `C-${req.name}CH`,
      key: req.keyPem,
      orderUrl: `o/${req.name}`,
    };
  }

  close(): void {
    this.closed++;
  }
}

export class FakeSolver {
  closed = 0;
  async cleanup(): Promise<void> {}
  async close(): Promise<void> {
    this.closed++;
  }
}

export class FakeDeploy implements DeployRunner {
  readonly withWork = new Set<string>();
  readonly pendingFor = new Set<string>();
  readonly runs: { name: string; installed: boolean; previousSerial?: string; rollbackTo?: string }[] = [];

  hasWork(s: CertificateSpec): boolean {
    return this.withWork.has(s.name);
  }

  async pending(name: string): Promise<boolean> {
    return this.pendingFor.has(name);
  }

  /** Versions a rollback replaced, by certificate name (see src/state/kept.ts). */
  readonly keptVersions = new Map<string, KeptVersion>();

  async kept(name: string): Promise<KeptVersion | null> {
    return this.keptVersions.get(name) ?? null;
  }

  async dropKept(name: string): Promise<void> {
    this.keptVersions.delete(name);
  }

  async previous(name: string): Promise<{ serial: string; dir: string } | null> {
    return { serial: 'PREV', dir: `/fake/archive/${name}/PREV` };
  }

  async run(
    s: CertificateSpec,
    _log: unknown,
    req: { installed?: StoredCertificate; previousSerial?: string; rollbackTo?: string },
  ): Promise<DeployResult> {
    this.runs.push({
      name: s.name,
      installed: req.installed !== undefined,
      previousSerial: req.previousSerial,
      rollbackTo: req.rollbackTo,
    });
    return {
      ok: true,
      status: 'verified',
      serial: 'S',
      notAfter: new Date(NOW.getTime() + 60 * DAY),
      endpoints: {},
    };
  }
}

/** A whole fake world for one run. */
export class World {
  readonly log: MemoryLogger = memoryLogger();
  readonly store = new FakeCertStore();
  readonly states = new FakeStateStore();
  readonly locks = new FakeLocks();
  readonly acme = new FakeAcme();
  readonly solver = new FakeSolver();
  readonly deploy = new FakeDeploy();
  readonly alerts: AlertEvent[] = [];
  readonly hookCalls: { base: string; vars: Readonly<Record<string, string>> }[] = [];
  /** Hook list name (e.g. "hooks.pre") -> the errors it reports. */
  readonly hookErrors = new Map<string, string[]>();
  renewalInfoUrl: string | undefined;
  ariAnswer: RenewalInfo | Error = new Error('no ARI in this test');
  acmeOpened = 0;

  notifier: Notifier = {
    notify: async (e) => {
      this.alerts.push(e);
    },
  };

  runHooks: HookRunner = async (_hooks, base, vars) => {
    this.hookCalls.push({ base, vars });
    return this.hookErrors.get(base) ?? [];
  };

  overrides(): Partial<RenewContext> {
    return {
      store: this.store,
      states: this.states,
      acquireLock: this.locks.acquire,
      deploy: this.deploy,
      notifier: this.notifier,
      runHooks: this.runHooks,
      directory: async () => ({
        profiles: {},
        ...(this.renewalInfoUrl ? { renewalInfo: this.renewalInfoUrl } : {}),
      }),
      renewalInfo: async () => {
        if (this.ariAnswer instanceof Error) throw this.ariAnswer;
        return this.ariAnswer;
      },
    };
  }

  deps(): RenewDeps {
    return {
      log: this.log,
      clock: fixedClock(NOW),
      openAcme: async () => {
        this.acmeOpened++;
        return this.acme;
      },
      openSolver: () => this.solver as unknown as Dns01Solver,
      lockWaitMs: 0,
    };
  }

  run(
    cfg: AgentConfig,
    options: RenewOptions = {},
    signal?: AbortSignal,
    certificateProblems?: RenewDeps['certificateProblems'],
  ): Promise<RenewReport> {
    const deps = {
      ...this.deps(),
      ...(signal ? { signal } : {}),
      ...(certificateProblems ? { certificateProblems } : {}),
    };
    return runRenew(cfg, options, deps, this.overrides());
  }
}
