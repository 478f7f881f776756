import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fetchDirectoryInfo, fetchRenewalInfo, tryAriCertId, type DirectoryInfo } from '../acme/ari';
import { readAccount } from '../acme/account';
import { mapLimit } from '../core/concurrency';
import { describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { DnsResolver } from '../dns/resolver';
import { Dns01Solver, type PresentedRecord } from '../dns/solver';
import { CertStore } from '../store/cert-store';
import { findRelevantCaa, judgeCaa } from './caa';
import type { CheckResult } from './check';
import { statusOf, type Finding, type FindingCode } from './findings';

/**
 * The renewal-readiness canary (`certpilot check --readiness`, and the daemon once a day):
 * proves, without placing an order, that each managed certificate's next renewal can succeed.
 * Each check that fails becomes a finding with its reason, weeks before the renewal window:
 *
 *  - account:   the stored ACME account is still valid at the CA (an authenticated read);
 *  - caa:       the CAA records of every name allow the CA (RFC 8659, through dns.resolvers);
 *  - cname:     every `_acme-challenge` CNAME leads into a zone a configured provider may write
 *               (the solver's own preflight, so the answer is the one a renewal would get);
 *  - dns-write: the provider's credentials write a canary TXT value, every authoritative
 *               nameserver serves it, and it is removed again;
 *  - ari:       when the CA has ARI, its endpoint answers, and `ari-replace` when the suggested
 *               window has already started.
 */

export type ReadinessCheckName = 'account' | 'caa' | 'cname' | 'dns-write' | 'ari';

export interface ReadinessCheck {
  readonly check: ReadinessCheckName;
  readonly ok: boolean;
  /** Why not (ok false), or a note (ok true, e.g. nothing to check). */
  readonly message?: string;
  /** The finding's code when not the check's own (`ari-replace`). */
  readonly code?: FindingCode;
}

export interface ReadinessResult {
  /** Managed certificate name. */
  readonly name: string;
  readonly checks: readonly ReadinessCheck[];
  readonly findings: readonly Finding[];
}

export interface ReadinessReport {
  readonly checkedAt: Date;
  readonly results: readonly ReadinessResult[];
}

export interface ReadinessDeps {
  readonly now: Date;
  readonly signal: AbortSignal;
  readonly log?: Logger;
  /** Managed certificate names; undefined = all. */
  readonly names?: readonly string[];
  /** The CA's issuer domains when its directory publishes none (tests, CAs without caaIdentities). */
  readonly caaIdentities?: readonly string[];
}

const FINDING_OF: Readonly<Record<ReadinessCheckName, FindingCode>> = {
  account: 'readiness-account',
  caa: 'readiness-caa',
  cname: 'readiness-cname',
  'dns-write': 'readiness-dns-write',
  ari: 'readiness-ari',
};

/** The canary TXT value: distinct from any ACME key authorization digest, and random per run. */
export function canaryValue(): string {
  return `certpilot-readiness-${randomBytes(8).toString('hex')}`;
}

interface Shared {
  readonly config: AgentConfig;
  readonly deps: ReadinessDeps;
  readonly log: Logger;
  readonly resolver: DnsResolver;
  readonly solver: Dns01Solver;
  readonly directory: DirectoryInfo | undefined;
  readonly directoryError: string | undefined;
  readonly account: ReadinessCheck;
  readonly ca: string | undefined;
}

/** Runs every readiness check for the selected managed certificates (the daemon calls this daily). */
export async function runReadiness(config: AgentConfig, deps: ReadinessDeps): Promise<ReadinessReport> {
  const log = deps.log ?? silentLogger;
  const specs = config.certificates.filter((c) => !deps.names || deps.names.includes(c.name));
  const resolver = new DnsResolver(config.dns, log);
  const solver = new Dns01Solver({ dns: config.dns, log, resolver });
  try {
    const ca = config.acme.caBundle ? await readFile(config.acme.caBundle, 'utf8') : undefined;
    const dir = await fetchDirectoryInfo(config.acme.directoryUrl, {
      signal: deps.signal,
      timeoutMs: config.acme.requestTimeoutMs,
      ...(ca ? { ca } : {}),
    }).then(
      (directory) => ({ directory, error: undefined }),
      (err: unknown) => ({ directory: undefined, error: describeError(err) }),
    );
    const account = await checkAccount(config, deps.signal, log);
    const shared: Shared = {
      config,
      deps,
      log,
      resolver,
      solver,
      directory: dir.directory,
      directoryError: dir.error,
      account,
      ca,
    };
    // As many certificates at once as renewals run (defaults.concurrency): the canary writes are
    // the renewal's own DNS-01 writes, which the solver already does concurrently in one zone.
    const results = await mapLimit(specs, config.concurrency, (spec) => checkCertificate(spec, shared));
    return { checkedAt: deps.now, results };
  } finally {
    await solver.close();
  }
}

async function checkCertificate(spec: CertificateSpec, s: Shared): Promise<ReadinessResult> {
  const checks: ReadinessCheck[] = [s.account];
  checks.push(await checkCaa(spec, s));
  const cname = await checkCname(spec, s);
  checks.push(cname);
  // Writing through a delegation that goes to the wrong place would prove nothing useful.
  if (cname.ok) checks.push(await checkDnsWrite(spec, s));
  const ari = await checkAri(spec, s);
  if (ari) checks.push(...ari);
  const findings: Finding[] = checks
    .filter((c) => !c.ok)
    .map((c) => ({
      code: c.code ?? FINDING_OF[c.check],
      severity: 'warning',
      message: c.message ?? `${c.check} check failed`,
    }));
  return { name: spec.name, checks, findings };
}

/** The provider of each name, as a renewal picks it. */
function challengesOf(spec: CertificateSpec): { domain: string; provider: string }[] {
  const seen = new Map<string, { domain: string; provider: string }>();
  for (const name of spec.domains) {
    const domain = name.replace(/^\*\./, '');
    const provider = spec.domainProviders[name] ?? spec.domainProviders[domain] ?? spec.dnsProvider;
    if (provider && !seen.has(domain)) seen.set(domain, { domain, provider });
  }
  return [...seen.values()];
}

async function checkAccount(config: AgentConfig, signal: AbortSignal, log: Logger): Promise<ReadinessCheck> {
  const stored = await readAccount(config.storage.stateDir, config.acme.directoryUrl).catch(() => null);
  if (!stored?.url) {
    // Nothing to prove yet: the next renewal registers one (run's own preflight checks termsAgreed).
    return { check: 'account', ok: true, message: 'no ACME account registered yet' };
  }
  const { AcmeService } = await import('../acme/service');
  let service;
  try {
    service = await AcmeService.open(config.acme, config.storage.stateDir, log);
    const { account } = await service.accountDetails(signal);
    const status = typeof account.status === 'string' ? account.status : 'unknown';
    if (status === 'valid') return { check: 'account', ok: true };
    return { check: 'account', ok: false, message: `ACME account ${stored.url} is ${status} at the CA` };
  } catch (err) {
    return {
      check: 'account',
      ok: false,
      message: `ACME account ${stored.url} cannot be used: ${describeError(err)}`,
    };
  } finally {
    service?.close();
  }
}

async function checkCaa(spec: CertificateSpec, s: Shared): Promise<ReadinessCheck> {
  const identities = s.directory?.caaIdentities ?? s.deps.caaIdentities ?? s.config.acme.caaIdentities;
  const problems: string[] = [];
  const notes: string[] = [];
  for (const name of spec.domains) {
    try {
      const verdict = judgeCaa(name, await findRelevantCaa(name, s.resolver, s.deps.signal), identities);
      if (!verdict.allowed) problems.push(`${name}: ${verdict.reason}`);
      else if (verdict.undecided) notes.push(`${name}: ${verdict.reason}`);
    } catch (err) {
      problems.push(`${name}: CAA lookup failed: ${describeError(err)}`);
    }
  }
  if (problems.length > 0) return { check: 'caa', ok: false, message: problems.join('; ') };
  return { check: 'caa', ok: true, ...(notes.length > 0 ? { message: notes.join('; ') } : {}) };
}

async function checkCname(spec: CertificateSpec, s: Shared): Promise<ReadinessCheck> {
  try {
    const targets = await s.solver.preflight(challengesOf(spec), s.deps.signal);
    const moved = targets.filter((t) => t.delegated).map((t) => `${t.challengeFqdn} -> ${t.fqdn}`);
    return { check: 'cname', ok: true, ...(moved.length > 0 ? { message: moved.join(', ') } : {}) };
  } catch (err) {
    return { check: 'cname', ok: false, message: describeError(err) };
  }
}

/** Writes a canary TXT value for every name, waits until all authoritative servers serve it, removes it. */
async function checkDnsWrite(spec: CertificateSpec, s: Shared): Promise<ReadinessCheck> {
  const value = canaryValue();
  const presented: PresentedRecord[] = [];
  let failure: string | undefined;
  try {
    await s.solver.present(
      challengesOf(spec).map((c) => ({ ...c, value })),
      s.deps.signal,
      (recs) => presented.push(...recs),
    );
  } catch (err) {
    failure = `writing a canary TXT record failed: ${describeError(err)}`;
  }
  if (presented.length > 0) {
    // Always removed, with its own deadline: the main signal may be what ended the write.
    try {
      await s.solver.cleanup(presented, AbortSignal.timeout(60_000));
    } catch (err) {
      failure ??= `removing the canary TXT record failed: ${describeError(err)}`;
    }
  }
  return failure ? { check: 'dns-write', ok: false, message: failure } : { check: 'dns-write', ok: true };
}

/** The ARI endpoint answers for the stored certificate; `ari-replace` once its window has started. */
async function checkAri(spec: CertificateSpec, s: Shared): Promise<ReadinessCheck[] | undefined> {
  if (s.directoryError !== undefined) {
    return [{ check: 'ari', ok: false, message: `the ACME directory cannot be read: ${s.directoryError}` }];
  }
  const url = s.directory?.renewalInfo;
  if (!url) return undefined;
  const store = new CertStore({
    stateDir: s.config.storage.stateDir,
    archiveDepth: s.config.storage.archiveDepth,
    log: s.log,
  });
  const info = await store.readInfo(spec.name).catch(() => null);
  const certId = info ? tryAriCertId(info) : undefined;
  if (!certId) return undefined;
  try {
    const ri = await fetchRenewalInfo(url, certId, {
      signal: s.deps.signal,
      timeoutMs: s.config.acme.requestTimeoutMs,
      ...(s.ca ? { ca: s.ca } : {}),
    });
    if (ri.window.start.getTime() <= s.deps.now.getTime()) {
      const why = ri.explanationURL ? ` (${ri.explanationURL})` : '';
      return [
        {
          check: 'ari',
          ok: false,
          code: 'ari-replace',
          message: `the CA asks for this certificate to be replaced since ${ri.window.start.toISOString()}${why}`,
        },
      ];
    }
    return [{ check: 'ari', ok: true }];
  } catch (err) {
    return [
      {
        check: 'ari',
        ok: false,
        message: `the CA's renewalInfo endpoint did not answer: ${describeError(err)}`,
      },
    ];
  }
}

/** One `check` row per certificate (source `readiness`), for the table, JSON and metrics. */
export function readinessRows(report: ReadinessReport): CheckResult[] {
  return report.results.map((r) => ({
    name: r.name,
    managed: true,
    source: 'readiness',
    target: 'next renewal',
    status: statusOf(r.findings),
    findings: r.findings,
  }));
}

/**
 * Issuers whose ARI endpoint is public and stable, recognised in watched certificates by the
 * issuer's organisation. Let's Encrypt's intermediates (R10-R14, E5-E9) all answer at one URL.
 */
const WELL_KNOWN_ARI: readonly { readonly organisation: string; readonly renewalInfo: string }[] = [
  {
    organisation: "O=(STAGING) Let's Encrypt",
    renewalInfo: 'https://acme-staging-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo',
  },
  {
    organisation: "O=Let's Encrypt",
    renewalInfo: 'https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo',
  },
];

/** The ARI endpoint for a certificate issued by `issuer`: the configured CA's, or a well-known one. */
function ariEndpointFor(issuer: string, configured: ReadonlyMap<string, string>): string | undefined {
  return (
    configured.get(issuer) ??
    WELL_KNOWN_ARI.find((w) => issuer.split(', ').includes(w.organisation))?.renewalInfo
  );
}

/**
 * Watched certificates (files and endpoints certpilot does not renew) whose issuer's ARI
 * endpoint is known: the configured CA's (recognised by the issuer of the managed certificates
 * it issued) or a well-known one. A row whose suggested window has started gets `ari-replace`.
 * ARI failures for watched certificates are only logged: they are not certpilot's to renew.
 */
export async function withWatchedAri(
  config: AgentConfig,
  rows: readonly CheckResult[],
  deps: Pick<ReadinessDeps, 'now' | 'signal' | 'log'>,
): Promise<CheckResult[]> {
  const log = deps.log ?? silentLogger;
  const ca = config.acme.caBundle
    ? await readFile(config.acme.caBundle, 'utf8').catch(() => undefined)
    : undefined;
  const opts = { signal: deps.signal, timeoutMs: config.acme.requestTimeoutMs, ...(ca ? { ca } : {}) };
  const configured = new Map<string, string>();
  const directory = await fetchDirectoryInfo(config.acme.directoryUrl, opts).catch(() => undefined);
  if (directory?.renewalInfo) {
    const store = new CertStore({
      stateDir: config.storage.stateDir,
      archiveDepth: config.storage.archiveDepth,
      log,
    });
    for (const spec of config.certificates) {
      const info = await store.readInfo(spec.name).catch(() => null);
      if (info) configured.set(info.issuer, directory.renewalInfo);
    }
  }
  return Promise.all(
    rows.map(async (row) => {
      const cert = row.certificate;
      const url = !row.managed && cert ? ariEndpointFor(cert.issuer, configured) : undefined;
      const certId = cert && url ? tryAriCertId(cert) : undefined;
      if (!url || !certId) return row;
      try {
        const ri = await fetchRenewalInfo(url, certId, opts);
        if (ri.window.start.getTime() > deps.now.getTime()) return row;
        const findings: Finding[] = [
          ...row.findings,
          {
            code: 'ari-replace',
            severity: 'warning',
            message: `the CA asks for this certificate to be replaced since ${ri.window.start.toISOString()}${ri.explanationURL ? ` (${ri.explanationURL})` : ''}`,
          },
        ];
        const status =
          row.status === 'critical' || row.status === 'unknown' ? row.status : statusOf(findings);
        return { ...row, findings, status };
      } catch (err) {
        log.debug('ARI not available for a watched certificate', {
          name: row.name,
          error: describeError(err),
        });
        return row;
      }
    }),
  );
}
