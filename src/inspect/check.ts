import { promises as fs } from 'node:fs';
import { throwIfAborted } from '../core/abort';
import { CertpilotError, UsageError, describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import type {
  AgentConfig,
  CertificateSpec,
  ThresholdSettings,
  WatchedEndpoint,
  WatchedFile,
} from '../config/types';
import { checkSettingsOf, endpointKey, resolveThresholds } from '../config/access';
import type { Endpoint } from '../config/types';
// Managed certificates' and endpoints' modules are loaded only when a check has some (a
// watch-only check of files does not pay for the store, the deploy state or the TLS probe).
import type { CertStore, StoredCertificate } from '../store/cert-store';
import { splitPemChain, type CertInfo } from '../x509';
import { assessCertificate, statusOf, type CheckStatus, type Finding, type FindingCode } from './findings';
import { isDynamicPattern } from 'tinyglobby';
import { DEFAULT_FILE_CONCURRENCY, expandWatchPaths, inspectFiles, type FileInspection } from './local';
import type { ProbeOptions, ProbeResult, ServedComparison } from './remote';

/**
 * The inventory behind `certpilot check` (and, later, the daemon's metrics): every managed
 * certificate as stored, every endpoint that should serve it, every watched file and endpoint,
 * each turned into one row with a status and findings. Pure reading: no ACME, no DNS, no
 * writes; the store is opened only when managed certificates are selected, so a watch-only
 * configuration never touches the state directory.
 */

/** `readiness`: a row of `check --readiness` (src/inspect/readiness.ts). */
export type CheckSource = 'file' | 'endpoint' | 'readiness';

export interface CheckResult {
  /** Managed certificate name, the watch entry's `name`, or else the file path / endpoint. */
  readonly name: string;
  /** True for certificates certpilot renews (rows from `certificates`). */
  readonly managed: boolean;
  readonly source: CheckSource;
  /** File path, or endpoint as `host:port` (`host:port@connectAddress` when one is given). */
  readonly target: string;
  readonly status: CheckStatus;
  /** The leaf that was read (file) or served (endpoint). */
  readonly certificate?: CertInfo;
  readonly daysLeft?: number;
  readonly lifetimeLeftRatio?: number;
  /** Endpoints only: whether a TLS session was established and a certificate read. */
  readonly probeSuccess?: boolean;
  /** Endpoints only: chain and host name verified against the system or configured CAs. */
  readonly trusted?: boolean;
  readonly trustError?: string;
  /** Endpoints of managed certificates: what is served compared with the stored version. */
  readonly served?: ServedComparison;
  readonly elapsedMs?: number;
  readonly findings: readonly Finding[];
}

export interface CheckReport {
  readonly checkedAt: Date;
  /** Worst status of all rows (see worstStatus); `unknown` when there was nothing to check. */
  readonly status: CheckStatus;
  readonly results: readonly CheckResult[];
}

export interface CheckOptions {
  /** Managed certificate names or watch entry names; default everything. */
  readonly names?: readonly string[];
  readonly connectTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly concurrency?: number;
  /**
   * False: stored certificates and watched files only, no endpoint probed and no archive read
   * (the daemon's every-cycle part; it probes endpoints on their own, longer interval).
   */
  readonly endpoints?: boolean;
  /** Read watched files with synchronous calls (one-shot `check`; FileInspectContext.readSync). */
  readonly syncFileReads?: boolean;
  /**
   * Spread endpoint probes over worker threads when there are many (one-shot `check`; see
   * inspect/probe-threads.ts). The daemon probes in its own thread, within its memory budget.
   */
  readonly probeThreads?: boolean;
}

export interface CheckDeps {
  readonly now: Date;
  readonly signal?: AbortSignal;
  readonly log?: Logger;
}

/**
 * Precedence of the overall status: CRITICAL, then WARNING, then UNKNOWN, then OK. This is the
 * order of monitoring-plugins' `max_state_alt` (the aggregation most multi-item checks use): a
 * certificate known to be in trouble outranks one that could not be looked at. UNKNOWN wins
 * only when nothing is worse, so one unreachable endpoint does not hide an expired one.
 */
const STATUS_PRECEDENCE: Readonly<Record<CheckStatus, number>> = {
  ok: 0,
  unknown: 1,
  warning: 2,
  critical: 3,
};

export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus | undefined;
  for (const s of statuses)
    if (worst === undefined || STATUS_PRECEDENCE[s] > STATUS_PRECEDENCE[worst]) worst = s;
  return worst ?? 'unknown';
}

/** Nagios plugin exit codes (https://nagios-plugins.org/doc/guidelines.html, "Plugin Return Codes"). */
export const EXIT_CODE_OF_STATUS: Readonly<Record<CheckStatus, number>> = Object.freeze({
  ok: 0,
  warning: 1,
  critical: 2,
  unknown: 3,
});

// ---- selection ----------------------------------------------------------------------------

interface Selection {
  certificates: CertificateSpec[];
  files: WatchedFile[];
  endpoints: WatchedEndpoint[];
}

function select(config: AgentConfig, names: readonly string[] | undefined): Selection {
  const files = config.watch?.files ?? [];
  const endpoints = config.watch?.endpoints ?? [];
  if (!names || names.length === 0) {
    return { certificates: [...config.certificates], files: [...files], endpoints: [...endpoints] };
  }
  const wanted = new Set(names);
  const known = new Set<string>([
    ...config.certificates.map((c) => c.name),
    ...files.flatMap((f) => (f.name ? [f.name] : [])),
    ...endpoints.flatMap((e) => (e.name ? [e.name] : [])),
  ]);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `check: unknown name ${unknown.map((n) => `"${n}"`).join(', ')} (known: ${[...known].join(', ') || 'none'})`,
    );
  }
  return {
    certificates: config.certificates.filter((c) => wanted.has(c.name)),
    files: files.filter((f) => f.name !== undefined && wanted.has(f.name)),
    endpoints: endpoints.filter((e) => e.name !== undefined && wanted.has(e.name)),
  };
}

// ---- helpers --------------------------------------------------------------------------------

function problem(code: FindingCode, message: string): Finding {
  return { code, severity: 'critical', message };
}

/** A row for something that could not be looked at: its finding's severity is its status. */
function unknownRow(
  base: Omit<CheckResult, 'status' | 'findings'>,
  code: FindingCode,
  message: string,
): CheckResult {
  return { ...base, status: 'unknown', findings: [{ code, severity: 'unknown', message }] };
}

/** Reads each CA bundle once, however many endpoints name it. */
class CaBundles {
  private readonly cache = new Map<string, Promise<string>>();
  read(file: string): Promise<string> {
    let p = this.cache.get(file);
    if (!p) {
      p = fs.readFile(file, 'utf8');
      p.catch(() => undefined);
      this.cache.set(file, p);
    }
    return p;
  }
}

interface ProbeJob {
  endpoint: Endpoint;
  row: Omit<CheckResult, 'status' | 'findings'>;
  thresholds: ThresholdSettings;
  expectedNames?: readonly string[];
  current?: CertInfo;
  previous?: readonly CertInfo[];
}

function fileRow(name: string, managed: boolean, inspection: FileInspection): CheckResult {
  const base = { name, managed, source: 'file' as const, target: inspection.path };
  if (inspection.error !== undefined || !inspection.certificate) {
    return {
      ...unknownRow(base, 'unreadable', inspection.error ?? 'inspect: no certificate read'),
      ...(inspection.certificate ? { certificate: inspection.certificate } : {}),
    };
  }
  return {
    ...base,
    status: inspection.status,
    certificate: inspection.certificate,
    ...(inspection.daysLeft !== undefined ? { daysLeft: inspection.daysLeft } : {}),
    ...(inspection.lifetimeLeftRatio !== undefined
      ? { lifetimeLeftRatio: inspection.lifetimeLeftRatio }
      : {}),
    findings: inspection.findings,
  };
}

// ---- managed certificates -------------------------------------------------------------------

async function readPrevious(store: CertStore, name: string, log: Logger): Promise<CertInfo[]> {
  const out: CertInfo[] = [];
  let dirs: string[];
  try {
    dirs = await store.listArchive(name);
  } catch (err) {
    log.warn('archive unreadable; served-stale cannot name archived versions', {
      cert: name,
      error: describeError(err),
    });
    return out;
  }
  for (const dir of dirs) {
    try {
      out.push((await store.readArchived(dir)).info);
    } catch (err) {
      // A damaged archive entry only weakens the stale/mismatch distinction; keep going.
      log.warn('archived version unreadable', { cert: name, dir, error: describeError(err) });
    }
  }
  return out;
}

/** The stored version of one managed certificate as a row, plus its endpoints as probe jobs. */
async function inspectManaged(
  spec: CertificateSpec,
  store: CertStore,
  stateDir: string,
  thresholds: ThresholdSettings,
  now: Date,
  log: Logger,
  withEndpoints: boolean,
): Promise<{ row: CheckResult; jobs: ProbeJob[] }> {
  const target = store.paths(spec.name).fullchain;
  const base = { name: spec.name, managed: true, source: 'file' as const, target };
  let stored: StoredCertificate | null = null;
  let row: CheckResult;
  try {
    stored = await store.read(spec.name);
    if (!stored) {
      // Nothing to serve at all: as bad as expired, and certpilot is the one supposed to fix it.
      row = {
        ...base,
        status: 'critical',
        findings: [problem('missing', `no certificate installed for ${spec.name}; run certpilot renew`)],
      };
    } else {
      const a = assessCertificate(stored.info, {
        now,
        thresholds,
        expectedNames: spec.domains,
        keyPem: stored.key,
        chainPems: splitPemChain(stored.chain),
      });
      const findings = [...a.findings];
      const { deployPending, readDeployState } = await import('../state/deploy-state');
      const { profileLifetimeFinding } = await import('./profile-lifetime');
      const state = await readDeployState(stateDir, spec.name).catch((err: unknown) => {
        log.warn('deploy state unreadable', { cert: spec.name, error: describeError(err) });
        return null;
      });
      if (state && deployPending(state, stored.info.serial)) {
        // The version was installed but its deploy never verified (failed reload, verification
        // timeout, killed run): endpoints are likely still serving the previous certificate.
        findings.push({
          code: 'served-stale',
          severity: 'warning',
          message: `serial ${stored.info.serial} was installed but its deploy is not verified (deploy state: ${state.status}); servers may still serve the previous certificate`,
        });
      }
      const lifetime = await profileLifetimeFinding(spec, stored.info, stateDir).catch(() => undefined);
      if (lifetime) findings.push(lifetime);
      row = {
        ...base,
        status: statusOf(findings),
        certificate: stored.info,
        daysLeft: a.daysLeft,
        lifetimeLeftRatio: a.lifetimeLeftRatio,
        findings,
      };
    }
  } catch (err) {
    const mismatch = err instanceof CertpilotError && err.code === 'STORE_KEY_MISMATCH';
    row = mismatch
      ? { ...base, status: 'critical', findings: [problem('key-mismatch', describeError(err))] }
      : unknownRow(base, 'unreadable', describeError(err));
  }

  const endpoints = withEndpoints ? (spec.endpoints ?? []) : [];
  const previous = stored && endpoints.length > 0 ? await readPrevious(store, spec.name, log) : [];
  const jobs = endpoints.map((e): ProbeJob => ({
    endpoint: e,
    row: { name: spec.name, managed: true, source: 'endpoint', target: endpointKey(e) },
    thresholds,
    expectedNames: spec.domains,
    ...(stored ? { current: stored.info, previous } : {}),
  }));
  return { row, jobs };
}

// ---- the run ----------------------------------------------------------------------------------

/**
 * Inspects everything selected and returns one row per stored certificate, file and endpoint,
 * in configuration order: managed certificates (stored version, then their endpoints), watched
 * files, watched endpoints. Endpoint and file problems become rows with status `unknown`; only
 * cancellation and a bad selection (UsageError) throw.
 */
export async function runCheck(
  config: AgentConfig,
  options: CheckOptions,
  deps: CheckDeps,
): Promise<CheckReport> {
  const log = deps.log ?? silentLogger;
  const settings = checkSettingsOf(config);
  const sel = select(config, options.names);
  const concurrency = options.concurrency ?? settings.concurrency;
  const connectTimeoutMs = options.connectTimeoutMs ?? settings.connectTimeoutMs;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? settings.handshakeTimeoutMs;
  const { now, signal } = deps;
  const withEndpoints = options.endpoints !== false;

  // Managed certificates: read the store (only when there are some to read).
  const managedRows: CheckResult[][] = [];
  const jobs: ProbeJob[] = [];
  if (sel.certificates.length > 0) {
    const { CertStore } = await import('../store/cert-store');
    const store = new CertStore({
      stateDir: config.storage.stateDir,
      archiveDepth: config.storage.archiveDepth,
      log,
    });
    const managed = await Promise.all(
      sel.certificates.map((spec) =>
        inspectManaged(
          spec,
          store,
          config.storage.stateDir,
          resolveThresholds(settings.thresholds, spec.thresholds),
          now,
          log,
          withEndpoints,
        ),
      ),
    );
    for (const m of managed) {
      managedRows.push([m.row]);
      jobs.push(...m.jobs);
    }
  }
  throwIfAborted(signal, 'check');
  const managedJobCount = jobs.length;
  for (const e of withEndpoints ? sel.endpoints : []) {
    const key = endpointKey(e);
    jobs.push({
      endpoint: e,
      row: { name: e.name ?? key, managed: false, source: 'endpoint', target: key },
      thresholds: resolveThresholds(settings.thresholds, e.thresholds),
      ...(e.names ? { expectedNames: e.names } : {}),
    });
  }

  const [fileRows, endpointRows] = await Promise.all([
    checkWatchedFiles(sel.files, settings.thresholds, now, signal, options.syncFileReads === true),
    probeJobs(jobs, {
      concurrency,
      connectTimeoutMs,
      handshakeTimeoutMs,
      now,
      signal,
      threads: options.probeThreads === true,
    }),
  ]);

  // Each managed certificate's endpoints follow its stored row.
  let j = 0;
  const results: CheckResult[] = [];
  sel.certificates.forEach((spec, i) => {
    results.push(...(managedRows[i] ?? []));
    const n = withEndpoints ? (spec.endpoints ?? []).length : 0;
    results.push(...endpointRows.slice(j, j + n));
    j += n;
  });
  results.push(...fileRows, ...endpointRows.slice(managedJobCount));
  return { checkedAt: now, status: worstStatus(results.map((r) => r.status)), results };
}

async function checkWatchedFiles(
  entries: readonly WatchedFile[],
  global: ThresholdSettings,
  now: Date,
  signal: AbortSignal | undefined,
  readSync: boolean,
): Promise<CheckResult[]> {
  const perEntry = await Promise.all(
    entries.map(async (entry): Promise<CheckResult[]> => {
      const paths = await expandWatchPaths([entry.path], signal);
      if (paths.length === 0) {
        return [
          unknownRow(
            { name: entry.name ?? entry.path, managed: false, source: 'file', target: entry.path },
            'missing',
            `inspect: no file matches ${entry.path}`,
          ),
        ];
      }
      const inspections = await inspectFiles(
        paths,
        {
          now,
          thresholds: resolveThresholds(global, entry.thresholds),
          ...(entry.names ? { expectedNames: entry.names } : {}),
          ...(entry.key !== undefined ? { keyPath: entry.key } : {}),
          checkChain: entry.checkChain,
          ...(signal ? { signal } : {}),
          ...(readSync ? { readSync } : {}),
        },
        DEFAULT_FILE_CONCURRENCY,
      );
      // A glob over a directory of certificates also matches their keys: a file holding only a
      // key is not a certificate to report on. A literal path names what it means to check.
      const glob = isDynamicPattern(entry.path);
      const kept = glob ? inspections.filter((ins) => ins.keyOnly !== true) : inspections;
      if (kept.length === 0) {
        return [
          unknownRow(
            { name: entry.name ?? entry.path, managed: false, source: 'file', target: entry.path },
            'missing',
            `inspect: no certificate file matches ${entry.path} (${inspections.length} file(s) hold only a private key)`,
          ),
        ];
      }
      return kept.map((ins) => fileRow(entry.name ?? ins.path, false, ins));
    }),
  );
  return perEntry.flat();
}

async function probeJobs(
  jobs: readonly ProbeJob[],
  opts: {
    concurrency: number;
    connectTimeoutMs: number;
    handshakeTimeoutMs: number;
    now: Date;
    signal: AbortSignal | undefined;
    threads: boolean;
  },
): Promise<CheckResult[]> {
  if (jobs.length === 0) return [];
  const bundles = new CaBundles();
  // CA bundles are read before probing so an unreadable one is a row of its own, not a probe error.
  const prepared = await Promise.all(
    jobs.map(async (job): Promise<ProbeOptions | CheckResult> => {
      const e = job.endpoint;
      let caBundle: string | undefined;
      if (e.caBundle !== undefined) {
        try {
          caBundle = await bundles.read(e.caBundle);
        } catch (err) {
          return unknownRow(
            job.row,
            'unreadable',
            `check: cannot read CA bundle ${e.caBundle}: ${describeError(err)}`,
          );
        }
      }
      return {
        host: e.host,
        port: e.port,
        ...(e.servername !== undefined ? { servername: e.servername } : {}),
        ...(e.connectAddress !== undefined ? { connectAddress: e.connectAddress } : {}),
        ...(e.starttls ? { starttls: e.starttls } : {}),
        ...(caBundle !== undefined ? { caBundle } : {}),
        connectTimeoutMs: opts.connectTimeoutMs,
        handshakeTimeoutMs: opts.handshakeTimeoutMs,
      };
    }),
  );
  const { assessProbe, probeMany } = await import('./remote');
  const toProbe = prepared.filter((p): p is ProbeOptions => !('status' in p));
  const probes = await probeMany(toProbe, {
    concurrency: opts.concurrency,
    threads: opts.threads,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let k = 0;
  return prepared.map((p, i) => {
    if ('status' in p) return p;
    const job = jobs[i] as ProbeJob;
    return endpointRow(job, probes[k++] as ProbeResult, opts.now, assessProbe);
  });
}

function endpointRow(
  job: ProbeJob,
  probe: ProbeResult,
  now: Date,
  assessProbe: typeof import('./remote').assessProbe,
): CheckResult {
  const a = assessProbe(probe, {
    now,
    thresholds: job.thresholds,
    ...(job.expectedNames ? { expectedNames: job.expectedNames } : {}),
    ...(job.current ? { current: job.current, previous: job.previous ?? [] } : {}),
  });
  const leaf = probe.chain[0];
  return {
    ...job.row,
    status: a.status,
    ...(leaf ? { certificate: leaf } : {}),
    ...(a.daysLeft !== undefined ? { daysLeft: a.daysLeft } : {}),
    ...(a.lifetimeLeftRatio !== undefined ? { lifetimeLeftRatio: a.lifetimeLeftRatio } : {}),
    probeSuccess: probe.ok,
    ...(probe.ok ? { trusted: probe.trusted } : {}),
    ...(probe.trustError !== undefined ? { trustError: probe.trustError } : {}),
    ...(a.served ? { served: a.served } : {}),
    elapsedMs: probe.elapsedMs,
    findings: a.findings,
  };
}
