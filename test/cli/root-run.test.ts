import { spawn } from 'node:child_process';
import {
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * The root-run trap: `certpilot renew --force` typed as root on a state directory that belongs
 * to the service user does its work as that user, so nothing in the directory ends up owned by
 * root and the service's next run still works. The service user here is `nobody` (65534), the
 * one unprivileged account every Debian system has. CI runs as root; so must this test.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const SERVICE = { uid: 65534, gid: 65534 };
let tb: Testbed;
let dir: string;

beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await tb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cli(
  args: string[],
  as?: { uid: number; gid: number },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

async function rootOwned(p: string): Promise<string[]> {
  const found: string[] = [];
  const st = await lstat(p);
  if (st.uid === 0 || st.gid === 0) found.push(p);
  if (st.isDirectory()) for (const e of await readdir(p)) found.push(...(await rootOwned(path.join(p, e))));
  return found;
}

test('renew --force as root on the service user state directory leaves nothing owned by root; the service user runs on', async () => {
  expect(process.getuid?.()).toBe(0); // precondition: CI runs the suite as root
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-rootrun-'));
  await chmod(dir, 0o755);
  // What the service user must read: the config, its TSIG secret (its own, 0600), the CA root.
  const secret = path.join(dir, 'tsig.secret');
  await writeFile(secret, tb.bind.tsig.secret + '\n', { mode: 0o600 });
  await chown(secret, SERVICE.uid, SERVICE.gid);
  const ca = path.join(dir, 'ca.pem');
  await copyFile(tb.pebble.tlsCaPath, ca);
  await chmod(ca, 0o644);
  const stateDir = path.join(dir, 'state');
  await mkdir(stateDir, { mode: 0o700 });
  await chown(stateDir, SERVICE.uid, SERVICE.gid);
  const doc = parse(
    await readFile(await tb.writeConfig([{ name: 'svc', domains: ['svc.example.test'] }]), 'utf8'),
  ) as {
    acme: Record<string, unknown>;
    storage: Record<string, unknown>;
    dns: { providers: { bind: Record<string, unknown> } };
  };
  doc.acme.caBundle = ca;
  doc.storage.stateDir = stateDir;
  doc.dns.providers.bind.tsigSecret_file = secret;
  const config = path.join(dir, 'certpilot.yaml');
  await writeFile(config, stringify(doc), { mode: 0o644 });

  const asRoot = await cli(['renew', '--force', '--config', config]);
  expect(asRoot.out).toMatch(/running as the owner of the state directory, not root/);
  expect(asRoot.code).toBe(0);
  expect(await rootOwned(stateDir)).toEqual([]);

  const asService = await cli(['renew', '--force', '--config', config], SERVICE);
  expect(asService.out).not.toMatch(/EACCES|EPERM/);
  expect(asService.code).toBe(0);
  expect(await rootOwned(stateDir)).toEqual([]);
}, 90_000);
