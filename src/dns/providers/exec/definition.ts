import type { ProviderDefinition } from '../../provider';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, parseEnvNames, parseExecArgs } from './options';

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
