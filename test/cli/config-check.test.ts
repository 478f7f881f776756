/* eslint-disable @typescript-eslint/no-explicit-any -- configurations are built as plain documents */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse } from 'yaml';
import { runCli } from '../helpers/testbed';
import { baseConfig, makeTempDir, removeDir, writeConfig, writeSecret, TSIG_SECRET } from '../config/helpers';

/**
 * `config check` finds every statically checkable problem, including those `renew` used to meet
 * only after registering an account or placing an order; `renew` stops at them with exit 2
 * before contacting anything.
 */

let dir: string;
/** Stands in for the CA: it must never see a connection. */
let ca: net.Server;
let connections = 0;

beforeAll(async () => {
  dir = makeTempDir();
  ca = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => ca.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => ca.close(resolve));
  removeDir(dir);
});

function config(stateDir: string): Record<string, any> {
  const c = baseConfig(dir);
  const { port } = ca.address() as net.AddressInfo;
  c.acme = { directory: `http://127.0.0.1:${port}/directory`, termsAgreed: true };
  c.storage.stateDir = stateDir;
  delete c.dns.providers.bind.tsigSecret;
  c.dns.providers.bind.tsigSecret_file = writeSecret(dir, TSIG_SECRET);
  c.certificates[0].outputs = [{ fullchain: path.join(dir, 'out', 'fullchain.pem') }];
  return c;
}

test('a valid file prints as YAML in its own keys, with a header', async () => {
  const file = writeConfig(dir, config(path.join(dir, 'state-valid')));
  const res = await runCli(['config', 'check', '--config', file]);
  expect(res).toMatchObject({ code: 0, stderr: '' });
  expect(res.stdout.startsWith(`# ${file}: valid\n`)).toBe(true);
  const doc = parse(res.stdout);
  expect(doc.acme.directory).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/directory$/);
  expect(doc.defaults.renewal.maxOrdersPerWeek).toBe(3);
  expect(doc.daemon).toEqual({
    checkInterval: '10m',
    listen: '127.0.0.1:9612',
    allowRemote: false,
    silentAfter: '36h',
    endpointInterval: '1h',
    readinessInterval: '24h',
    redeployBackoff: '5m',
  });
  expect(res.stdout).not.toContain(TSIG_SECRET);
});

test('termsAgreed false with no stored account: config check, renew and run exit 2, nothing contacted or written', async () => {
  const stateDir = path.join(dir, 'state-terms');
  const c = config(stateDir);
  c.acme.termsAgreed = false;
  const file = writeConfig(dir, c);
  for (const argv of [['config', 'check'], ['renew'], ['renew', '--force'], ['run']]) {
    const res = await runCli([...argv, '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('  acme.termsAgreed: must be true: no ACME account for http://127.0.0.1:');
  }
  expect(connections).toBe(0);
  expect(fs.existsSync(stateDir)).toBe(false);
  expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
});

test('a name outside its provider zones: config check reports it at its path (exit 2)', async () => {
  const c = config(path.join(dir, 'state-zones'));
  c.dns.providers.bind.zones = ['example.net'];
  const res = await runCli(['config', 'check', '--config', writeConfig(dir, c)]);
  expect(res.code).toBe(2);
  expect(res.stdout).toBe('');
  expect(res.stderr).toContain(
    '  certificates[0].domains[0]: "example.com" is outside the zones of provider instance "bind" (example.net)',
  );
});

test('a TSIG secret that is not base64 is a config check problem', async () => {
  const c = config(path.join(dir, 'state-tsig'));
  c.dns.providers.bind.tsigSecret_file = writeSecret(dir, 'not base64 at all!');
  const res = await runCli(['config', 'check', '--config', writeConfig(dir, c)]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain('  dns.providers.bind.tsigSecret: must be base64');
  expect(res.stderr).not.toContain('not base64 at all');
});

test('no configuration file: where the example is and `certpilot init`', async () => {
  const res = await runCli(['config', 'check', '--config', path.join(dir, 'missing.yaml')]);
  expect(res.code).toBe(2);
  expect(res.stderr).toContain('certpilot init');
  expect(res.stderr).toContain(path.join('config', 'certpilot.example.yaml'));
});
