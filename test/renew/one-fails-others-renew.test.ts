import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { AcmeService } from '../../src/acme/service';
import { loadConfig } from '../../src/config/load';
import { certificateProblems } from '../../src/config/problems';
import type { AgentConfig } from '../../src/config/types';
import { systemClock } from '../../src/core/clock';
import { Dns01Solver } from '../../src/dns/solver';
import { runRenew } from '../../src/renew/run';
import { memoryLogger } from '../helpers/memory-logger';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * One certificate whose state file cannot be read, or whose configuration cannot be renewed
 * (a name outside its DNS provider's zones), must fail alone, with a message that names the
 * problem and the fix, while the other certificates of the same run renew.
 *
 * How the state file is made unreadable: tests run as root here, and root ignores permission
 * bits (chmod 000 would still be readable), so the file is replaced by a directory of the same
 * name. Reading it fails with a real EISDIR from the kernel, the same code path as any other
 * error the state store cannot handle (EACCES for a service user included; that message is
 * covered in fs-diagnosis.test.ts with a real EACCES from an unprivileged child process).
 */
let tb: Testbed;

const CERTS = ['alpha', 'bravo', 'charlie'].map((name) => ({
  name,
  domains: [`${name}.example.test`],
  dns: { provider: 'bind' },
}));

beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

interface JsonReport {
  ok: boolean;
  certificates: { name: string; status: string; error: string | null; errorCode: string | null }[];
}

test('an unreadable state file fails that certificate alone; the others renew; exit code 1', async () => {
  const config = await tb.writeConfig(CERTS);
  const stateFile = path.join(tb.dir, 'state', 'state', 'bravo.json');
  await mkdir(stateFile, { recursive: true, mode: 0o700 }); // a state directory others can read is refused

  const res = await runCli(['renew', '--config', config, '--json', '--log-format', 'json']);

  expect(res.stderr).not.toMatch(/unexpected error/);
  expect(res.code).toBe(1);
  const report = JSON.parse(res.stdout) as JsonReport;
  expect(report.ok).toBe(false);
  expect(report.certificates.map((c) => [c.name, c.status])).toEqual([
    ['alpha', 'renewed'],
    ['bravo', 'failed'],
    ['charlie', 'renewed'],
  ]);
  const bravo = report.certificates[1]!;
  expect(bravo.error).toBe(
    `state file ${stateFile} is a directory, not a file: move it aside (mv ${stateFile} ${stateFile}.bad) and run again`,
  );
  expect(bravo.errorCode).toBe('STORE_IO');
  for (const name of ['alpha', 'charlie']) {
    const pem = await readFile(path.join(tb.dir, 'state', 'certs', name, 'cert.pem'), 'utf8');
    expect(new X509Certificate(pem).subjectAltName).toBe(`DNS:${name}.example.test`);
  }
  await expect(stat(path.join(tb.dir, 'state', 'certs', 'bravo'))).rejects.toMatchObject({ code: 'ENOENT' });

  // The fix the message gives works: the next run renews bravo and succeeds.
  await rename(stateFile, `${stateFile}.bad`);
  const again = await runCli(['renew', '--config', config, '--json']);
  expect(again.code).toBe(0);
  expect((JSON.parse(again.stdout) as JsonReport).certificates.map((c) => c.status)).toEqual([
    'valid',
    'renewed',
    'valid',
  ]);
}, 120_000);

test('a name outside every provider zone fails that certificate alone, before any order; the others renew', async () => {
  const stateDir = path.join(tb.dir, 'state-zones');
  const loaded = await loadConfig({
    path: await tb.writeConfig(CERTS, { storage: { stateDir } }),
    env: {},
  });
  // The provider may write example.test only; bravo's name is elsewhere. (Built from a loaded
  // configuration: whether the loader itself still refuses such a file is the loader's matter.)
  const bind = loaded.dns.providers.bind!;
  const config: AgentConfig = {
    ...loaded,
    dns: { ...loaded.dns, providers: { bind: { ...bind, zones: ['example.test'] } } },
    certificates: loaded.certificates.map((c) =>
      c.name === 'bravo' ? { ...c, domains: ['bravo.elsewhere.test'] } : c,
    ),
  };
  const log = memoryLogger();
  const report = await runRenew(
    config,
    {},
    {
      log,
      clock: systemClock,
      openAcme: () => AcmeService.open(config.acme, stateDir, log),
      openSolver: () => new Dns01Solver({ dns: config.dns, log }),
      certificateProblems: certificateProblems(config),
    },
  );
  expect(report.ok).toBe(false);
  expect(report.outcomes.map((o) => [o.name, o.status])).toEqual([
    ['alpha', 'renewed'],
    ['bravo', 'failed'],
    ['charlie', 'renewed'],
  ]);
  expect(report.outcomes[1]).toMatchObject({
    errorCode: 'CONFIG_INVALID',
    error:
      'configuration: "bravo.elsewhere.test" is outside the zones of provider instance "bind" (example.test)',
  });
  const orders = log.records.filter((r) => r.message === 'order created').map((r) => r.meta.cert);
  expect(orders.sort()).toEqual(['alpha', 'charlie']);
}, 120_000);
