import { domainToASCII } from 'node:url';
import { keyMatchesCertificate, lifetimeMs, type CertInfo } from '../x509';
import { parseCertificateCached } from '../x509/cache';

/**
 * Pure assessment of one certificate: how close it is to expiry and what is wrong with it.
 * No I/O and no clock: `now` is injected so the same inputs always give the same answer.
 */

export const DAY_MS = 86_400_000;

// Threshold defaults are configuration defaults, defined once with their reasons there.
export {
  DEFAULT_WARNING_DAYS,
  DEFAULT_CRITICAL_DAYS,
  DEFAULT_WARNING_RATIO,
  DEFAULT_CRITICAL_RATIO,
  DEFAULT_THRESHOLDS,
} from '../config/defaults';

export interface Thresholds {
  /** Warn when fewer than this many days are left. */
  readonly warningDays: number;
  /** Critical when fewer than this many days are left. */
  readonly criticalDays: number;
  /** When set, the warning threshold is min(warningDays, warningRatio × lifetime). */
  readonly warningRatio?: number;
  /** When set, the critical threshold is min(criticalDays, criticalRatio × lifetime). */
  readonly criticalRatio?: number;
}

export type FindingCode =
  | 'expired'
  | 'not-yet-valid'
  | 'warning'
  | 'critical'
  | 'names-differ'
  | 'key-mismatch'
  | 'chain-missing'
  | 'chain-order'
  | 'self-signed'
  | 'served-stale'
  | 'served-mismatch'
  | 'unreachable'
  | 'untrusted'
  | 'handshake-timeout'
  | 'not-tls'
  /** A managed certificate never installed, or a watch pattern that matches no file. */
  | 'missing'
  /** A file (certificate, key, CA bundle, stored version) that exists but cannot be used. */
  | 'unreadable'
  /** No successful renewal run recorded for too long (src/inspect/liveness.ts). */
  | 'renewer-silent'
  /** Renewal readiness (src/inspect/readiness.ts): a check that the next renewal would fail. */
  | 'readiness-account'
  | 'readiness-caa'
  | 'readiness-cname'
  | 'readiness-dns-write'
  | 'readiness-ari'
  /** The CA's ARI window for the certificate has started: it wants it replaced now. */
  | 'ari-replace'
  /** The lifetime differs from what the ACME profile promised (src/inspect/profile-lifetime.ts). */
  | 'profile-lifetime'
  /** Fleet mode (src/fleet/check.ts): a node does not serve the store's current version. */
  | 'fleet-node-stale';

/**
 * `info` never changes the status; it is reported so an operator sees it. `unknown` is the
 * finding of a row that could not be assessed (unreachable, unreadable): its severity is its
 * row's status, so a consumer sorting findings by severity agrees with the status column.
 */
export type Severity = 'info' | 'unknown' | 'warning' | 'critical';

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly message: string;
}

/** Result of assessing a certificate that could be read. */
export type AssessedStatus = 'ok' | 'warning' | 'critical';
/** `unknown`: the certificate could not be read (file missing, endpoint down). */
export type CheckStatus = AssessedStatus | 'unknown';

export interface AssessContext {
  readonly now: Date;
  readonly thresholds: Thresholds;
  /** Names the certificate should carry (from configuration); compared as sets. */
  readonly expectedNames?: readonly string[];
  /** Private key that goes with the certificate; checked when given. */
  readonly keyPem?: string;
  /**
   * Certificates that follow the leaf (intermediates, optionally the root), in the order they
   * are stored or served. Chain checks run only when this is given: a lone `cert.pem` next to
   * a separate `chain.pem` is normal and must not be reported as incomplete.
   */
  readonly chainPems?: readonly string[];
}

export interface Assessment {
  readonly status: AssessedStatus;
  /** Days until notAfter, with fractions; negative once expired. Formatting is the caller's. */
  readonly daysLeft: number;
  /** Share of the lifetime still ahead, clamped to [0, 1]. */
  readonly lifetimeLeftRatio: number;
  readonly findings: Finding[];
}

/**
 * `unknown` findings are made with their row's status (never assessed here), so they do not
 * count towards an assessed status.
 */
const SEVERITY_RANK: Record<Severity, number> = { info: 0, unknown: 0, warning: 1, critical: 2 };

/** The status implied by a list of findings: the worst severity, `info` counting as ok. */
export function statusOf(findings: readonly Finding[]): AssessedStatus {
  let worst = 0;
  for (const f of findings) worst = Math.max(worst, SEVERITY_RANK[f.severity]);
  return worst === 2 ? 'critical' : worst === 1 ? 'warning' : 'ok';
}

export function assessCertificate(info: CertInfo, ctx: AssessContext): Assessment {
  const now = ctx.now.getTime();
  const msLeft = info.notAfter.getTime() - now;
  const lifetime = lifetimeMs(info);
  const daysLeft = msLeft / DAY_MS;
  const lifetimeLeftRatio = lifetime > 0 ? clamp(msLeft / lifetime, 0, 1) : 0;
  const findings: Finding[] = [];

  findings.push(...validityFindings(info, now, msLeft, lifetime, ctx.thresholds));
  if (ctx.expectedNames) {
    const f = namesFinding(ctx.expectedNames, info.names);
    if (f) findings.push(f);
  }
  if (ctx.keyPem !== undefined) {
    const f = keyFinding(info, ctx.keyPem);
    if (f) findings.push(f);
  }
  if (info.selfSigned) {
    findings.push({
      code: 'self-signed',
      severity: 'warning',
      message: `certificate is self-signed (${info.subject}); clients trust it only if pinned`,
    });
  }
  if (ctx.chainPems) findings.push(...chainFindings(info, ctx.chainPems));

  return { status: statusOf(findings), daysLeft, lifetimeLeftRatio, findings };
}

function validityFindings(
  info: CertInfo,
  now: number,
  msLeft: number,
  lifetime: number,
  t: Thresholds,
): Finding[] {
  const notAfter = info.notAfter.toISOString();
  if (msLeft <= 0) {
    return [{ code: 'expired', severity: 'critical', message: `expired at ${notAfter}` }];
  }
  const out: Finding[] = [];
  if (info.notBefore.getTime() > now) {
    out.push({
      code: 'not-yet-valid',
      severity: 'critical',
      message: `not valid before ${info.notBefore.toISOString()}`,
    });
  }
  const criticalMs = threshold(t.criticalDays, t.criticalRatio, lifetime);
  const warningMs = threshold(t.warningDays, t.warningRatio, lifetime);
  const left = `${formatDays(msLeft)} left (expires ${notAfter})`;
  if (msLeft < criticalMs) {
    out.push({
      code: 'critical',
      severity: 'critical',
      message: `${left}; critical below ${formatDays(criticalMs)}`,
    });
  } else if (msLeft < warningMs) {
    out.push({
      code: 'warning',
      severity: 'warning',
      message: `${left}; warning below ${formatDays(warningMs)}`,
    });
  }
  return out;
}

function threshold(days: number, ratio: number | undefined, lifetime: number): number {
  const byDays = days * DAY_MS;
  return ratio !== undefined && lifetime > 0 ? Math.min(byDays, ratio * lifetime) : byDays;
}

function formatDays(ms: number): string {
  const days = ms / DAY_MS;
  return days >= 1 ? `${Math.floor(days * 10) / 10} days` : `${Math.floor(ms / 3_600_000)} hours`;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

// ---- names -------------------------------------------------------------------------------

/**
 * Lower-case, no trailing dot, IDNs in their A-label (punycode) form: the form certificates
 * carry (RFC 5280 §7.2), so configuration written in Unicode still compares equal.
 */
export function normalizeName(name: string): string {
  const trimmed = name.trim().toLowerCase().replace(/\.$/, '');
  const wildcard = trimmed.startsWith('*.');
  const rest = wildcard ? trimmed.slice(2) : trimmed;
  // domainToASCII returns '' for input it cannot convert; keep the original then.
  const ascii = domainToASCII(rest) || rest;
  return wildcard ? `*.${ascii}` : ascii;
}

/**
 * Whether certificate name `certName` covers host `name`. A wildcard covers exactly one
 * left-most label (RFC 6125 §6.4.3), so `*.example.com` covers `a.example.com` but neither
 * `example.com` nor `a.b.example.com`. A wildcard name is covered only by the same wildcard.
 */
export function nameCovers(certName: string, name: string): boolean {
  const c = normalizeName(certName);
  const n = normalizeName(name);
  if (c === n) return true;
  if (!c.startsWith('*.') || n.startsWith('*.')) return false;
  const dot = n.indexOf('.');
  return dot > 0 && n.slice(dot + 1) === c.slice(2);
}

export interface NamesComparison {
  /** Expected names no certificate name covers. */
  readonly missing: string[];
  /** Certificate names that are not themselves expected (even if they cover one). */
  readonly extra: string[];
}

/** Set comparison, insensitive to order, case, trailing dots and duplicates. */
export function compareNames(expected: readonly string[], actual: readonly string[]): NamesComparison {
  const exp = [...new Set(expected.map(normalizeName))];
  const act = [...new Set(actual.map(normalizeName))];
  const expSet = new Set(exp);
  return {
    missing: exp.filter((n) => !act.some((c) => nameCovers(c, n))),
    extra: act.filter((c) => !expSet.has(c)),
  };
}

function namesFinding(expected: readonly string[], actual: readonly string[]): Finding | undefined {
  const { missing, extra } = compareNames(expected, actual);
  if (missing.length === 0 && extra.length === 0) return undefined;
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${missing.join(', ')}`);
  if (extra.length) parts.push(`not configured ${extra.join(', ')}`);
  // A missing name means clients of that name get errors once this certificate is served;
  // extra names only mean the configuration changed and the next renewal will drop them.
  return {
    code: 'names-differ',
    severity: missing.length ? 'warning' : 'info',
    message: `names differ from configuration: ${parts.join('; ')}`,
  };
}

// ---- key ---------------------------------------------------------------------------------

function keyFinding(info: CertInfo, keyPem: string): Finding | undefined {
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(info.pem, keyPem);
  } catch {
    // Never include the key or the parser's message (which may quote it) in the finding.
    return { code: 'key-mismatch', severity: 'critical', message: 'private key could not be read' };
  }
  return matches
    ? undefined
    : {
        code: 'key-mismatch',
        severity: 'critical',
        message: 'private key does not match the certificate; a server will refuse to load the pair',
      };
}

// ---- chain -------------------------------------------------------------------------------

/**
 * Checks that the leaf's issuer is present and that each certificate is followed by its
 * issuer (RFC 8446 §4.4.2 requires that order in TLS 1.2 and recommends it in 1.3; OpenSSL
 * tolerates disorder, many other clients do not). The root may be left out.
 */
function chainFindings(leaf: CertInfo, chainPems: readonly string[]): Finding[] {
  const chain: CertInfo[] = [];
  for (const [i, pem] of chainPems.entries()) {
    try {
      chain.push(parseCertificateCached(pem));
    } catch (err) {
      return [
        {
          code: 'chain-missing',
          severity: 'warning',
          message: `chain certificate ${i + 1} cannot be parsed: ${err instanceof Error ? err.message : String(err)}`,
        },
      ];
    }
  }
  if (chain.length === 0) {
    if (leaf.selfSigned) return [];
    return [
      {
        code: 'chain-missing',
        severity: 'warning',
        message: `no intermediate certificates: issuer "${leaf.issuer}" is missing, clients without it cannot build a path`,
      },
    ];
  }
  const all = [leaf, ...chain];
  for (let i = 0; i < all.length - 1; i++) {
    const cert = all[i] as CertInfo;
    const next = all[i + 1] as CertInfo;
    if (cert.selfSigned) {
      return [
        {
          code: 'chain-order',
          severity: 'warning',
          message: `certificate ${i} ("${cert.subject}") is self-signed but more certificates follow it`,
        },
      ];
    }
    if (cert.issuer === next.subject) continue;
    const elsewhere = all.some((c, j) => j !== i && c.subject === cert.issuer);
    return [
      elsewhere
        ? {
            code: 'chain-order',
            severity: 'warning',
            message: `certificate ${i} ("${cert.subject}") is not followed by its issuer "${cert.issuer}"; certificates are out of order`,
          }
        : {
            code: 'chain-missing',
            severity: 'warning',
            message: `issuer "${cert.issuer}" of certificate ${i} is not in the chain (certificate ${i + 1} is "${next.subject}")`,
          },
    ];
  }
  return [];
}
