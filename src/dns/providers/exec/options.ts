/* Values and option parsers shared by the exec definition and its provider (kept apart so neither imports the other). */

/** A hook that talks to some DNS API should finish in seconds; a minute leaves room for slow APIs. */
export const EXEC_DEFAULT_TIMEOUT_SECONDS = 60;

/** Parses `args`: a list of strings (a string holding a JSON array is accepted from the environment). */
export function parseExecArgs(value: unknown): string[] | string {
  if (value === undefined || value === null || value === '') return [];
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      return 'must be a list of strings, e.g. ["--profile", "prod"] (never split on spaces: no shell is involved)';
    }
  }
  if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) return 'must be a list of strings';
  return list as string[];
}

/** Environment variable names: what a shell would accept as a name. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses `passEnv`: names of certpilot's environment variables the program may see (its own
 * credentials, e.g. an API key). A list of names, or a string holding a JSON array.
 */
export function parseEnvNames(value: unknown): string[] | string {
  const list = parseExecArgs(value);
  if (typeof list === 'string') return list;
  const bad = list.filter((n) => !ENV_NAME.test(n));
  if (bad.length > 0) return `holds names that are not environment variable names: ${bad.join(', ')}`;
  // The call's own description cannot be replaced by certpilot's environment.
  const reserved = list.filter((n) => n.startsWith('CERTPILOT_DNS_'));
  if (reserved.length > 0) return `cannot pass ${reserved.join(', ')} (set by certpilot for each call)`;
  return list;
}
