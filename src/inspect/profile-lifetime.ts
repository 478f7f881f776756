import { lifetimeMismatch } from '../acme/profiles';
import type { CertificateSpec } from '../config/types';
import { StateStore } from '../state/store';
import type { CertInfo } from '../x509';
import type { Finding } from './findings';

/**
 * `profile-lifetime`: the stored version was ordered with an ACME profile and its lifetime is
 * not what that profile promised (`profileLifetime`, or Let's Encrypt's published value). Not
 * an expiry risk (renewal follows the real lifetime), but the operator's plans assumed another
 * lifetime: a warning. Read only for certificates with a `profile`, from the profile recorded
 * with the version (a version without a record is not judged).
 */
export async function profileLifetimeFinding(
  spec: CertificateSpec,
  info: CertInfo,
  stateDir: string,
): Promise<Finding | undefined> {
  if (spec.profile === undefined) return undefined;
  const { state } = await new StateStore(stateDir).read(spec.name, { readOnly: true });
  const record = state.lastSuccess;
  if (!record || record.serial !== info.serial || typeof record.profile !== 'string') return undefined;
  const stated = record.profile === spec.profile ? spec.profileLifetimeMs : undefined;
  const mismatch = lifetimeMismatch(record.profile, info, stated);
  return mismatch ? { code: 'profile-lifetime', severity: 'warning', message: mismatch } : undefined;
}
