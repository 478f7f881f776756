import { UsageError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import { configuredHostLookup } from '../dns/host-lookup';
import { createEtcdBackend } from '../store/etcd';
import { etcdSide, fileSide, migrateStore, type CertificateMigration } from '../store/etcd/migrate';
import { FileStorage } from '../store/file-storage';
import { FileLocker } from '../store/lock';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

const USAGE = 'Usage: certpilot storage migrate --to etcd|file [--dry-run] [--json]';

/**
 * `certpilot storage migrate --to etcd|file`: copies this host's certificates, archive, state
 * and challenge journal between the file store under storage.stateDir and the etcd cluster of
 * storage.etcd (src/store/etcd/migrate.ts). The source is only read; a second run copies
 * nothing. Both stores come from the same configuration, so storage.etcd must be set (with
 * storage.backend: etcd) whichever way the copy goes.
 */
export async function storageCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length !== 1 || ctx.args[0] !== 'migrate') throw new UsageError(USAGE);
  const to = ctx.flags.to;
  if (to !== 'etcd' && to !== 'file')
    throw new UsageError(`certpilot storage migrate: --to etcd or --to file\n${USAGE}`);
  const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  const settings = config.storage.etcd;
  if (!settings) {
    throw new UsageError(
      'certpilot storage migrate: no etcd cluster configured (set storage.backend: etcd and storage.etcd; see docs/fleet.md)',
    );
  }
  const stateDir = config.storage.stateDir;
  actAsStateOwner(stateDir, ctx.log);
  const lookup = configuredHostLookup();
  const etcd = createEtcdBackend(settings, lookup ? { lookup } : {});
  try {
    const files = fileSide(new FileStorage(stateDir), new FileLocker(stateDir));
    const shared = etcdSide(etcd.storage, etcd.locker);
    const dryRun = ctx.flags['dry-run'] === true;
    const results = await (to === 'etcd'
      ? migrateStore(files, shared, { dryRun, signal: ctx.signal })
      : migrateStore(shared, files, { dryRun, signal: ctx.signal }));
    const where = to === 'etcd' ? `etcd ${settings.prefix}` : stateDir;
    ctx.stdout.write(
      ctx.global.json
        ? JSON.stringify({ to, destination: where, dryRun, certificates: results }, null, 2) + '\n'
        : renderResults(results, where, dryRun),
    );
    return results.some((r) => r.status === 'conflict' || r.status === 'busy') ? EXIT_FAILED : EXIT_OK;
  } finally {
    etcd.close();
  }
}

function renderResults(results: readonly CertificateMigration[], where: string, dryRun: boolean): string {
  const width = Math.max(4, ...results.map((r) => r.name.length));
  const lines = results.map((r) => {
    const what = r.reason ?? (r.keys.length > 0 ? `${r.keys.length} keys` : 'already there');
    return `${r.name.padEnd(width)}  ${r.status.padEnd(10)}  ${what}`;
  });
  if (results.length === 0) lines.push('nothing to copy: the source store holds no certificates');
  lines.push(
    dryRun ? `dry run: nothing was written to ${where}` : `destination: ${where}; the source is unchanged`,
  );
  return lines.join('\n') + '\n';
}
