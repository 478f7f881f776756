import { systemClock } from '../core/clock';
import { describeError, UsageError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import type { AgentConfig } from '../config/types';
import { SECRET_MODE } from '../store/storage';
import { CertStore } from '../store/cert-store';
import { FileStorage } from '../store/file-storage';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

/**
 * `certpilot revoke NAME [--reason R] [--with-cert-key]`: revokes the live version of a stored
 * certificate (RFC 8555 §7.6) and records it under <stateDir>/revocations/NAME/. With
 * `keyCompromise` a configured certificate is renewed at once with a fresh key, since the old
 * key must never be used again; other reasons leave the renewal to the normal schedule (a
 * revoked certificate fails `certpilot check`, and `renew --force NAME` replaces it).
 */
export const REVOCATION_REASONS: Readonly<Record<string, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
};

export async function revokeCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length !== 1)
    throw new UsageError('Usage: certpilot revoke NAME [--reason REASON] [--with-cert-key]');
  const name = ctx.args[0]!;
  const reasonName = (ctx.flags.reason as string | undefined) ?? 'unspecified';
  const reason = REVOCATION_REASONS[reasonName];
  if (reason === undefined) {
    throw new UsageError(
      `certpilot revoke: --reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')} (got "${reasonName}")`,
    );
  }
  const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  const stateDir = config.storage.stateDir;
  actAsStateOwner(stateDir, ctx.log);
  const store = new CertStore({ stateDir, archiveDepth: config.storage.archiveDepth, log: ctx.log });
  const stored = await store.read(name).catch((err: unknown) => {
    throw new UsageError(
      `certpilot revoke: cannot read the stored certificate "${name}": ${describeError(err)}`,
    );
  });
  if (!stored)
    throw new UsageError(
      `certpilot revoke: no stored certificate named "${name}" (see certpilot certificates)`,
    );

  const withCertKey = ctx.flags['with-cert-key'] === true;
  const { AcmeService } = await import('../acme/service');
  try {
    const service = await AcmeService.open(config.acme, stateDir, ctx.log);
    try {
      await service.revoke(stored.cert, reason, ctx.signal, withCertKey ? stored.key : undefined);
    } finally {
      service.close();
    }
  } catch (err) {
    ctx.log.error(`certpilot revoke: ${name} (serial ${stored.info.serial}): ${describeError(err)}`);
    return EXIT_FAILED;
  }
  const record = {
    name,
    serial: stored.info.serial,
    notAfter: stored.info.notAfter.toISOString(),
    reason: reasonName,
    signedWith: withCertKey ? 'certificate key' : 'account key',
    revokedAt: new Date().toISOString(),
  };
  await new FileStorage(stateDir).put(
    `revocations/${name}/${stored.info.serial}.json`,
    JSON.stringify(record, null, 2) + '\n',
    {
      mode: SECRET_MODE,
    },
  );
  ctx.log.info('certificate revoked', { cert: name, serial: stored.info.serial, reason: reasonName });
  const renewal = reasonName === 'keyCompromise' ? await renewWithFreshKey(config, name, ctx) : undefined;
  const ok = renewal === undefined || renewal.ok;
  ctx.stdout.write(
    ctx.global.json
      ? JSON.stringify({ revoked: record, renewed: renewal ?? null }, null, 2) + '\n'
      : `revoked ${name} serial ${record.serial} (${reasonName})\n` +
          (renewal
            ? `renewed with a fresh key: ${renewal.ok ? `serial ${renewal.serial}` : `FAILED: ${renewal.error}`}\n`
            : ''),
  );
  return ok ? EXIT_OK : EXIT_FAILED;
}

/** keyCompromise: a new certificate on a new key now, whatever `reuseKey` says. */
async function renewWithFreshKey(
  config: AgentConfig,
  name: string,
  ctx: CommandContext,
): Promise<{ ok: boolean; serial?: string; error?: string } | undefined> {
  if (!config.certificates.some((c) => c.name === name)) return undefined;
  const fresh: AgentConfig = {
    ...config,
    certificates: config.certificates.map((c) => (c.name === name ? { ...c, reuseKey: false } : c)),
  };
  const { runRenew } = await import('../renew/run');
  const report = await runRenew(
    fresh,
    { names: [name], force: true },
    {
      log: ctx.log,
      clock: systemClock,
      signal: ctx.signal,
      openAcme: async () =>
        (await import('../acme/service')).AcmeService.open(config.acme, config.storage.stateDir, ctx.log),
      openSolver: () => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { Dns01Solver } = require('../dns/solver') as typeof import('../dns/solver');
        return new Dns01Solver({ dns: config.dns, log: ctx.log });
      },
    },
  );
  const o = report.outcomes[0];
  return {
    ok: report.ok,
    ...(o?.serial ? { serial: o.serial } : {}),
    ...(o?.error ? { error: o.error } : {}),
  };
}
