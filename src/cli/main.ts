import { parseArgs, type ParseArgsConfig } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { UsageError, describeError, isUserError } from '../core/errors';
import { LOG_LEVELS, createLogger, type LogLevel } from '../core/logger';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CommandContext, type GlobalOptions } from './context';
import { COMMAND_HELP, CONFIG_SUBCOMMANDS, renderCommandHelp, renderGlobalHelp, version } from './help';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CommandContext, type GlobalOptions } from './context';
export {
  COMMAND_HELP,
  CONFIG_SUBCOMMANDS,
  GLOBAL_OPTIONS,
  PROGRAM_SUMMARY,
  renderCommandHelp,
  renderGlobalHelp,
  version,
  wrapText,
  type CommandHelp,
  type OptionHelp,
} from './help';

/**
 * The command-line entry point: the only place that exits. Commands are plain async functions
 * returning an exit code; heavy modules load inside them, so `--help` and `--version` are fast.
 */

type Runner = (ctx: CommandContext) => Promise<number>;

const RUNNERS: Record<string, Runner> = {
  renew: async (ctx) => (await import('./renew')).renewCommand(ctx),
  check: async (ctx) => (await import('./check')).checkCommand(ctx),
  run: async (ctx) => (await import('./run')).runCommand(ctx),
  init: async (ctx) => (await import('./init')).initCommand(ctx),
  certificates: async (ctx) => (await import('./certificates')).certificatesCommand(ctx),
  delete: async (ctx) => (await import('./delete')).deleteCommand(ctx),
  revoke: async (ctx) => (await import('./revoke')).revokeCommand(ctx),
  account: async (ctx) => (await import('./account')).accountCommand(ctx),
  import: async (ctx) => (await import('./import')).importCommand(ctx),
  storage: async (ctx) => (await import('./storage')).storageCommand(ctx),
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
  staging: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'override-guard': { type: 'boolean' },
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
  // revoke
  reason: { type: 'string' },
  'with-cert-key': { type: 'boolean' },
  // check
  'only-problems': { type: 'boolean' },
  prometheus: { type: 'string' },
  'connect-timeout': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  concurrency: { type: 'string' },
  readiness: { type: 'boolean' },
  // import
  dir: { type: 'string' },
  path: { type: 'string' },
  write: { type: 'boolean' },
  // storage migrate
  to: { type: 'string' },
};

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

/** The command word of a line the strict parser rejected (unknown options read as switches). */
function commandOf(argv: readonly string[]): string | undefined {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false })
      .positionals[0];
  } catch {
    return undefined;
  }
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
    staging: values.staging === true,
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
      // `check` is a monitoring plugin: a command line it cannot use is UNKNOWN (3), never 2.
      if (commandOf(argv) === 'check')
        return (await import('./check')).checkCommandLineExit(err, argv, stdout, stderr);
      stderr.write(`${(err as Error).message}\n`);
      return EXIT_USAGE;
    }
    stderr.write(
      `certpilot: unexpected error (a bug; please report it): ${describeError(err)}\n${(err as Error)?.stack ?? ''}\n`,
    );
    return EXIT_FAILED;
  }
}

/**
 * `renew` (the timer's one-shot run, started without node flags): V8 doubles the young
 * generation's semi-spaces from 1 MB up to 16 MB as start-up and concurrent orders promote
 * objects, and keeps them until exit: about 13 MB of the peak of issuing 20 certificates. A
 * growth factor of 1 keeps them at their initial size, as the daemon unit's
 * `--max-semi-space-size=1` does. Node flags given by the operator win.
 */
function capYoungGeneration(argv: readonly string[]): void {
  if (commandOf(argv) !== 'renew') return;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/semi[-_]space/.test(given)) return;
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Process entry: wires signals, runs, exits. */
export function runCli(argv: readonly string[]): void {
  capYoungGeneration(argv);
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
