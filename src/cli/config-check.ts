import { describeConfig, loadConfig, resolveConfigPath } from '../config/load';
import { UsageError } from '../core/errors';
import { EXIT_OK, type CommandContext } from './context';

export async function configCommand(ctx: CommandContext): Promise<number> {
  const [sub] = ctx.args;
  if (sub !== 'check')
    throw new UsageError(`config: unknown subcommand "${sub ?? ''}" (expected: config check)`);
  const path = resolveConfigPath(ctx.global.config);
  const config = await loadConfig({ path });
  const view = describeConfig(config);
  if (ctx.global.json) {
    ctx.stdout.write(JSON.stringify(view, null, 2) + '\n');
  } else {
    const { stringify } = await import('yaml');
    ctx.stdout.write(`# ${path}: valid\n${stringify(view)}`);
  }
  return EXIT_OK;
}
