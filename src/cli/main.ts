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

/**
 * The help text as data. `--help`, the man page certpilot(1) and the bash completion are all
 * rendered from this one structure (scripts/package-docs.ts renders the last two), so they
 * cannot drift apart; test/package/man-page.test.ts compares them.
 */
export interface OptionHelp {
  /** As shown: "-c, --config PATH", "--force". An upper-case word is the option's value. */
  flags: string;
  description: string;
}

export interface CommandHelp {
  name: string;
  summary: string;
  /** Usage lines, each starting with "certpilot <name>". */
  synopsis: readonly string[];
  options: readonly OptionHelp[];
  /** Paragraphs after the options (behaviour, exit status). */
  notes: readonly string[];
}

export const GLOBAL_OPTIONS: readonly OptionHelp[] = [
  {
    flags: '-c, --config PATH',
    description: 'configuration file (env CERTPILOT_CONFIG; default /etc/certpilot/certpilot.yaml)',
  },
  { flags: '--log-level LEVEL', description: 'error | warn | info | debug (default info)' },
  { flags: '--log-format FMT', description: 'text | json (default text; logs go to stderr)' },
  { flags: '--json', description: 'machine-readable output on stdout' },
  { flags: '-h, --help', description: 'help (also `certpilot <command> --help`)' },
  { flags: '-V, --version', description: 'print the version' },
];

export const PROGRAM_SUMMARY =
  'keeps TLS certificates from expiring (ACME DNS-01, atomic storage, verified deploy).';

export const COMMAND_HELP: readonly CommandHelp[] = [
  {
    name: 'renew',
    summary: 'Renew the certificates that are due (all, or the NAMEs given).',
    synopsis: ['certpilot renew [NAME...] [--force] [--dry-run] [--json]'],
    options: [
      { flags: '--force', description: 'renew even when not due' },
      { flags: '--dry-run', description: 'print the plan; contact nothing, write nothing' },
      { flags: '--json', description: 'one JSON document on stdout instead of status lines' },
    ],
    notes: [
      'Exit status: 0 every selected certificate is valid afterwards; 1 a renewal failed; 2 usage or configuration error.',
    ],
  },
  {
    name: 'check',
    summary: 'Check certificates, files and endpoints; a Nagios/Icinga plugin (exit 0-3).',
    synopsis: [
      'certpilot check [NAME...] [--json] [--only-problems] [--prometheus FILE]',
      '                [--connect-timeout DURATION] [--handshake-timeout DURATION] [--concurrency N]',
    ],
    options: [
      { flags: 'NAME', description: 'managed certificates or named watch entries (default: all)' },
      { flags: '--json', description: 'one JSON document on stdout (schema in README.md)' },
      {
        flags: '--only-problems',
        description: 'list only rows that are not OK (the exit code still counts all)',
      },
      {
        flags: '--prometheus FILE',
        description: 'also write node_exporter textfile metrics to FILE, atomically',
      },
      {
        flags: '--connect-timeout D',
        description: 'TCP connect timeout per endpoint (default 5s; config check.connectTimeout)',
      },
      {
        flags: '--handshake-timeout D',
        description: 'TLS/STARTTLS handshake timeout (default 10s; config check.handshakeTimeout)',
      },
      {
        flags: '--concurrency N',
        description: 'endpoints probed at once (default 64; config check.concurrency)',
      },
    ],
    notes: [
      'Exit status (Nagios plugin codes): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The worst row decides, in the order CRITICAL > WARNING > UNKNOWN > OK. Configuration errors, unknown NAMEs and bad option values exit 3 (UNKNOWN), not 2.',
    ],
  },
  {
    name: 'run',
    summary: 'Run as a service: renew on schedule (ARI), serve /metrics and /healthz.',
    synopsis: ['certpilot run'],
    options: [],
    notes: [
      'Runs in the foreground (for systemd). Checks every daemon.checkInterval (default 10m) and wakes for each planned renewal, retry or ARI poll. SIGHUP re-reads the configuration (an invalid one is logged and the running one kept); SIGTERM or SIGINT cancel in-flight orders, remove their TXT records and exit 0. Metrics and health on daemon.listen (default 127.0.0.1:9612): /metrics, /healthz.',
    ],
  },
  {
    name: 'providers',
    summary: 'List the DNS providers and their options.',
    synopsis: ['certpilot providers [--json]'],
    options: [{ flags: '--json', description: 'the providers as a JSON array' }],
    notes: [],
  },
  {
    name: 'config',
    summary: 'Configuration tools: `config check` validates and prints the normalised config.',
    synopsis: ['certpilot config check [--json]'],
    options: [
      { flags: 'check', description: 'validate the configuration file and print it normalised' },
      { flags: '--json', description: 'print the normalised configuration as JSON' },
    ],
    notes: ['Secrets are masked. Exit status: 0 valid, 2 invalid.'],
  },
  {
    name: 'version',
    summary: 'Print the version (same as --version).',
    synopsis: ['certpilot version'],
    options: [],
    notes: [],
  },
  {
    name: 'help',
    summary: 'Print help, or the help of one command.',
    synopsis: ['certpilot help [COMMAND]'],
    options: [],
    notes: [],
  },
];

/** Subcommands of `config`, printed by `certpilot config` alone. */
export const CONFIG_SUBCOMMANDS: readonly OptionHelp[] = [COMMAND_HELP[4]!.options[0]!];

/** Wraps prose to `width` columns, continuation lines indented by `indent`. */
export function wrapText(text: string, width: number, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line = line ? `${line} ${word}` : indent + word;
  }
  if (line) lines.push(line);
  return lines;
}

function optionLines(options: readonly OptionHelp[], column: number): string[] {
  return options.map((o) => `  ${o.flags.padEnd(column - 3)} ${o.description}`);
}

/** `certpilot <command> --help`. */
export function renderCommandHelp(c: CommandHelp): string {
  const column = Math.max(...c.options.map((o) => o.flags.length + 3), 14);
  const parts = [`Usage: ${c.synopsis.join('\n')}`];
  if (c.options.length > 0) parts.push(optionLines(c.options, column).join('\n'));
  for (const note of c.notes) parts.push(wrapText(note, 94).join('\n'));
  return parts.join('\n\n');
}

/** `certpilot --help`. */
export function renderGlobalHelp(): string {
  return [
    `certpilot: ${PROGRAM_SUMMARY}`,
    '',
    'Usage: certpilot <command> [options]',
    '',
    'Commands:',
    ...COMMAND_HELP.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Global options:',
    ...GLOBAL_OPTIONS.map(
      (o) => `  ${o.flags.startsWith('--') ? '    ' : ''}${o.flags}`.padEnd(25) + ` ${o.description}`,
    ),
  ].join('\n');
}

type Runner = (ctx: CommandContext) => Promise<number>;

const RUNNERS: Record<string, Runner> = {
  renew: async (ctx) => (await import('./renew')).renewCommand(ctx),
  check: async (ctx) => (await import('./check')).checkCommand(ctx),
  run: async (ctx) => (await import('./run')).runCommand(ctx),
  providers: async (ctx) => {
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
  config: async (ctx) => {
    if (ctx.args.length === 0) {
      // Alone, `config` lists what it can do instead of failing on a missing subcommand.
      const list = CONFIG_SUBCOMMANDS.map((o) => `  ${o.flags.padEnd(10)} ${o.description}`);
      ctx.stdout.write(['Usage: certpilot config <subcommand>', '', 'Subcommands:', ...list, ''].join('\n'));
      return EXIT_USAGE;
    }
    return (await import('./config-check')).configCommand(ctx);
  },
  version: async (ctx) => {
    ctx.stdout.write(`certpilot ${version()}\n`);
    return EXIT_OK;
  },
};

const COMMANDS = new Map(COMMAND_HELP.map((help) => [help.name, help]));

/** What the parser accepts; every long option must appear in the help data above (tested). */
export const OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  config: { type: 'string', short: 'c' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
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
      const help = topic ? COMMANDS.get(topic) : undefined;
      stdout.write((help ? renderCommandHelp(help) : renderGlobalHelp()) + '\n');
      return parsed.command || parsed.values.help ? EXIT_OK : EXIT_USAGE;
    }
    const help = COMMANDS.get(parsed.command);
    const runner = RUNNERS[parsed.command];
    if (!help || !runner)
      throw new UsageError(`certpilot: unknown command "${parsed.command}" (see certpilot --help)`);
    if (parsed.values.help) {
      stdout.write(renderCommandHelp(help) + '\n');
      return EXIT_OK;
    }
    const global = globalOptions(parsed.values);
    const log = createLogger({ level: global.logLevel, format: global.logFormat, stream: stderr });
    return await runner({
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
