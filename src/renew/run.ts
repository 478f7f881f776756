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

/** A whole order (propagation included) may not take longer than this. */
export const ORDER_TIMEOUT_MS = 15 * 60_000;

export interface RenewOptions {
  /** Only these certificates (default: all). */
  names?: readonly string[];
  force?: boolean;
  /** Plan and print; contact nothing, write nothing. */
  dryRun?: boolean;
}

export type OutcomeStatus = 'renewed' | 'valid' | 'failed' | 'planned';

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
}

export interface RenewReport {
  outcomes: CertOutcome[];
  /** True when every selected certificate is valid afterwards (dry-run: nothing failed). */
  ok: boolean;
  acmeRequests?: number;
}

export interface RenewDeps {
  log: Logger;
  clock: Clock;
  signal?: AbortSignal;
  /** Created lazily, only when something must be ordered. */
  openAcme?: () => Promise<AcmeService>;
  openSolver?: () => Dns01Solver;
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

/** inspect → plan → issue → store, for every selected certificate. */
export async function runRenew(
  config: AgentConfig,
  options: RenewOptions,
  deps: RenewDeps,
): Promise<RenewReport> {
  const { log } = deps;
  const specs = selectCertificates(config, options.names);
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

  if (options.dryRun) {
    return {
      ok: true,
      outcomes: decisions.map((d) => ({
        name: d.name,
        status: d.renew ? 'planned' : 'valid',
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

  const outcomes = await mapLimit(decisions, config.concurrency, async (decision): Promise<CertOutcome> => {
    const info = current.get(decision.name) ?? undefined;
    if (!decision.renew) {
      return {
        name: decision.name,
        status: 'valid',
        decision,
        serial: info?.serial,
        notAfter: info?.notAfter,
      };
    }
    const spec = specByName.get(decision.name)!;
    const clog = log.child({ cert: spec.name });
    clog.info('renewing', { reason: decision.reason, detail: decision.detail });
    const started = performance.now();
    try {
      const service = await getAcme();
      solver ??= deps.openSolver?.();
      if (!solver) throw new CertpilotError('DNS_NO_PROVIDER', 'renew: no DNS-01 solver available');
      const keyPem = await chooseKey(spec, store, info);
      const signal = withDeadline(deps.signal, ORDER_TIMEOUT_MS);
      const issued = await service.issue({
        name: spec.name,
        domains: spec.domains,
        keyPem,
        providerFor: (domain) => providerFor(spec, domain),
        solver,
        signal,
      });
      const installed = await store.install(spec.name, issued, spec.outputs);
      clog.info('certificate installed', {
        serial: installed.info.serial,
        notAfter: installed.info.notAfter,
      });
      return {
        name: spec.name,
        status: 'renewed',
        decision,
        serial: installed.info.serial,
        notAfter: installed.info.notAfter,
        durationMs: Math.round(performance.now() - started),
      };
    } catch (err) {
      const message = describeError(err);
      clog.error('renewal failed', { error: message });
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
    }
  });

  const service = acme ? await acme.catch(() => undefined) : undefined;
  service?.close();
  return { outcomes, ok: outcomes.every((o) => o.status !== 'failed'), acmeRequests: service?.stats.total };
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
