import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startNginx, type Nginx } from '../helpers/nginx';
import { freePort } from '../helpers/ports';
import { BIN, get, runProgram, startDaemon } from '../helpers/daemon-child';

/**
 * Issue #13 item 1 against real processes: `certpilot run` (a child process) inspects what
 * `certpilot check` inspects (here a watched nginx endpoint and a watched file) and serves the
 * same series on /metrics as `check --prometheus` writes to its textfile; both pass
 * `promtool check metrics`, and after a restart /metrics is complete again after one cycle.
 */
const DAY_MS = 86_400_000;

let dir: string;
let nginx: Nginx;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-inventory-'));
  const ca = makeCa();
  const now = Date.now();
  const leaf = makeCertificate({
    names: ['inv.example.test'],
    issuer: ca,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 60 * DAY_MS),
  });
  fs.writeFileSync(path.join(dir, 'site.crt'), leaf.certPem + ca.certPem);
  fs.writeFileSync(path.join(dir, 'site.key'), leaf.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
  nginx = await startNginx({
    sites: [
      {
        serverName: 'inv.example.test',
        certPath: path.join(dir, 'site.crt'),
        keyPath: path.join(dir, 'site.key'),
      },
    ],
  });
}, 60_000);
afterAll(async () => {
  await nginx?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The inventory's series (the certificate and endpoint families), sorted, values included. */
function inventorySeries(exposition: string): string[] {
  return exposition
    .split('\n')
    .filter((l) => /^certpilot_(certificate_not_(after|before)|check_status|endpoint_[a-z_]+)\{/.test(l))
    .filter((l) => !l.includes('source="store"'))
    .sort();
}

test('run serves the same inventory series as check --prometheus, again within one cycle of a restart', async () => {
  const port = await freePort();
  const config = path.join(dir, 'certpilot.yaml');
  fs.writeFileSync(
    config,
    [
      'storage:',
      `  stateDir: ${path.join(dir, 'state')}`,
      'daemon:',
      `  listen: 127.0.0.1:${port}`,
      '  checkInterval: 10m',
      '  endpointInterval: 1h',
      'watch:',
      '  files:',
      `    - path: ${path.join(dir, 'site.crt')}`,
      '  endpoints:',
      '    - host: inv.example.test',
      `      port: ${nginx.ports[0]}`,
      '      connectAddress: 127.0.0.1',
      `      caBundle: ${path.join(dir, 'ca.pem')}`,
      '',
    ].join('\n'),
  );
  const textfile = path.join(dir, 'check.prom');
  const check = await runProgram(process.execPath, [
    BIN,
    'check',
    '--config',
    config,
    '--prometheus',
    textfile,
  ]);
  expect(check.code).toBe(0);
  const expected = inventorySeries(fs.readFileSync(textfile, 'utf8'));
  // A file row and an endpoint row, each with expiry and status; the endpoint with its probe.
  expect(expected.filter((l) => l.startsWith('certpilot_check_status{'))).toHaveLength(2);
  expect(expected.some((l) => l.startsWith('certpilot_endpoint_probe_success{') && l.endsWith(' 1'))).toBe(
    true,
  );

  for (const round of ['first start', 'restart']) {
    const d = startDaemon(config);
    try {
      await d.cycles(1);
      const metrics = await get(`http://127.0.0.1:${port}/metrics`);
      expect({ round, status: metrics.status }).toEqual({ round, status: 200 });
      expect({ round, series: inventorySeries(metrics.body) }).toEqual({ round, series: expected });
      expect(metrics.body).toMatch(/^certpilot_check_timestamp_seconds \d+$/m);
      const promtool = await runProgram('promtool', ['check', 'metrics'], metrics.body);
      expect({ round, code: promtool.code, problems: (promtool.stdout + promtool.stderr).trim() }).toEqual({
        round,
        code: 0,
        problems: '',
      });
    } finally {
      d.child.kill('SIGTERM');
    }
    expect(await d.exited).toBe(0);
  }
}, 120_000);
