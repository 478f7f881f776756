import { describeConfig, environmentSecrets } from '../config/describe';
import { loadConfig, resolveConfigPath } from '../config/load';
import { certificateIssues } from '../config/problems';
import { ConfigError, UsageError } from '../core/errors';
import { accountIssues } from './account-preflight';
import { EXIT_OK, type CommandContext } from './context';

/**
 * `certpilot config check`: every problem that can be found without contacting anything,
 * the ones `renew` would only meet later included (a certificate without a DNS provider, a
 * CA account that cannot be registered); exit 2 with all of them. A valid configuration is
 * printed in the file's own format, and loads back to the same configuration.
 */
export async function configCommand(ctx: CommandContext): Promise<number> {
  const [sub] = ctx.args;
  if (sub !== 'check')
    throw new UsageError(`config: unknown subcommand "${sub ?? ''}" (expected: config check)`);
  const path = resolveConfigPath(ctx.global.config);
  const config = await loadConfig({ path });
  const problems = [...certificateIssues(config), ...(await accountIssues(config))].map(
    ({ path: at, message }) => ({ path: at, message }),
  );
  if (problems.length > 0) throw new ConfigError(problems, path);
  const view = describeConfig(config);
  if (ctx.global.json) {
    ctx.stdout.write(JSON.stringify(view, null, 2) + '\n');
  } else {
    const { stringify } = await import('yaml');
    const notes = environmentSecrets(config).map((n) => `# ${n}\n`);
    ctx.stdout.write(`# ${path}: valid\n${notes.join('')}${stringify(view)}`);
  }
  return EXIT_OK;
}
