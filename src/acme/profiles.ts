import { CertpilotError } from '../core/errors';
import type { DirectoryInfo } from './ari';

/**
 * ACME certificate profiles (draft-ietf-acme-profiles; Let's Encrypt: `classic`, `tlsserver`,
 * `shortlived`). The CA lists what it offers in the directory's `meta.profiles`; a newOrder
 * names one in its `profile` field. A profile changes the lifetime (160 hours for `shortlived`),
 * so asking for one the CA does not offer must fail loudly rather than silently get a 90-day
 * certificate that the operator's plans do not expect.
 */

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
