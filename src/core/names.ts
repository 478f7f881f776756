/**
 * The certificate-name rule, in one place. A name becomes a directory under the state
 * directory, a lock file, a state file and a deploy-state file, so it must be file-name safe:
 * no separator, no dot-dot, no hidden file (it cannot start with "."), no upper case (two names
 * differing only in case would share one directory on a case-insensitive file system), and
 * short enough for any file system once suffixes are added.
 */
export const CERTIFICATE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The rule in words, for configuration errors. */
export const CERTIFICATE_NAME_RULE =
  'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64 characters';

/** True when `name` may be used as a certificate name (and hence as a file name). */
export function isCertificateName(name: unknown): name is string {
  return typeof name === 'string' && CERTIFICATE_NAME_PATTERN.test(name);
}
