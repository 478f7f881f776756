import { lifetimeMismatch, type ProfileChoice } from '../acme/profiles';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import type { CertState } from '../state/store';
import type { CertInfo } from '../x509';
import type { RenewContext } from './context';
import { DIRECTORY_CACHE_MS } from './directory';

/**
 * The ACME profile of the installed version against the configured one. The profile an order
 * used is recorded with the version (`lastSuccess` of the scheduling state, tied to its serial),
 * so a change of `profile` in the configuration renews the certificate once:
 *
 *   - another profile, or none where one was used (or the reverse): renewed;
 *   - `profileMode` alone changed: not renewed (the same profile is asked for);
 *   - a `preferred` profile the CA lacked at the last order (ordered without it): renewed once
 *     the CA offers it, judged by a directory read after that order, i.e. at least a day later
 *     (the directory cache's age), so a CA whose directory flaps costs at most an order a day;
 *   - nothing recorded (a version from before profiles were recorded, imported, or put back by
 *     a rollback): never renewed for its profile, so an upgrade does not renew everything.
 */

/** The record of the installed version, when there is one for exactly this serial. */
function recordOf(state: CertState, info: CertInfo | null): CertState['lastSuccess'] {
  const record = state.lastSuccess;
  return info && record && record.serial === info.serial && record.profile !== undefined ? record : undefined;
}

/**
 * The profile the installed version (`serial`) was ordered with, as recorded: `name` null for
 * none; null when nothing is recorded for that serial (`certpilot certificates`).
 */
export function recordedProfile(
  state: CertState,
  serial: string | undefined,
): { name: string | null; unavailable?: string } | null {
  const record = state.lastSuccess;
  if (!serial || !record || record.serial !== serial || record.profile === undefined) return null;
  return {
    name: record.profile,
    ...(record.profileUnavailable !== undefined ? { unavailable: record.profileUnavailable } : {}),
  };
}

const named = (p: string | null | undefined): string => (p ? `"${p}"` : "none (the CA's default)");

/**
 * Why the installed version no longer matches the configured profile, as one sentence; or
 * undefined. `offered` is asked for (the CA's directory) only in the one case that needs it.
 */
export async function profileChange(
  spec: CertificateSpec,
  info: CertInfo | null,
  state: CertState,
  now: Date,
  offered: () => Promise<Readonly<Record<string, string>>>,
): Promise<string | undefined> {
  const record = recordOf(state, info);
  if (!record) return undefined;
  const had = record.profile ?? null;
  const want = spec.profile ?? null;
  if (had === want) return undefined;
  const waiting =
    had === null && want !== null && spec.profileMode === 'preferred' && record.profileUnavailable === want;
  if (!waiting) return `profile changed from ${named(had)} to ${named(want)}`;
  if (now.getTime() - record.at.getTime() < DIRECTORY_CACHE_MS) return undefined;
  if (!Object.hasOwn(await offered(), want)) return undefined;
  return `preferred profile "${want}" is now offered by the CA; this version was ordered without it`;
}

/** The observation's profile reason (src/renew/observe.ts). */
export async function observeProfileChange(
  ctx: RenewContext,
  spec: CertificateSpec,
  info: CertInfo | null,
  state: CertState,
): Promise<string | undefined> {
  return profileChange(spec, info, state, ctx.clock.now(), async () => (await ctx.directory()).profiles);
}

/** Records the profile an order used with the version just installed (after afterSuccess). */
export function withIssuedProfile(state: CertState, choice: ProfileChoice): CertState {
  if (!state.lastSuccess) return state;
  const { profileUnavailable: _old, ...lastSuccess } = state.lastSuccess;
  return {
    ...state,
    lastSuccess: {
      ...lastSuccess,
      profile: choice.profile ?? null,
      ...(choice.unavailable !== undefined ? { profileUnavailable: choice.unavailable } : {}),
    },
  };
}

/**
 * What the renew report says about the profile of a version just issued: a preferred profile
 * the CA lacked (the service logged it once per run), and a lifetime other than the promised
 * one (logged here, per certificate).
 */
export function issuedProfileWarnings(
  spec: CertificateSpec,
  choice: ProfileChoice,
  info: Pick<CertInfo, 'notBefore' | 'notAfter'>,
  directoryUrl: string,
  log: Logger,
): string[] {
  const warnings: string[] = [];
  if (choice.unavailable !== undefined)
    warnings.push(
      `ordered without profile "${choice.unavailable}": the CA at ${directoryUrl} does not offer it (profileMode: preferred)`,
    );
  if (choice.profile !== undefined) {
    const mismatch = lifetimeMismatch(choice.profile, info, spec.profileLifetimeMs);
    if (mismatch) {
      log.warn('certificate lifetime differs from what its profile promised', { detail: mismatch });
      warnings.push(mismatch);
    }
  }
  return warnings;
}
