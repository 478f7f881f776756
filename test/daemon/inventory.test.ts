import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startNginx, type Nginx } from '../helpers/nginx';
import { freePort } from '../helpers/ports';

/**
 * Issue #13 item 1 against real processes: `certpilot run` (a child process) inspects what
 * `certpilot check` inspects (here a watched nginx endpoint and a watched file) and serves the
 * same series on /metrics as `check --prometheus` writes to its textfile; both pass
 * `promtool check metrics`, and after a restart /metrics is complete again after one cycle.
 */
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'certpilot.js');
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

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProgram(file: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .once('error', reject);
  });
}

/** The daemon as a child process; `cycles(n)` resolves once n cycles ended (from its JSON log). */
function startDaemon(config: string): {
  child: ChildProcess;
  cycles: (n: number) => Promise<void>;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [
    BIN,
    'run',
    '--config',
    config,
    '--log-format',
    'json',
    '--log-level',
    'debug',
  ]);
  let log = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  const count = (): number => log.split('"message":"check cycle done"').length - 1;
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
    for (const w of [...waiters]) if (count() >= w.n) w.resolve();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    cycles: (n) =>
      new Promise((resolve, reject) => {
        if (count() >= n) return resolve();
        waiters.push({ n, resolve });
        void exited.then((code) => reject(new Error(`daemon exited (${code}) before ${n} cycles:\n${log}`)));
      }),
  };
}

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
