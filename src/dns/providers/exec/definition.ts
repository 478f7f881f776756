import type { ProviderDefinition } from '../../provider';

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

/**
 * Runs an operator's program for each record, lego-style:
 * `<command> [args...] present|cleanup <fqdn.> <value>`. No shell is involved.
 */
export const execDefinition: ProviderDefinition = {
  code: 'exec',
  aliases: ['script'],
  title: 'External program',
  description:
    'Runs a program of yours as `<command> [args...] present|cleanup <fqdn> <value>` (argv, no shell) with ' +
    "CERTPILOT_DNS_* variables in its environment; of certpilot's own environment it sees only PATH, HOME, " +
    'USER, LOGNAME, TMPDIR, TZ and the locale, plus the variables named in passEnv. Exit 0 means done; anything else fails the call with its stderr. ' +
    'The program must keep other values at the name, succeed when asked to remove an absent value, and be safe ' +
    'to run concurrently for different names. See docs/providers/exec.md.',
  options: {
    command: { doc: 'Absolute path of the program to run.', format: 'string', required: true },
    args: {
      doc: 'Extra leading arguments (a list of strings; each is one argv element, never split).',
      format: 'string-list',
    },
    passEnv: {
      doc:
        "Names of certpilot's environment variables the program may see, e.g. its API credentials " +
        "(nothing else of certpilot's environment is passed).",
      format: 'string-list',
    },
    timeout: {
      doc: 'Seconds one run may take before it is killed (SIGTERM, then SIGKILL).',
      format: 'nat',
      default: EXEC_DEFAULT_TIMEOUT_SECONDS,
    },
  },
  defaults: { ttl: 60, propagationTimeoutMs: 120_000, propagationIntervalMs: 2_000 },
  example: [
    'type: exec',
    'command: /usr/local/bin/acme-dns-hook',
    'args: [--account, prod]',
    'passEnv: [ACME_DNS_API_KEY]',
    'timeout: 60',
  ].join('\n'),
  validate(options) {
    const problems: [string, string][] = [];
    const command = options.command;
    if (typeof command !== 'string' || !command.startsWith('/')) {
      problems.push(['command', 'must be an absolute path (no PATH lookup, no shell)']);
    }
    const args = parseExecArgs(options.args);
    if (typeof args === 'string') problems.push(['args', args]);
    const passEnv = parseEnvNames(options.passEnv);
    if (typeof passEnv === 'string') problems.push(['passEnv', passEnv]);
    if (options.timeout !== undefined && (typeof options.timeout !== 'number' || options.timeout < 1)) {
      problems.push(['timeout', 'must be at least 1 second']);
    }
    return problems;
  },
  create(options, ctx) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ExecProvider } = require('./provider') as typeof import('./provider');
    return new ExecProvider(options, ctx);
  },
};
