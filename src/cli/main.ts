import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, describeError, isUserError } from '../core/errors';
import { LOG_LEVELS, createLogger, type LogFormat, type LogLevel, type Logger } from '../core/logger';

/**
 * The command-line entry point: the only place that exits. Commands are plain async functions
 * returning an exit code; heavy modules load inside them, so `--help` and `--version` are fast.
 */

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface GlobalOptions {
  config?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  json: boolean;
}

export interface CommandContext {
  /** Positional arguments after the command name. */
  args: string[];
  /** Parsed flags (command-specific ones included, e.g. force, dry-run). */
  flags: Readonly<Record<string, string | boolean | undefined>>;
  global: GlobalOptions;
  log: Logger;
  stdout: NodeJS.WritableStream;
  signal: AbortSignal;
}

interface CommandDef {
  summary: string;
  usage: string;
  run(ctx: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, CommandDef> = {
  renew: {
    summary: 'Renew the certificates that are due (all, or the NAMEs given).',
    usage: [
      'certpilot renew [NAME...] [--force] [--dry-run] [--json]',
      '',
      '  --force     renew even when not due',
      '  --dry-run   print the plan; contact nothing, write nothing',
      '  --json      one JSON document on stdout instead of status lines',
      '',
      'Exit status: 0 every selected certificate is valid afterwards; 1 a renewal failed;',
      '2 usage or configuration error.',
    ].join('\n'),
    run: async (ctx) => (await import('./renew')).renewCommand(ctx),
  },
  check: {
    summary: 'Check certificates, files and endpoints; a Nagios/Icinga plugin (exit 0-3).',
    usage: [
      'certpilot check [NAME...] [--json] [--only-problems] [--prometheus FILE]',
      '                [--connect-timeout DURATION] [--handshake-timeout DURATION] [--concurrency N]',
      '',
      '  NAME                  managed certificates or named watch entries (default: all)',
      '  --json                one JSON document on stdout (schema in README.md)',
      '  --only-problems       list only rows that are not OK (the exit code still counts all)',
      '  --prometheus FILE     also write node_exporter textfile metrics to FILE, atomically',
      '  --connect-timeout D   TCP connect timeout per endpoint (default 5s; config check.connectTimeout)',
      '  --handshake-timeout D TLS/STARTTLS handshake timeout (default 10s; config check.handshakeTimeout)',
      '  --concurrency N       endpoints probed at once (default 64; config check.concurrency)',
      '',
      'Exit status (Nagios plugin codes): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The worst row',
      'decides, in the order CRITICAL > WARNING > UNKNOWN > OK. Configuration errors, unknown',
      'NAMEs and bad option values exit 3 (UNKNOWN), not 2.',
    ].join('\n'),
    run: async (ctx) => (await import('./check')).checkCommand(ctx),
  },
  run: {
    summary: 'Run as a service: renew on schedule (ARI), serve /metrics and /healthz.',
    usage: [
      'certpilot run',
      '',
      'Runs in the foreground (for systemd). Checks every daemon.checkInterval (default 10m) and',
      'wakes for each planned renewal, retry or ARI poll. SIGHUP re-reads the configuration (an',
      'invalid one is logged and the running one kept); SIGTERM or SIGINT cancel in-flight orders,',
      'remove their TXT records and exit 0. Metrics and health on daemon.listen (default',
      '127.0.0.1:9612): /metrics, /healthz.',
    ].join('\n'),
    run: async (ctx) => (await import('./run')).runCommand(ctx),
  },
  init: {
    summary: 'Write a first configuration (asks on a terminal; every answer is also a flag).',
    usage: [
      'certpilot init [--config PATH] [--ca PRESET|URL] [--ca-bundle PATH] [--email ADDR] [--agree-tos]',
      '               [--eab-kid ID --eab-hmac-file PATH] [--provider TYPE] [--provider-option KEY=VALUE]...',
      '               [--name NAME] [--domain NAME]... [--output-dir DIR] [--deploy none|nginx]',
      '               [--endpoint HOST:PORT] [--state-dir DIR] [--set KEY.PATH=VALUE]... [--yes] [--force]',
      '',
      '  --ca PRESET|URL          letsencrypt (default), letsencrypt-staging, zerossl, google, buypass, or a URL',
      '  --ca-bundle PATH         extra CA certificates to trust for the ACME server (a private CA)',
      '  --email ADDR             contact address of the ACME account',
      "  --agree-tos              agree to the CA's terms of service",
      '  --eab-kid ID             External Account Binding key id (zerossl, google)',
      '  --eab-hmac-file PATH     file holding the EAB HMAC key (mode 0600)',
      '  --provider TYPE          DNS provider: rfc2136 (default), route53, cloudflare, exec',
      '  --provider-option K=V    a provider option; secrets as K_file=PATH (see certpilot providers)',
      '  --name NAME              name of the first certificate',
      '  --domain NAME            a domain of the first certificate (repeat for more)',
      '  --output-dir DIR         also copy fullchain and key to DIR/NAME.fullchain.pem and DIR/NAME.key',
      '  --deploy none|nginx      what to reload after a renewal (default none)',
      '  --endpoint HOST:PORT     a TLS endpoint that must serve the new certificate (verified deploy)',
      '  --state-dir DIR          where certificates and state live (default /var/lib/certpilot)',
      '  --set KEY.PATH=VALUE     any other setting, e.g. --set dns.resolvers=[127.0.0.1]',
      '  --yes                    never ask: take flags and defaults (also when stdin is not a terminal)',
      '  --force                  replace an existing file',
      '',
      'The file is checked as `certpilot config check` would before it is written; a problem is',
      'reported with its path and nothing is written. Exit status: 0 written, 2 usage or invalid.',
    ].join('\n'),
    run: async (ctx) => (await import('./init')).initCommand(ctx),
  },
  providers: {
    summary: 'List the DNS providers and their options.',
    usage: 'certpilot providers [--json]',
    run: async (ctx) => {
      const { providersText } = await import('../dns/provider-docs');
      const { listProviders } = await import('../dns/registry');
      ctx.stdout.write(
        ctx.global.json
          ? JSON.stringify(
              listProviders().map(({ code, aliases, title, description, options, defaults, example }) => ({
                code,
                aliases: aliases ?? [],
                title,
                description,
                options,
                defaults,
                example,
              })),
              null,
              2,
            ) + '\n'
          : providersText() + '\n',
      );
      return EXIT_OK;
    },
  },
  config: {
    summary: 'Configuration tools: `config check` validates and prints the normalised config.',
    usage: 'certpilot config check [--json]\n\nSecrets are masked. Exit status: 0 valid, 2 invalid.',
    run: async (ctx) => (await import('./config-check')).configCommand(ctx),
  },
};

const GLOBAL_HELP = (): string =>
  [
    'certpilot: keeps TLS certificates from expiring (ACME DNS-01, atomic storage, verified deploy).',
    '',
    'Usage: certpilot <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'Global options:',
    '  -c, --config PATH       configuration file (env CERTPILOT_CONFIG; default /etc/certpilot/certpilot.yaml)',
    '      --log-level LEVEL   error | warn | info | debug (default info)',
    '      --log-format FMT    text | json (default text; logs go to stderr)',
    '      --json              machine-readable output on stdout',
    '  -h, --help              help (also `certpilot <command> --help`)',
    '  -V, --version           print the version',
  ].join('\n');

const OPTIONS: ParseArgsConfig['options'] = {
  config: { type: 'string', short: 'c' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  // init
  ca: { type: 'string' },
  'ca-bundle': { type: 'string' },
  email: { type: 'string' },
  'agree-tos': { type: 'boolean' },
  'eab-kid': { type: 'string' },
  'eab-hmac-file': { type: 'string' },
  provider: { type: 'string' },
  'provider-option': { type: 'string', multiple: true },
  name: { type: 'string' },
  domain: { type: 'string', multiple: true },
  'output-dir': { type: 'string' },
  deploy: { type: 'string' },
  endpoint: { type: 'string' },
  'state-dir': { type: 'string' },
  set: { type: 'string', multiple: true },
  yes: { type: 'boolean' },
  // check
  'only-problems': { type: 'boolean' },
  prometheus: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  concurrency: { type: 'string' },
};

export function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}

export interface ParsedArgs {
  command?: string;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(
      `certpilot: ${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}`,
    );
  }
  const [command, ...positionals] = parsed.positionals;
  return { command, positionals, values: parsed.values as ParsedArgs['values'] };
}

function globalOptions(values: ParsedArgs['values']): GlobalOptions {
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    throw new UsageError(`certpilot: --log-level must be one of ${LOG_LEVELS.join(', ')} (got "${level}")`);
  }
  const format = (values['log-format'] as string | undefined) ?? 'text';
  if (format !== 'text' && format !== 'json') {
    throw new UsageError(`certpilot: --log-format must be text or json (got "${format}")`);
  }
  return {
    config: values.config as string | undefined,
    logLevel: level as LogLevel,
    logFormat: format,
    json: values.json === true,
  };
}

export interface RunIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** Runs one command line and returns the exit code (never exits: tests call this). */
export async function run(argv: readonly string[], io: RunIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.values.version) {
      stdout.write(`certpilot ${version()}\n`);
      return EXIT_OK;
    }
    if (!parsed.command || parsed.command === 'help') {
      const topic = parsed.command === 'help' ? parsed.positionals[0] : undefined;
      const def = topic ? COMMANDS[topic] : undefined;
      stdout.write((def ? `Usage: ${def.usage}` : GLOBAL_HELP()) + '\n');
      return parsed.command || parsed.values.help ? EXIT_OK : EXIT_USAGE;
    }
    const def = COMMANDS[parsed.command];
    if (!def) throw new UsageError(`certpilot: unknown command "${parsed.command}" (see certpilot --help)`);
    if (parsed.values.help) {
      stdout.write(`Usage: ${def.usage}\n`);
      return EXIT_OK;
    }
    const global = globalOptions(parsed.values);
    const log = createLogger({ level: global.logLevel, format: global.logFormat, stream: stderr });
    return await def.run({
      args: parsed.positionals,
      flags: parsed.values,
      global,
      log,
      stdout,
      signal: io.signal ?? new AbortController().signal,
    });
  } catch (err) {
    if (isUserError(err)) {
      stderr.write(`${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
    stderr.write(
      `certpilot: unexpected error (a bug; please report it): ${describeError(err)}\n${(err as Error)?.stack ?? ''}\n`,
    );
    return EXIT_FAILED;
  }
}

/** Process entry: wires signals, runs, exits. */
export function runCli(argv: readonly string[]): void {
  const controller = new AbortController();
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`certpilot: second ${sig}, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`certpilot: ${sig} received, cancelling (cleanup still runs)\n`);
    controller.abort(new Error(`${sig} received`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  run(argv, { signal: controller.signal }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`certpilot: ${describeError(err)}\n`);
      process.exitCode = EXIT_FAILED;
    },
  );
}

if (require.main === module) runCli(process.argv.slice(2));
