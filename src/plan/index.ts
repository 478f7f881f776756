import type { CertificateSpec, KeyType, RenewalPolicy } from '../config/types';
import type { CertInfo } from '../x509';

/**
 * Pure renewal planning: (specs, what is installed, now, policy) -> one decision per spec,
 * each with a reason a human and a script can act on. No I/O and no clock of its own, so every
 * branch is a row in a table test. A separate executor acts on the decisions.
 */

// The renewal defaults (1/3, 1/2 under 10 days, 3 orders a week) are configuration defaults:
// defined once, with their reasons, in src/config/defaults.ts.
export {
  DEFAULT_RENEW_RATIO,
  DEFAULT_SHORT_LIFETIME_RATIO,
  DEFAULT_SHORT_LIFETIME_DAYS,
  DEFAULT_RENEWAL_POLICY,
} from '../config/defaults';

const DAY_MS = 86_400_000;

export type RenewReason =
  'missing' | 'names-changed' | 'key-changed' | 'expired' | 'in-window' | 'forced' | 'valid';

export interface Decision {
  name: string;
  renew: boolean;
  reason: RenewReason;
  /** One human sentence, e.g. "expires 2026-12-01T00:00:00Z, renewal window opened 2026-11-01T00:00:00Z". */
  detail: string;
  /** When the renewal window opens (opened); absent when nothing is installed. */
  renewAt?: Date;
  notAfter?: Date;
}

export interface PlanOptions {
  /** Renew every certificate regardless of its state (`certpilot renew --force`). */
  force?: boolean;
}

/**
 * When a certificate should be renewed: when `renewRatio` of its lifetime is left, or
 * `shortLifetimeRatio` for lifetimes under `shortLifetimeDays`. A fixed "30 days before
 * expiry" window would renew a 6-day certificate on every run until rate-limited
 * (nginx-proxy-manager#5483, traefik#12461); a ratio scales with the lifetime.
 */
export function renewalTime(info: Pick<CertInfo, 'notBefore' | 'notAfter'>, policy: RenewalPolicy): Date {
  const notAfter = info.notAfter.getTime();
  const lifetime = Math.max(0, notAfter - info.notBefore.getTime());
  const ratio = lifetime < policy.shortLifetimeDays * DAY_MS ? policy.shortLifetimeRatio : policy.renewRatio;
  return new Date(notAfter - Math.round(lifetime * ratio));
}

/** ISO 8601 without a zero millisecond part, for sentences. */
function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

function lowerSet(names: readonly string[]): Set<string> {
  return new Set(names.map((n) => n.toLowerCase()));
}

/** Names added to and removed from the certificate by the configuration; both empty = same set. */
function nameChanges(
  wanted: readonly string[],
  have: readonly string[],
): { added: string[]; removed: string[] } {
  const w = lowerSet(wanted);
  const h = lowerSet(have);
  return { added: [...w].filter((n) => !h.has(n)), removed: [...h].filter((n) => !w.has(n)) };
}

function decide(
  spec: CertificateSpec,
  info: CertInfo | null | undefined,
  now: Date,
  policy: RenewalPolicy,
  opts: PlanOptions,
): Decision {
  const name = spec.name;
  if (!info) return { name, renew: true, reason: 'missing', detail: 'no certificate installed' };

  const notAfter = info.notAfter;
  const renewAt = renewalTime(info, policy);
  const base = { name, renewAt, notAfter };
  const expiry = `expires ${iso(notAfter)}`;

  if (opts.force)
    return {
      ...base,
      renew: true,
      reason: 'forced',
      detail: `renewal forced; current certificate ${expiry}`,
    };

  // X.509 validity includes notAfter itself (RFC 5280 §4.1.2.5): expired only after it.
  if (now.getTime() > notAfter.getTime()) {
    return { ...base, renew: true, reason: 'expired', detail: `expired ${iso(notAfter)}` };
  }

  const { added, removed } = nameChanges(spec.domains, info.names);
  if (added.length > 0 || removed.length > 0) {
    const parts = [
      added.length > 0 ? `adds ${added.join(', ')}` : '',
      removed.length > 0 ? `removes ${removed.join(', ')}` : '',
    ].filter(Boolean);
    return {
      ...base,
      renew: true,
      reason: 'names-changed',
      detail: `configured names differ: ${parts.join('; ')}`,
    };
  }

  if (info.keyType !== spec.keyType) {
    const have: KeyType | 'unknown' = info.keyType;
    return {
      ...base,
      renew: true,
      reason: 'key-changed',
      detail: `certificate key is ${have}, configured ${spec.keyType}`,
    };
  }

  if (now.getTime() >= renewAt.getTime()) {
    return {
      ...base,
      renew: true,
      reason: 'in-window',
      detail: `${expiry}, renewal window opened ${iso(renewAt)}`,
    };
  }
  return {
    ...base,
    renew: false,
    reason: 'valid',
    detail: `${expiry}, renewal window opens ${iso(renewAt)}`,
  };
}

/**
 * One decision per spec, in spec order. `current` maps spec name to what is installed (null or
 * absent = nothing). Precedence when several reasons apply:
 * missing > forced > expired > names-changed > key-changed > in-window > valid.
 */
export function planRenewals(
  specs: readonly CertificateSpec[],
  current: ReadonlyMap<string, CertInfo | null>,
  now: Date,
  policy: RenewalPolicy,
  opts: PlanOptions = {},
): Decision[] {
  return specs.map((spec) => decide(spec, current.get(spec.name), now, policy, opts));
}
