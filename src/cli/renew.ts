import { systemClock } from '../core/clock';
import { UsageError } from '../core/errors';
import { describeRollback } from '../deploy/work';
import { resolveConfigPath, loadConfig } from '../config/load';
import { certificateProblems } from '../config/problems';
import type { AgentConfig } from '../config/types';
import { runRenew, type CertOutcome, type RenewReport } from '../renew/run';
import { recordSuccessfulRun } from '../daemon/last-run';
import { assertReadyToRenew } from './account-preflight';
import { actAsStateOwner } from './privileges';
import { withStaging } from './staging';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';

export async function renewCommand(ctx: CommandContext): Promise<number> {
  const configPath = resolveConfigPath(ctx.global.config);
  const loaded = await loadConfig({ path: configPath });
  const config = ctx.global.staging ? withStaging(loaded) : loaded;
  actAsStateOwner(config.storage.stateDir, ctx.log, configPath);
  // Statically checkable problems end the run before an account, a journal or an order exists.
  await assertReadyToRenew(config);
  const overrideGuard = ctx.flags['override-guard'] === true;
  if (overrideGuard) checkAtTerminal(ctx);
  // A fleet node orders and installs only: the fleet daemons deploy, in rollout order (src/fleet).
  const renewWith = config.fleet ? (await import('../fleet')).renewConfigOf(config) : config;
  const report = await runRenew(
    renewWith,
    {
      names: ctx.args,
      // Overriding the guard is asking for an order now.
      force: ctx.flags.force === true || overrideGuard,
      dryRun: ctx.flags['dry-run'] === true,
      overrideGuard,
    },
    {
      log: ctx.log,
      clock: systemClock,
      signal: ctx.signal,
      openAcme: () => openAcme(config, ctx),
      openSolver: () => openSolver(config, ctx),
      certificateProblems: certificateProblems(config),
    },
  );
  // For `certpilot check`'s renewer-silent: a timer that stops firing leaves this file ageing.
  if (report.ok && ctx.flags['dry-run'] !== true && ctx.args.length === 0) {
    await recordSuccessfulRun(config.storage.stateDir, { at: systemClock.now(), by: 'renew' }).catch(
      (err: unknown) => ctx.log.warn('cannot record the successful run', { error: String(err) }),
    );
  }
  ctx.stdout.write(
    ctx.global.json
      ? JSON.stringify(reportJson(report, ctx.flags['dry-run'] === true), null, 2) + '\n'
      : formatReport(report),
  );
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

/**
 * `--override-guard` orders past the exact-set guard, which exists to stop loops: a timer, a
 * script or the daemon must never be able to pass it. Only a person at a terminal can: stdin
 * must be a TTY, and the flag must name the certificates.
 */
function checkAtTerminal(ctx: CommandContext): void {
  if (process.stdin.isTTY !== true)
    throw new UsageError(
      'certpilot renew: --override-guard is only accepted at a terminal (stdin is not a TTY)',
    );
  if (ctx.args.length === 0)
    throw new UsageError('certpilot renew: --override-guard needs the names of the certificates to order');
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
      // Set when an acme.fallback CA issued the new certificate.
      ca: o.ca ?? null,
      durationMs: o.durationMs ?? null,
      deploy: o.deploy ?? null,
      warnings: o.warnings ?? [],
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
  // The guard's error is its decision's detail: said once.
  const tail = o.error && o.error !== o.decision.detail ? ` error: ${o.error}` : '';
  const deploy = o.deploy
    ? ` deploy: ${o.deploy.status}${o.deploy.rolledBack ? ` (${describeRollback(o.deploy.rolledBack)})` : ''}`
    : '';
  const warnings = (o.warnings ?? []).map((w) => ` warning: ${w}`).join('');
  const ca = o.ca ? ` from fallback CA ${o.ca}` : '';
  return `${o.name.padEnd(width)}  ${o.status.padEnd(7)}  ${expiry}  (${why})${ca}${deploy}${tail}${warnings}`;
}
