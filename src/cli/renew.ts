import { systemClock } from '../core/clock';
import { resolveConfigPath, loadConfig } from '../config/load';
import type { AgentConfig } from '../config/types';
import { runRenew, type CertOutcome, type RenewReport } from '../renew/run';
import { assertReadyToRenew } from './account-preflight';
import { actAsStateOwner } from './privileges';
import { withStaging } from './staging';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';

export async function renewCommand(ctx: CommandContext): Promise<number> {
  const loaded = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  const config = ctx.global.staging ? withStaging(loaded) : loaded;
  actAsStateOwner(config.storage.stateDir, ctx.log);
  // Statically checkable problems end the run before an account, a journal or an order exists.
  await assertReadyToRenew(config);
  const report = await runRenew(
    config,
    { names: ctx.args, force: ctx.flags.force === true, dryRun: ctx.flags['dry-run'] === true },
    {
      log: ctx.log,
      clock: systemClock,
      signal: ctx.signal,
      openAcme: () => openAcme(config, ctx),
      openSolver: () => openSolver(config, ctx),
    },
  );
  ctx.stdout.write(
    ctx.global.json
      ? JSON.stringify(reportJson(report, ctx.flags['dry-run'] === true), null, 2) + '\n'
      : formatReport(report),
  );
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

async function openAcme(config: AgentConfig, ctx: CommandContext) {
  const { AcmeService } = await import('../acme/service');
  return AcmeService.open(config.acme, config.storage.stateDir, ctx.log);
}

function openSolver(config: AgentConfig, ctx: CommandContext) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Dns01Solver } = require('../dns/solver') as typeof import('../dns/solver');
  return new Dns01Solver({ dns: config.dns, log: ctx.log });
}

function reportJson(report: RenewReport, dryRun: boolean): unknown {
  return {
    ok: report.ok,
    dryRun,
    acmeRequests: report.acmeRequests ?? { total: 0, byEndpoint: {} },
    certificates: report.outcomes.map((o) => ({
      name: o.name,
      status: o.status,
      reason: o.decision.reason,
      detail: o.decision.detail,
      serial: o.serial ?? null,
      notAfter: o.notAfter?.toISOString() ?? null,
      renewAt: o.decision.renewAt?.toISOString() ?? null,
      error: o.error ?? null,
      errorCode: o.errorCode ?? null,
      durationMs: o.durationMs ?? null,
      deploy: o.deploy ?? null,
    })),
    hookErrors: report.hookErrors ?? [],
  };
}

/** One status line per certificate: NAME STATUS expiry (reason) [error]. */
export function formatReport(report: RenewReport): string {
  const hooks = (report.hookErrors ?? []).map((e) => `hook failed: ${e}\n`).join('');
  if (report.outcomes.length === 0) return 'no certificates configured\n' + hooks;
  const width = Math.max(...report.outcomes.map((o) => o.name.length));
  return report.outcomes.map((o) => formatLine(o, width)).join('\n') + '\n' + hooks;
}

function formatLine(o: CertOutcome, width: number): string {
  const expiry = o.notAfter ? `expires ${o.notAfter.toISOString()}` : 'no certificate';
  const why = o.status === 'valid' ? o.decision.detail : `${o.decision.reason}: ${o.decision.detail}`;
  const tail = o.error ? ` error: ${o.error}` : '';
  const deploy = o.deploy
    ? ` deploy: ${o.deploy.status}${o.deploy.rolledBack ? ` (serial ${o.deploy.rolledBack.from} replaced by ${o.deploy.rolledBack.to})` : ''}`
    : '';
  return `${o.name.padEnd(width)}  ${o.status.padEnd(7)}  ${expiry}  (${why})${deploy}${tail}`;
}
