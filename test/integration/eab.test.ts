import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestbed, runCli, type Testbed } from '../helpers/testbed';

/**
 * External Account Binding end to end against Pebble in its EAB mode
 * (externalAccountBindingRequired, one key id with its HMAC key): no binding and a wrong key
 * are refused with an error that names `acme.eab`, and register no account; the right key
 * creates the account and the certificate is issued.
 */
let tb: Testbed;
const KID = 'kid-1';
const HMAC = randomBytes(32).toString('base64url');

beforeAll(async () => {
  tb = await startTestbed({ pebble: { eabKeys: { [KID]: HMAC } } });
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

const CERTS = [{ name: 'eab', domains: ['eab.example.test'], dns: { provider: 'bind' } }];

/** Each case in its own state directory: a failure's backoff must not hold the next case back. */
async function configWith(eab: Record<string, unknown> | undefined, state: string): Promise<string> {
  const acme: Record<string, unknown> = {
    directory: tb.pebble.directoryUrl,
    caBundle: tb.pebble.tlsCaPath,
    termsAgreed: true,
    email: 'ops@example.test',
    requestTimeout: '10s',
    ...(eab ? { eab } : {}),
  };
  return tb.writeConfig(CERTS, { acme, storage: { stateDir: path.join(tb.dir, state) } });
}

/** Registered accounts (account.json beside the key; the key alone is kept for the next try). */
async function accounts(state: string): Promise<string[]> {
  const root = path.join(tb.dir, state, 'accounts');
  const dirs = await readdir(root).catch(() => [] as string[]);
  const registered: string[] = [];
  for (const d of dirs) if ((await readdir(path.join(root, d))).includes('account.json')) registered.push(d);
  return registered;
}

test('a CA that requires EAB: no binding is an error naming acme.eab, and no account is registered', async () => {
  const r = await runCli(['renew', '--config', await configWith(undefined, 'none'), '--log-level', 'error']);
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/eab +failed/);
  expect(r.stdout + r.stderr).toContain('acme.eab');
  expect(await accounts('none')).toEqual([]);
}, 60_000);

test('a wrong HMAC key is an error naming acme.eab, and no account is registered', async () => {
  const wrong = path.join(tb.dir, 'wrong.hmac');
  await writeFile(wrong, randomBytes(32).toString('base64url') + '\n', { mode: 0o600 });
  const r = await runCli([
    'renew',
    '--config',
    await configWith({ keyId: KID, hmacKey_file: wrong }, 'wrong'),
    '--log-level',
    'error',
  ]);
  expect(r.code).toBe(1);
  expect(r.stdout + r.stderr).toContain('acme.eab');
  expect(r.stdout + r.stderr).not.toContain(HMAC);
  expect(await accounts('wrong')).toEqual([]);
}, 60_000);

test('the right key id and HMAC key create the account and issue the certificate', async () => {
  const right = path.join(tb.dir, 'right.hmac');
  await writeFile(right, HMAC + '\n', { mode: 0o600 });
  const r = await runCli([
    'renew',
    '--config',
    await configWith({ keyId: KID, hmacKey_file: right }, 'right'),
    '--json',
    '--log-level',
    'error',
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const report = JSON.parse(r.stdout) as { certificates: { name: string; status: string }[] };
  expect(report.certificates).toEqual([expect.objectContaining({ name: 'eab', status: 'renewed' })]);
  expect((await accounts('right')).length).toBeGreaterThan(0);
}, 60_000);
