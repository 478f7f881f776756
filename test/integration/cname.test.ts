import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestbed, runCli, type Testbed } from '../helpers/testbed';

/**
 * CNAME delegation (acme-dns style): `_acme-challenge.www.example.test` is a CNAME to a name
 * in another zone; the TXT goes there, through the provider allowed to write that zone. Pebble
 * validates through a real recursive resolver (unbound) that follows the CNAME.
 */
let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed({
    recursive: true,
    zones: [
      { name: 'example.test', records: ['_acme-challenge.www IN CNAME www.delegate.test.'] },
      { name: 'delegate.test' },
    ],
  });
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

function logs(stderr: string): { message: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { message: string });
}

test('issues through a CNAME to another zone, written by the provider for that zone', async () => {
  const config = await tb.writeConfig(
    [{ name: 'www', domains: ['www.example.test'], dns: { provider: 'main' } }],
    {},
    {
      main: tb.bindProvider({ zones: ['example.test'] }),
      delegate: tb.bindProvider({ zones: ['delegate.test'] }),
    },
  );
  const res = await runCli(['renew', '--config', config, '--log-format', 'json']);
  expect(res.stdout).toMatch(/^www\s+renewed/m);
  expect(res.code).toBe(0);
  const delegated = logs(res.stderr).find((l) => l.message === 'challenge delegated by CNAME');
  expect(delegated).toMatchObject({
    from: '_acme-challenge.www.example.test',
    to: 'www.delegate.test',
    zone: 'delegate.test',
    provider: 'delegate',
  });
  const cert = new X509Certificate(await readFile(path.join(tb.dir, 'state', 'certs', 'www', 'cert.pem')));
  expect(cert.subjectAltName).toBe('DNS:www.example.test');
  expect(await tb.bind.queryTxt('www.delegate.test')).toEqual([]);
});

test('preflight fails before any order when no provider may write the CNAME target', async () => {
  const config = await tb.writeConfig(
    [{ name: 'www', domains: ['www.example.test'], dns: { provider: 'main' } }],
    { storage: { stateDir: path.join(tb.dir, 'state-preflight') } },
    { main: tb.bindProvider({ zones: ['example.test'] }) },
  );
  const res = await runCli(['renew', '--config', config, '--log-format', 'json']);
  expect(res.code).toBe(1);
  expect(res.stdout).toMatch(
    /^www\s+failed .*error: dns: no DNS provider may write zone delegate\.test \(_acme-challenge\.www\.example\.test is a CNAME to www\.delegate\.test\)/m,
  );
  const messages = logs(res.stderr).map((l) => l.message);
  expect(messages).not.toContain('order created');
  // Nothing was asked of the CA: not even an account was registered for this state dir.
  expect(messages).not.toContain('acme account registered');
});
