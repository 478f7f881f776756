import { UsageError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import { CertStore } from '../store/cert-store';
import { FileStorage } from '../store/file-storage';
import { ChallengeJournal } from '../store/journal';
import { acquireLock } from '../store/lock';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

/**
 * `certpilot delete NAME`: removes a certificate that is no longer configured from the store.
 * Its live version goes to the archive first (the archive keeps it whatever `archiveDepth`
 * says), so nothing is lost by a mistaken delete. The scheduling state is kept on purpose: it
 * holds the orders placed for these names, and the CA's weekly limit counts them whether or
 * not the certificate is still here. Refused for a configured certificate (the next renew would
 * only issue it again), while a run holds its lock, or while a killed run's challenge records
 * are still to be cleaned (renew cleans them first).
 */
export async function deleteCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length !== 1) throw new UsageError('Usage: certpilot delete NAME');
  const name = ctx.args[0]!;
  const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  if (config.certificates.some((c) => c.name === name)) {
    throw new UsageError(
      `certpilot delete: "${name}" is still configured; remove it from certificates[] in the config first (otherwise the next renew issues it again)`,
    );
  }
  const stateDir = config.storage.stateDir;
  actAsStateOwner(stateDir, ctx.log);
  const store = new CertStore({ stateDir, archiveDepth: config.storage.archiveDepth, log: ctx.log });
  if (!(await store.listNames()).includes(name)) {
    throw new UsageError(
      `certpilot delete: no stored certificate named "${name}" (see certpilot certificates)`,
    );
  }
  const lock = await acquireLock(stateDir, name, { wait: false, purpose: 'delete', signal: ctx.signal });
  if (!lock) {
    ctx.log.error(
      `certpilot delete: "${name}" is locked by a running certpilot; try again when it has finished`,
    );
    return EXIT_FAILED;
  }
  try {
    if ((await new ChallengeJournal(stateDir).pending()).includes(name)) {
      ctx.log.error(
        `certpilot delete: a killed run left challenge records for "${name}"; run \`certpilot renew\` once (it removes them), then delete`,
      );
      return EXIT_FAILED;
    }
    const archived = await store.remove(name, { lock, signal: ctx.signal });
    await new FileStorage(stateDir).delete(`deploy/${name}.json`, { lock, signal: ctx.signal });
    ctx.log.info('certificate deleted', { cert: name, ...(archived ? { archived } : {}) });
    const result = { deleted: name, archived: archived ?? null };
    ctx.stdout.write(
      ctx.global.json
        ? JSON.stringify(result, null, 2) + '\n'
        : `deleted ${name}${archived ? `; its last version is kept in ${archived}` : ''}\n`,
    );
    return EXIT_OK;
  } finally {
    await lock.release();
  }
}
