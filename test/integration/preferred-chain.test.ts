import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BIN, runProgram } from '../helpers/daemon-child';
import { httpsGet } from '../helpers/pebble';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * `acme.preferredChain` against Pebble with one alternate root (PEBBLE_ALTERNATE_ROOTS=1): the
 * certificate is the same, the chain ends at the root whose common name was asked for; a name
 * no chain has keeps the CA's default chain and says so in a warning.
 */
let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed({ pebble: { env: { PEBBLE_ALTERNATE_ROOTS: '1' } } });
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

async function rootCn(n: number): Promise<string> {
  const pem = await httpsGet(`${tb.pebble.managementUrl}/roots/${n}`, tb.pebble.tlsCaPem);
  return /CN=(.*)/.exec(new X509Certificate(pem).subject)![1]!;
}

/** Issuer CN of the last certificate of the stored chain (the intermediate, signed by a root). */
async function chainTop(name: string, stateDir: string): Promise<string> {
  const chain = await readFile(path.join(stateDir, 'certs', name, 'chain.pem'), 'utf8');
  const blocks = chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
  return /CN=(.*)/.exec(new X509Certificate(blocks[blocks.length - 1]!).issuer)![1]!;
}

/**
 * `process`: the built CLI as its own process. In Jest's module registry acme-client always
 * loads whole; a real process loads its Client alone (src/acme/acme-client-loader.ts), whose
 * chain choice reads issuers with certpilot's own helper.
 */
async function issue(
  name: string,
  preferredChain: string | undefined,
  how: 'in-process' | 'process' = 'in-process',
): Promise<{ stderr: string; top: string }> {
  const stateDir = path.join(tb.dir, `state-${name}`);
  const config = await tb.writeConfig(
    [{ name, domains: [`${name}.example.test`], dns: { provider: 'bind' } }],
    {
      acme: {
        directory: tb.pebble.directoryUrl,
        caBundle: tb.pebble.tlsCaPath,
        termsAgreed: true,
        requestTimeout: '10s',
        ...(preferredChain ? { preferredChain } : {}),
      },
      storage: { stateDir },
    },
  );
  const argv = ['renew', '--config', config, '--log-level', 'warn'];
  const r = how === 'process' ? await runProgram(process.execPath, [BIN, ...argv]) : await runCli(argv);
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
  return { stderr: r.stderr, top: await chainTop(name, stateDir) };
}

test('the default chain ends at the first root; preferredChain picks the alternate one', async () => {
  const [first, alternate] = [await rootCn(0), await rootCn(1)];
  expect(first).not.toBe(alternate);
  expect((await issue('plain', undefined)).top).toBe(first);
  const preferred = await issue('alt', alternate);
  expect(preferred.top).toBe(alternate);
  expect(preferred.stderr).toBe('');
}, 120_000);

test('a preferred issuer no chain has: the default chain, with a warning', async () => {
  const r = await issue('nomatch', 'No Such Root CA');
  expect(r.top).toBe(await rootCn(0));
  expect(r.stderr).toContain('no chain from the CA has the preferred issuer; using its default chain');
}, 120_000);

test('the same in a real process, where acme-client loads without its own crypto module', async () => {
  const alternate = await rootCn(1);
  const preferred = await issue('alt-process', alternate, 'process');
  expect(preferred.top).toBe(alternate);
  expect(preferred.stderr).toBe('');
  const nomatch = await issue('nomatch-process', 'No Such Root CA', 'process');
  expect(nomatch.top).toBe(await rootCn(0));
}, 120_000);
