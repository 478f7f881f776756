import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { installNotDueCertificates } from '../../bench/bench-util';
import { acquireLock } from '../../src/store/lock';
import { runCli } from '../helpers/testbed';

/**
 * `certpilot certificates` and `certpilot delete` through the CLI's own entry point, on a state
 * directory holding three installed certificates (c0, c1, c2) of which the config names two.
 * A TCP listener stands in for the CA and the DNS server: listing must contact neither.
 */
let dir: string;
let stateDir: string;
let config: string;
let server: net.Server;
let connections = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-lifecycle-'));
  server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  stateDir = path.join(dir, 'state');
  await installNotDueCertificates(stateDir, 3);
  await mkdir(path.join(stateDir, 'deploy'), { mode: 0o700 });
  await writeFile(
    path.join(stateDir, 'deploy', 'c2.json'),
    JSON.stringify({
      serial: 'AB',
      fingerprint: 'CD',
      status: 'verified',
      updatedAt: new Date().toISOString(),
      endpoints: { 'www.example.test:443': { status: 'verified' } },
      attempts: 1,
    }),
    { mode: 0o600 },
  );
  const secret = path.join(dir, 'tsig.secret');
  await writeFile(secret, 'c2VjcmV0LXNlY3JldA==\n', { mode: 0o600 });
  config = path.join(dir, 'certpilot.yaml');
  await writeFile(
    config,
    stringify({
      acme: { directory: `https://127.0.0.1:${port}/directory`, termsAgreed: true },
      storage: { stateDir },
      dns: {
        resolvers: [`127.0.0.1:${port}`],
        nameserverPort: port,
        providers: {
          bind: { type: 'rfc2136', server: '127.0.0.1', port, tsigKeyName: 'k', tsigSecret_file: secret },
        },
      },
      certificates: [
        { name: 'c0', domains: ['c0.example.test'], keyType: 'ec-p256' },
        { name: 'c1', domains: ['c1.example.test', 'www.c1.example.test'] },
      ],
    }),
  );
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

interface Row {
  name: string;
  configured: boolean;
  domains: string[];
  status: string;
  reason: string | null;
  notAfter: string | null;
  serial: string | null;
  deploy: { status: string; endpoints: Record<string, string> } | null;
}

test('certificates lists configured and stored-only certificates with their plan, contacting nothing', async () => {
  const r = await runCli(['certificates', '--config', config, '--json', '--log-level', 'warn']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const rows = (JSON.parse(r.stdout) as { certificates: Row[] }).certificates;
  expect(rows.map((x) => [x.name, x.configured, x.status])).toEqual([
    ['c0', true, 'valid'],
    // c1 is configured with a second name the stored certificate lacks: it is due
    ['c1', true, 'due'],
    ['c2', false, 'unconfigured'],
  ]);
  expect(rows[0]!.reason).toBe('valid');
  expect(rows[1]!.reason).toBe('names-changed');
  expect(rows[2]!.domains).toEqual(['c2.example.test']);
  expect(new Date(rows[2]!.notAfter!).getTime()).toBeGreaterThan(Date.now());
  expect(rows[2]!.serial).toMatch(/^[0-9A-F]+$/);
  expect(rows[2]!.deploy).toEqual({
    status: 'verified',
    serial: 'AB',
    endpoints: { 'www.example.test:443': 'verified' },
  });
  expect(connections).toBe(0);

  const text = await runCli(['certificates', 'c2', '--config', config, '--log-level', 'warn']);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain('c2  unconfigured (stored, not configured)');
  expect(text.stdout).toContain('deploy:    verified (serial AB): www.example.test:443 verified');
  expect(text.stdout).not.toContain('c0');

  const unknown = await runCli(['certificates', 'nope', '--config', config]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no certificate named "nope"');
  expect(connections).toBe(0);
});

test('delete refuses a configured certificate, a locked one and an unknown one, and changes nothing', async () => {
  const before = await readdir(path.join(stateDir, 'certs'));
  const configured = await runCli(['delete', 'c0', '--config', config]);
  expect(configured.code).toBe(2);
  expect(configured.stderr).toContain('"c0" is still configured; remove it from certificates[]');

  const unknown = await runCli(['delete', 'nope', '--config', config]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no stored certificate named "nope"');

  const lock = await acquireLock(stateDir, 'c2', { wait: false, purpose: 'test' });
  try {
    const locked = await runCli(['delete', 'c2', '--config', config]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain('"c2" is locked by a running certpilot');
  } finally {
    await lock!.release();
  }
  expect(await readdir(path.join(stateDir, 'certs'))).toEqual(before);
});

test('delete archives the live version first, then removes it from the store and its deploy state', async () => {
  const key = await readFile(path.join(stateDir, 'certs', 'c2', 'privkey.pem'), 'utf8');
  const r = await runCli(['delete', 'c2', '--config', config, '--json', '--log-level', 'warn']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { deleted: string; archived: string };
  expect(out.deleted).toBe('c2');
  expect(path.dirname(out.archived)).toBe(path.join(stateDir, 'archive', 'c2'));
  // the archived copy is the whole pair, the key still private
  expect(await readFile(path.join(out.archived, 'privkey.pem'), 'utf8')).toBe(key);
  expect((await stat(path.join(out.archived, 'privkey.pem'))).mode & 0o077).toBe(0);
  expect(await readdir(path.join(stateDir, 'certs'))).toEqual(['c0', 'c1']);
  await expect(stat(path.join(stateDir, 'deploy', 'c2.json'))).rejects.toMatchObject({ code: 'ENOENT' });

  const list = await runCli(['certificates', '--config', config, '--json', '--log-level', 'warn']);
  expect((JSON.parse(list.stdout) as { certificates: Row[] }).certificates.map((x) => x.name)).toEqual([
    'c0',
    'c1',
  ]);
  expect(connections).toBe(0);
});
