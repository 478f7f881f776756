import { spawn } from 'node:child_process';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint } from '../../src/core/checkpoints';
import { httpsGet } from '../helpers/pebble';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * `certpilot revoke` and `certpilot account` against a real Pebble and BIND. Revocation is
 * checked at the CA (Pebble's management interface, cert-status-by-serial); the key rollover
 * is followed by a renewal with the new key and a refused request with the old one, and is
 * killed (SIGKILL, through the test preload) on each side of the moment the CA learns the new
 * key, after which the account must still work.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const FAULT_PRELOAD = path.join(__dirname, '..', 'helpers', 'fault-preload.js');
let tb: Testbed;
let config: string;

// One certificate per later renewal: forced re-orders of one name would meet the exact-set guard.
const CERTS = ['rv1', 'rv2', 'rv3', 'rv4', 'rv5', 'rv6', 'rv7'].map((name) => ({
  name,
  domains: [`${name}.example.test`],
  dns: { provider: 'bind' },
}));

beforeAll(async () => {
  tb = await startTestbed();
  config = await tb.writeConfig(CERTS);
  const r = await runCli(['renew', '--config', config, '--log-level', 'error']);
  expect(r.code).toBe(0);
}, 120_000);
afterAll(async () => {
  await tb?.stop();
});

const stateDir = (): string => path.join(tb.dir, 'state');

async function serialOf(name: string): Promise<string> {
  const r = await runCli(['certificates', name, '--config', config, '--json', '--log-level', 'error']);
  return (JSON.parse(r.stdout) as { certificates: { serial: string }[] }).certificates[0]!.serial;
}

async function statusAtCa(serial: string): Promise<string> {
  // Pebble keys certificates by the serial in lower-case hex.
  const body = await httpsGet(
    `${tb.pebble.managementUrl}/cert-status-by-serial/${serial.toLowerCase()}`,
    tb.pebble.tlsCaPem,
  );
  return (JSON.parse(body) as { Status: string }).Status;
}

async function accountDir(root = stateDir()): Promise<string> {
  const dirs = (await readdir(path.join(root, 'accounts'))).filter((d) => !d.includes('.deactivated-'));
  expect(dirs).toHaveLength(1);
  return path.join(root, 'accounts', dirs[0]!);
}

function runBin(
  args: string[],
  killAt?: Checkpoint,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', FAULT_PRELOAD, BIN, ...args], {
      env: { ...process.env, ...(killAt ? { CERTPILOT_TEST_KILL_AT: killAt } : {}) },
    });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('revoke with the account key: the CA reports the certificate revoked, and it is recorded', async () => {
  const serial = await serialOf('rv1');
  expect(await statusAtCa(serial)).toBe('Valid');
  const r = await runCli([
    'revoke',
    'rv1',
    '--reason',
    'superseded',
    '--config',
    config,
    '--log-level',
    'error',
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`revoked rv1 serial ${serial} (superseded)`);
  expect(await statusAtCa(serial)).toBe('Revoked');
  const record = JSON.parse(
    await readFile(path.join(stateDir(), 'revocations', 'rv1', `${serial}.json`), 'utf8'),
  ) as { reason: string; signedWith: string };
  expect(record).toMatchObject({ reason: 'superseded', signedWith: 'account key' });

  const bad = await runCli(['revoke', 'rv1', '--reason', 'because', '--config', config]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--reason must be one of unspecified, keyCompromise');
}, 60_000);

test("revoke --with-cert-key signs with the certificate's own key", async () => {
  const serial = await serialOf('rv2');
  const r = await runCli([
    'revoke',
    'rv2',
    '--with-cert-key',
    '--config',
    config,
    '--json',
    '--log-level',
    'error',
  ]);
  expect(r.code).toBe(0);
  expect((JSON.parse(r.stdout) as { revoked: { signedWith: string } }).revoked.signedWith).toBe(
    'certificate key',
  );
  expect(await statusAtCa(serial)).toBe('Revoked');
}, 60_000);

test('revoke --reason keyCompromise renews at once with a fresh key', async () => {
  const serial = await serialOf('rv3');
  const keyBefore = await readFile(path.join(stateDir(), 'certs', 'rv3', 'privkey.pem'), 'utf8');
  const r = await runCli([
    'revoke',
    'rv3',
    '--reason',
    'keyCompromise',
    '--config',
    config,
    '--json',
    '--log-level',
    'error',
  ]);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { renewed: { ok: boolean; serial: string } };
  expect(out.renewed.ok).toBe(true);
  expect(out.renewed.serial).not.toBe(serial);
  expect(await statusAtCa(serial)).toBe('Revoked');
  expect(await statusAtCa(out.renewed.serial)).toBe('Valid');
  expect(await readFile(path.join(stateDir(), 'certs', 'rv3', 'privkey.pem'), 'utf8')).not.toBe(keyBefore);
}, 60_000);

test('account show, then rollover: renewals work with the new key and the old key is refused', async () => {
  const show = await runCli(['account', 'show', '--config', config, '--json', '--log-level', 'error']);
  expect(show.code).toBe(0);
  const shown = JSON.parse(show.stdout) as { url: string; account: { status: string } };
  expect(shown.account.status).toBe('valid');

  const dir = await accountDir();
  const oldKey = await readFile(path.join(dir, 'account.key'), 'utf8');
  // A copy of the state as it was, still holding the old key.
  const oldState = path.join(tb.dir, 'old-state');
  await cp(stateDir(), oldState, { recursive: true });

  const r = await runCli(['account', 'rollover', '--config', config, '--json', '--log-level', 'error']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect((JSON.parse(r.stdout) as { url: string }).url).toBe(shown.url);
  expect(await readFile(path.join(dir, 'account.key'), 'utf8')).not.toBe(oldKey);
  expect(await readdir(dir)).not.toContain('account.key.next');

  const renew = await runCli(['renew', 'rv4', '--force', '--config', config, '--log-level', 'error']);
  expect(renew.code).toBe(0);

  const oldConfig = await tb.writeConfig(CERTS, { storage: { stateDir: oldState } });
  const refused = await runCli(['account', 'show', '--config', oldConfig, '--log-level', 'error']);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/account show: .*(unauthorized|accountDoesNotExist|HTTP 4\d\d)/);
}, 120_000);

test.each<[Checkpoint, 'old' | 'new', string]>([
  ['account-key-written', 'old', 'rv5'],
  ['account-key-changed', 'new', 'rv6'],
])(
  'a rollover killed at %s leaves a usable account (the %s key)',
  async (point, kept, cert) => {
    const dir = await accountDir();
    const before = await readFile(path.join(dir, 'account.key'), 'utf8');
    const killed = await runBin(['account', 'rollover', '--config', config, '--log-level', 'error'], point);
    expect(killed.signal).toBe('SIGKILL');
    const next = await readFile(path.join(dir, 'account.key.next'), 'utf8');

    const show = await runBin(['account', 'show', '--config', config, '--log-level', 'warn']);
    expect(show.code).toBe(0);
    expect(show.stderr).toContain(kept === 'new' ? 'the new key is now in use' : 'never reached the CA');
    expect(await readFile(path.join(dir, 'account.key'), 'utf8')).toBe(kept === 'new' ? next : before);
    expect(await readdir(dir)).not.toContain('account.key.next');
    const renew = await runCli(['renew', cert, '--force', '--config', config, '--log-level', 'error']);
    expect(renew.code).toBe(0);
  },
  120_000,
);

test('account deactivate: refused without confirmation, then final at the CA; the next renew registers anew', async () => {
  const noTty = await runBin(['account', 'deactivate', '--config', config]);
  expect(noTty.code).toBe(2);
  expect(noTty.stderr).toContain('pass --yes to confirm');

  const dir = await accountDir();
  const r = await runCli([
    'account',
    'deactivate',
    '--yes',
    '--config',
    config,
    '--json',
    '--log-level',
    'error',
  ]);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { deactivated: string; movedTo: string };
  expect(out.movedTo.startsWith(`${dir}.deactivated-`)).toBe(true);
  // The moved-aside key is refused by the CA: the account is gone for good.
  const asideState = path.join(tb.dir, 'aside-state');
  await cp(stateDir(), asideState, { recursive: true });
  await rm(path.join(asideState, 'accounts'), { recursive: true });
  await cp(out.movedTo, path.join(asideState, 'accounts', path.basename(dir)), { recursive: true });
  const asideConfig = await tb.writeConfig(CERTS, { storage: { stateDir: asideState } });
  const refused = await runCli(['account', 'show', '--config', asideConfig, '--log-level', 'error']);
  expect(refused.code).toBe(1);

  const renew = await runCli(['renew', 'rv7', '--force', '--config', config, '--log-level', 'error']);
  expect(renew.code).toBe(0);
  const show = await runCli(['account', 'show', '--config', config, '--json', '--log-level', 'error']);
  expect((JSON.parse(show.stdout) as { url: string }).url).not.toBe(out.deactivated);
}, 120_000);
