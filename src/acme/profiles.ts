import { CertpilotError } from '../core/errors';
import type { ProfileMode } from '../config/types';
import type { DirectoryInfo } from './ari';

/**
 * ACME certificate profiles (draft-ietf-acme-profiles; Let's Encrypt: `classic`, `tlsserver`,
 * `shortlived`). The CA lists what it offers in the directory's `meta.profiles`; a newOrder
 * names one in its `profile` field. A profile changes the lifetime (160 hours for `shortlived`),
 * so a `required` profile the CA does not offer fails loudly rather than silently get a
 * certificate that the operator's plans do not expect; a `preferred` one falls back to the
 * CA's default.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Let's Encrypt's published lifetimes per profile, with the date each took (or takes) effect
 * (https://letsencrypt.org/docs/profiles/ and "Decreasing Certificate Lifetimes to 45 Days",
 * https://letsencrypt.org/2025/12/02/from-90-to-45/). A certificate is judged by the entry in
 * force at its notBefore, so the scheduled changes do not turn into false warnings. Another
 * CA that uses the same names with other lifetimes needs `profileLifetime`.
 */
export const LETS_ENCRYPT_PROFILE_LIFETIMES: Readonly<
  Record<string, readonly { from: string; lifetimeMs: number }[]>
> = {
  classic: [
    { from: '2015-01-01T00:00:00Z', lifetimeMs: 90 * DAY_MS },
    { from: '2027-02-10T00:00:00Z', lifetimeMs: 64 * DAY_MS },
    { from: '2028-02-16T00:00:00Z', lifetimeMs: 45 * DAY_MS },
  ],
  tlsserver: [
    { from: '2015-01-01T00:00:00Z', lifetimeMs: 90 * DAY_MS },
    { from: '2026-05-13T00:00:00Z', lifetimeMs: 45 * DAY_MS },
  ],
  shortlived: [{ from: '2015-01-01T00:00:00Z', lifetimeMs: 160 * HOUR_MS }],
};

/**
 * How far a lifetime may differ from the promise and still match: an hour (CAs backdate
 * notBefore, and X.509's notAfter is inclusive) plus 5 % (rounding to whole days or hours).
 */
export const LIFETIME_TOLERANCE_MS = HOUR_MS;
export const LIFETIME_TOLERANCE_RATIO = 0.05;

/**
 * Returns the profile to put in newOrder, or undefined when none was requested. Throws
 * ACME_PROBLEM (not retryable: only a config or CA change fixes it) when the directory does
 * not offer the requested profile.
 */
export function checkProfile(
  requested: string | undefined,
  directory: Pick<DirectoryInfo, 'profiles'>,
  directoryUrl?: string,
): string | undefined {
  if (requested === undefined || requested === '') return undefined;
  const offered = Object.keys(directory.profiles);
  if (offered.includes(requested)) return requested;
  const where = directoryUrl ? ` at ${directoryUrl}` : '';
  const list =
    offered.length === 0
      ? 'it offers no profiles at all (no meta.profiles in its directory)'
      : `it offers: ${offered.map((p) => `"${p}"`).join(', ')}`;
  throw new CertpilotError(
    'ACME_PROBLEM',
    `acme: profile "${requested}" is not offered by the CA${where}; ${list}`,
    { retryable: false, details: { requested, offered } },
  );
}

/** What to order: the profile to send, or, for a preferred one the CA lacks, none and why. */
export interface ProfileChoice {
  /** The profile for newOrder; undefined: none (the CA's default). */
  profile?: string;
  /** A preferred profile the CA does not offer: the order goes without one. */
  unavailable?: string;
}

/**
 * The profile for an order: `required` (the default) as checkProfile; `preferred` falls back to
 * no profile (the CA's default) when the directory does not offer it, and says so.
 */
export function chooseProfile(
  requested: string | undefined,
  mode: ProfileMode | undefined,
  directory: Pick<DirectoryInfo, 'profiles'>,
  directoryUrl?: string,
): ProfileChoice {
  if (requested === undefined || requested === '') return {};
  if (mode !== 'preferred') return { profile: checkProfile(requested, directory, directoryUrl) };
  return Object.hasOwn(directory.profiles, requested) ? { profile: requested } : { unavailable: requested };
}

/**
 * The lifetime `profile` promises for a certificate issued at `issuedAt`: `stated`
 * (`profileLifetime`) when given, else Let's Encrypt's published value for the name, else
 * undefined (nothing to compare with).
 */
export function promisedLifetimeMs(
  profile: string,
  issuedAt: Date,
  stated?: number,
): { lifetimeMs: number; source: 'configured' | 'lets-encrypt' } | undefined {
  if (stated !== undefined) return { lifetimeMs: stated, source: 'configured' };
  const table = Object.hasOwn(LETS_ENCRYPT_PROFILE_LIFETIMES, profile)
    ? LETS_ENCRYPT_PROFILE_LIFETIMES[profile]!
    : [];
  const entry = table.filter((e) => Date.parse(e.from) <= issuedAt.getTime()).at(-1);
  return entry ? { lifetimeMs: entry.lifetimeMs, source: 'lets-encrypt' } : undefined;
}

/** True when `actualMs` is within the tolerance of `promisedMs`. */
export function lifetimeMatches(actualMs: number, promisedMs: number): boolean {
  const tolerance = LIFETIME_TOLERANCE_MS + promisedMs * LIFETIME_TOLERANCE_RATIO;
  return Math.abs(actualMs - promisedMs) <= tolerance;
}

/** "160h", "90d": a lifetime as `profileLifetime` writes it (whole hours; days when exact). */
export function formatLifetime(ms: number): string {
  const hours = Math.round(ms / HOUR_MS);
  return hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
}

/**
 * One sentence when the certificate's lifetime is not what its profile promised; undefined
 * when it is, or when nothing was promised (no profile, an unknown name without
 * `profileLifetime`).
 */
export function lifetimeMismatch(
  profile: string,
  validity: { notBefore: Date; notAfter: Date },
  stated?: number,
): string | undefined {
  const promise = promisedLifetimeMs(profile, validity.notBefore, stated);
  if (!promise) return undefined;
  const actual = validity.notAfter.getTime() - validity.notBefore.getTime();
  if (lifetimeMatches(actual, promise.lifetimeMs)) return undefined;
  const whose = promise.source === 'configured' ? 'profileLifetime' : "Let's Encrypt's published lifetime";
  return (
    `profile "${profile}" promised a lifetime of ${formatLifetime(promise.lifetimeMs)} (${whose}), ` +
    `the CA issued ${formatLifetime(actual)}; renewal follows the real lifetime` +
    (promise.source === 'configured' ? '' : '; set profileLifetime if this CA means otherwise')
  );
}
