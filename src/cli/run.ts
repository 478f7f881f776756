import { systemClock } from '../core/clock';
import { loadConfig, resolveConfigPath } from '../config/load';
import type { AgentConfig } from '../config/types';
import { Daemon } from '../daemon/daemon';
import { assertReadyToRenew } from './account-preflight';
import { actAsStateOwner } from './privileges';
import { withStaging } from './staging';
import { EXIT_OK, type CommandContext } from './context';

/**
 * `certpilot run`: the daemon in the foreground (systemd runs it as a simple service).
 * SIGHUP re-reads the config; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
export async function runCommand(ctx: CommandContext): Promise<number> {
  const path = resolveConfigPath(ctx.global.config);
  // Loaded once here to learn the state directory's owner (see actAsStateOwner); the daemon
  // starts with this copy and re-reads the file on SIGHUP.
  const load = async (): Promise<AgentConfig> => {
    const c = await loadConfig({ path });
    return ctx.global.staging ? withStaging(c) : c;
  };
  let first: AgentConfig | undefined = await load();
  actAsStateOwner(first.storage.stateDir, ctx.log, path);
  // As `renew`: a statically checkable problem stops the service at start (exit 2, which
  // systemd reports), before an account key, a journal or an order exists.
  await assertReadyToRenew(first);
  const daemon = new Daemon({
    loadConfig: async () => {
      const preloaded = first;
      first = undefined;
      return preloaded ?? load();
    },
    log: ctx.log,
    clock: systemClock,
    openAcme: async (config: AgentConfig) => {
      const { AcmeService } = await import('../acme/service');
      return AcmeService.open(config.acme, config.storage.stateDir, ctx.log);
    },
    openSolver: (config: AgentConfig) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Dns01Solver } = require('../dns/solver') as typeof import('../dns/solver');
      return new Dns01Solver({ dns: config.dns, log: ctx.log });
    },
  });
  await daemon.start();
  const onHup = (): void => void daemon.reload();
  process.on('SIGHUP', onHup);
  try {
    // main.ts turns SIGTERM/SIGINT into ctx.signal.
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await daemon.stop();
  } finally {
    process.off('SIGHUP', onHup);
  }
  return EXIT_OK;
}
