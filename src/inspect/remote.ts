import { DEFAULT_PROBE_CONCURRENCY } from '../config/defaults';
import { describeError } from '../core/errors';
import type { CertInfo } from '../x509';
import { parseCertificateDerCached } from '../x509/cache';
import { mapWithConcurrency } from '../core/concurrency';
import {
  joinShared,
  probeServedChain,
  probeWhere,
  type ProbeErrorCode,
  type ProbeOptions,
  type ServedChain,
} from './probe-tls';
import {
  assessCertificate,
  compareNames,
  statusOf,
  type AssessContext,
  type CheckStatus,
  type Finding,
  type FindingCode,
} from './findings';

/**
 * What a TLS endpoint actually serves. The probe reads the chain even when it is expired,
 * self-signed or for another name (that is exactly what an inventory must see), and judges
 * trust separately, the way a client with the system (or a given) CA store would.
 */

// Probe defaults are configuration defaults (`check:`), defined once with their reasons there.
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PROBE_CONCURRENCY,
} from '../config/defaults';
export type { ProbeErrorCode, ProbeOptions, ServedChain } from './probe-tls';

export interface ProbeResult {
  /** A TLS session was established and the server presented a certificate. */
  readonly ok: boolean;
  /**
   * Leaf first, then issuers as Node links them (see probe-tls.ts, readChain). Node orders the
   * chain by issuer and may append the root from the trust store, so the order the server sent
   * cannot be checked here; files can be (see findings' chain checks).
   */
  readonly chain: CertInfo[];
  /** Chain verified against the CA store AND the certificate is valid for the host name. */
  readonly trusted: boolean;
  /** OpenSSL/Node reason when not trusted, e.g. CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID. */
  readonly trustError?: string;
  readonly error?: { readonly code: ProbeErrorCode; readonly message: string };
  readonly elapsedMs: number;
}

/** The served chain parsed; a certificate that does not parse makes the probe a not-tls failure. */
function parsedProbe(served: ServedChain, opts: ProbeOptions): ProbeResult {
  const { ders, ...rest } = served;
  if (!served.ok) return { ...rest, chain: [] };
  try {
    return { ...rest, chain: ders.map((d) => parseCertificateDerCached(d)) };
  } catch (err) {
    return {
      ok: false,
      chain: [],
      trusted: false,
      error: {
        code: 'not-tls',
        message: `tls: cannot read the certificate served by ${probeWhere(opts)}: ${describeError(err)}`,
      },
      elapsedMs: served.elapsedMs,
    };
  }
}

/**
 * Connects, optionally speaks SMTP up to STARTTLS, completes a TLS handshake and reads the
 * served chain. Endpoint problems (refused, timeouts, not TLS) are returned in `error`; only
 * cancellation through `signal` rejects. Every socket is destroyed before this returns.
 */
export async function probeEndpoint(opts: ProbeOptions): Promise<ProbeResult> {
  return parsedProbe(await probeServedChain(opts), opts);
}

export interface ProbeManyOptions {
  /** Probes in flight at once (default DEFAULT_PROBE_CONCURRENCY). */
  readonly concurrency?: number;
  /** Cancels every probe; combined with each endpoint's own signal. */
  readonly signal?: AbortSignal;
  /**
   * Spread the handshakes over worker threads when there are enough endpoints and CPUs for it
   * to pay (probe-threads.ts). For one-shot runs: the threads start and stop with the call.
   */
  readonly threads?: boolean;
}

/** probeEndpoint over many endpoints, a bounded number at a time; results in input order. */
export async function probeMany(
  endpoints: readonly ProbeOptions[],
  opts: ProbeManyOptions = {},
): Promise<ProbeResult[]> {
  const shared = opts.signal;
  const concurrency = opts.concurrency ?? DEFAULT_PROBE_CONCURRENCY;
  if (opts.threads) {
    // Loaded only here: the pool is for large one-shot checks.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pool = require('./probe-threads') as typeof import('./probe-threads');
    const threads = pool.probeThreadCount(endpoints.length, concurrency);
    if (threads > 1) {
      const served = await pool.probeInThreads(endpoints, { threads, concurrency, signal: shared });
      return served.map((s, i) => parsedProbe(s, endpoints[i] as ProbeOptions));
    }
  }
  const join = joinShared(shared, concurrency);
  return mapWithConcurrency(endpoints, concurrency, (ep) => probeEndpoint(join(ep)), shared, 'probe');
}

// ---- served versus managed -----------------------------------------------------------------

export type ServedComparison = 'current' | 'served-stale' | 'served-mismatch';

/**
 * Whether an endpoint serves the managed certificate. `previous` are earlier versions from the
 * archive. "Stale" means an older version of the same certificate is still served (the deploy
 * hook did not reload): a known archived version, or one with exactly the same names issued
 * before the current one (the archive may have been pruned). Anything else is a mismatch: a
 * different certificate, or a newer one that certpilot did not issue.
 */
export function compareServed(
  servedLeaf: CertInfo,
  current: CertInfo,
  previous: readonly CertInfo[],
): ServedComparison {
  if (servedLeaf.fingerprint256 === current.fingerprint256) return 'current';
  if (previous.some((p) => p.fingerprint256 === servedLeaf.fingerprint256)) return 'served-stale';
  const diff = compareNames(current.names, servedLeaf.names);
  const sameNames = diff.missing.length === 0 && diff.extra.length === 0;
  if (sameNames && servedLeaf.notBefore.getTime() < current.notBefore.getTime()) return 'served-stale';
  return 'served-mismatch';
}

export interface EndpointContext extends Omit<AssessContext, 'keyPem' | 'chainPems'> {
  /** The managed certificate this endpoint should serve, when there is one. */
  readonly current?: CertInfo;
  /** Its archived earlier versions. */
  readonly previous?: readonly CertInfo[];
}

export interface EndpointAssessment {
  /** `unknown` when no certificate could be read. */
  readonly status: CheckStatus;
  readonly daysLeft?: number;
  readonly lifetimeLeftRatio?: number;
  /** Present when a managed certificate was given and one was served. */
  readonly served?: ServedComparison;
  readonly findings: Finding[];
}

/**
 * Turns a probe into findings: the served leaf is assessed like a file (validity, names,
 * chain completeness), plus trust as a client sees it and whether it is the managed version.
 */
export function assessProbe(probe: ProbeResult, ctx: EndpointContext): EndpointAssessment {
  const [leaf, ...rest] = probe.chain;
  if (!probe.ok || !leaf) {
    const error = probe.error ?? { code: 'not-tls' as const, message: 'probe: no certificate was read' };
    // A connect timeout and a refusal both mean "nothing answered" to an operator.
    const code: FindingCode = error.code === 'connect-timeout' ? 'unreachable' : error.code;
    return { status: 'unknown', findings: [{ code, severity: 'unknown', message: error.message }] };
  }
  const a = assessCertificate(leaf, { ...ctx, chainPems: rest.map((c) => c.pem) });
  const findings = [...a.findings];
  if (!probe.trusted) {
    findings.push({
      code: 'untrusted',
      severity: 'critical',
      message: `clients will reject the served certificate: ${probe.trustError ?? 'not verified'}`,
    });
  }
  let served: ServedComparison | undefined;
  if (ctx.current) {
    served = compareServed(leaf, ctx.current, ctx.previous ?? []);
    // Warning, not critical: the served certificate's own validity and trust findings above
    // already escalate when it is about to break clients.
    if (served === 'served-stale') {
      findings.push({
        code: 'served-stale',
        severity: 'warning',
        message: `serves an older version (serial ${leaf.serial}) instead of the current ${ctx.current.serial}; reload the server`,
      });
    } else if (served === 'served-mismatch') {
      findings.push({
        code: 'served-mismatch',
        severity: 'warning',
        message: `serves a different certificate (${leaf.subject}, serial ${leaf.serial}) than the managed one (serial ${ctx.current.serial})`,
      });
    }
  }
  return {
    status: statusOf(findings),
    daysLeft: a.daysLeft,
    lifetimeLeftRatio: a.lifetimeLeftRatio,
    served,
    findings,
  };
}
