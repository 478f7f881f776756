import { resolveConfigPath } from '../config/load';
import { runImport } from '../import/run';
import { EXIT_OK, EXIT_USAGE, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

/** `certpilot import certbot|lego [NAME...]`: see src/import/run.ts and docs/import.md. */
export async function importCommand(ctx: CommandContext): Promise<number> {
  const [tool, ...names] = ctx.args;
  if (!tool) {
    ctx.stdout.write('Usage: certpilot import certbot|lego [NAME...] (see certpilot import --help)\n');
    return EXIT_USAGE;
  }
  const str = (k: string): string | undefined =>
    typeof ctx.flags[k] === 'string' ? (ctx.flags[k] as string) : undefined;
  const dir = tool === 'lego' ? (str('path') ?? str('dir')) : (str('dir') ?? str('path'));
  await runImport({
    tool,
    names,
    ...(dir ? { dir } : {}),
    configPath: resolveConfigPath(ctx.global.config),
    ...(str('ca') ? { ca: str('ca') } : {}),
    ...(str('provider') ? { provider: str('provider') } : {}),
    ...(str('state-dir') ? { stateDir: str('state-dir') } : {}),
    write: ctx.flags.write === true,
    dryRun: ctx.flags['dry-run'] === true,
    force: ctx.flags.force === true,
    json: ctx.global.json,
    env: process.env,
    log: ctx.log,
    signal: ctx.signal,
    stdout: ctx.stdout,
    // Read the other tool's files and write certpilot's configuration as the caller (root
    // usually); the state directory is written as its owner, like every other command.
    beforeStateWrite: (stateDir) => actAsStateOwner(stateDir, ctx.log),
  });
  return EXIT_OK;
}
