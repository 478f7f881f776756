import { createInterface } from 'node:readline/promises';
import { describeError, UsageError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import type { AgentConfig } from '../config/types';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

/**
 * `certpilot account show | rollover | deactivate`: the ACME account of the configured CA.
 * `rollover` replaces the account key (RFC 8555 §7.3.5) so that a crash at any point leaves a
 * usable account (src/acme/service.ts); `deactivate` is final at the CA, so it asks first.
 */
const SUBCOMMANDS = ['show', 'rollover', 'deactivate'] as const;

export async function accountCommand(ctx: CommandContext): Promise<number> {
  const sub = ctx.args[0];
  if (!SUBCOMMANDS.includes(sub as (typeof SUBCOMMANDS)[number]) || ctx.args.length !== 1) {
    throw new UsageError(`Usage: certpilot account ${SUBCOMMANDS.join('|')}`);
  }
  const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  actAsStateOwner(config.storage.stateDir, ctx.log);
  if (sub === 'deactivate' && !(await confirmed(ctx, config))) {
    ctx.log.error('certpilot account deactivate: not confirmed; nothing was changed');
    return EXIT_FAILED;
  }
  const { AcmeService } = await import('../acme/service');
  let service;
  try {
    service = await AcmeService.open(config.acme, config.storage.stateDir, ctx.log);
  } catch (err) {
    ctx.log.error(`certpilot account ${sub}: ${describeError(err)}`);
    return EXIT_FAILED;
  }
  try {
    const result = await runSubcommand(sub!, service, ctx);
    ctx.stdout.write(ctx.global.json ? JSON.stringify(result, null, 2) + '\n' : textOf(sub!, result));
    return EXIT_OK;
  } catch (err) {
    ctx.log.error(`certpilot account ${sub}: ${describeError(err)}`);
    return EXIT_FAILED;
  } finally {
    service.close();
  }
}

type Service = Awaited<ReturnType<typeof import('../acme/service').AcmeService.open>>;

async function runSubcommand(
  sub: string,
  service: Service,
  ctx: CommandContext,
): Promise<Record<string, unknown>> {
  if (sub === 'rollover') {
    await service.rolloverKey(ctx.signal);
    return { rolledOver: true, ...(await service.accountDetails(ctx.signal)) };
  }
  if (sub === 'deactivate') {
    const { url } = await service.accountDetails(ctx.signal);
    const movedTo = await service.deactivateAccount(ctx.signal, new Date());
    return { deactivated: url, movedTo };
  }
  return service.accountDetails(ctx.signal);
}

function textOf(sub: string, r: Record<string, unknown>): string {
  if (sub === 'deactivate') {
    return `account ${String(r.deactivated)} deactivated; its files were moved to ${String(r.movedTo)}; the next renew registers a new account\n`;
  }
  const account = (r.account ?? {}) as { status?: unknown; contact?: unknown };
  const lines = [
    ...(sub === 'rollover' ? ['account key replaced'] : []),
    `account:  ${String(r.url)}`,
    `status:   ${String(account.status ?? 'unknown')}`,
    `contact:  ${Array.isArray(account.contact) ? account.contact.join(', ') : '-'}`,
  ];
  return lines.join('\n') + '\n';
}

/** `--yes`, or a person at a terminal typing "deactivate"; a script without --yes is refused. */
async function confirmed(ctx: CommandContext, config: AgentConfig): Promise<boolean> {
  if (ctx.flags.yes === true) return true;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      'certpilot account deactivate: cannot be undone; pass --yes to confirm (no terminal to ask)',
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Deactivate the ACME account at ${config.acme.directoryUrl}? It can never order or revoke again. Type "deactivate" to confirm: `,
    );
    return answer.trim() === 'deactivate';
  } finally {
    rl.close();
  }
}
