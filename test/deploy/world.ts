import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { AcmeService } from '../../src/acme/service';
import { loadConfig } from '../../src/config/load';
import type { AgentConfig } from '../../src/config/types';
import { systemClock } from '../../src/core/clock';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger';
import type { DeployAwareConfig } from '../../src/config/types';
import { Dns01Solver } from '../../src/dns/solver';
import { runRenew, type RenewDeps, type RenewOptions, type RenewReport } from '../../src/renew/run';
import type { Testbed } from '../helpers/testbed';

/**
 * Issuance for deploy tests: the real Pebble + BIND testbed, the base config through the
 * loader (acme, dns, storage as any integration test), deploy sections added by withDeploy().
 */

export async function loadBase(tb: Testbed, certificates: unknown[]): Promise<AgentConfig> {
  // Deploy tests force the same names many times; the exact-set guard is tested on its own.
  const extra = { defaults: { renewal: { maxOrdersPerWeek: 50 } } };
  return loadConfig({ path: await tb.writeConfig(certificates, extra), env: {} });
}

export interface RenewRun {
  report: RenewReport;
  log: MemoryLogger;
  /** ACME orders this run created (Pebble's newOrder), from the executor's own log. */
  orders: number;
}

export async function renew(
  config: AgentConfig | DeployAwareConfig,
  options: RenewOptions = {},
  faults?: RenewDeps['faults'],
): Promise<RenewRun> {
  const log = memoryLogger();
  const report = await runRenew(config, options, {
    log,
    clock: systemClock,
    openAcme: () => AcmeService.open(config.acme, config.storage.stateDir, log),
    openSolver: () => new Dns01Solver({ dns: config.dns, log }),
    ...(faults ? { faults } : {}),
  });
  return { report, log, orders: log.records.filter((r) => r.message === 'order created').length };
}

/** The serial a TLS server on 127.0.0.1:port serves for `servername`, read by Node directly. */
export function servedSerial(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.destroy();
      resolve(new X509Certificate(raw).serialNumber);
    });
    socket.on('error', reject);
  });
}
