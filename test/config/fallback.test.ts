import { accountIssues } from '../../src/cli/account-preflight';
import { ACME_DIRECTORY_PRESETS } from '../../src/config/formats';
import {
  baseConfig,
  EAB_HMAC,
  load,
  loadError,
  makeTempDir,
  removeDir,
  writeConfig,
  writeSecret,
} from './helpers';

/** `acme.fallback`: each entry parsed with the primary's value parsers, problems at their own paths. */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

function withFallback(fallback: unknown): Record<string, unknown> {
  const c = baseConfig(dir);
  c.acme.requestTimeout = '40s';
  c.acme.fallback = fallback;
  return c;
}

test('entries in order; email and requestTimeout inherited, terms and EAB not', async () => {
  const config = await load(
    writeConfig(
      dir,
      withFallback([
        {
          directory: 'https://ca2.example.org/acme',
          termsAgreed: true,
          caaIdentities: ['CA2.example.org'],
          eab: { keyId: 'kid-2', hmacKey_file: writeSecret(dir, EAB_HMAC) },
        },
        { directory: 'buypass', email: 'other@example.com', requestTimeout: '5s' },
      ]),
    ),
  );
  expect(config.acme.fallback).toEqual([
    {
      directoryUrl: 'https://ca2.example.org/acme',
      email: 'ops@example.com',
      termsAgreed: true,
      caaIdentities: ['ca2.example.org'],
      eab: { keyId: 'kid-2', hmacKey: EAB_HMAC, hmacKeyOrigin: { file: expect.any(String) } },
      requestTimeoutMs: 40_000,
    },
    {
      directoryUrl: ACME_DIRECTORY_PRESETS.buypass,
      email: 'other@example.com',
      termsAgreed: false,
      requestTimeoutMs: 5_000,
    },
  ]);
});

test('no acme.fallback: none in the settings', async () => {
  expect((await load(writeConfig(dir, baseConfig(dir)))).acme.fallback).toBeUndefined();
});

test('every problem at its path: acme.fallback[i].<key>', async () => {
  const err = await loadError(
    writeConfig(
      dir,
      withFallback([
        { email: 'not-an-address', colour: 'blue' },
        { directory: 'http://ca.example.org/dir', requestTimeout: '10ms' },
        { directory: 'https://ca3.example.org/dir', eab: { keyId: 'kid' }, caaIdentities: ['bad id!'] },
        'letsencrypt',
      ]),
    ),
  );
  const at = (p: string): string | undefined => err.issues.find((i) => i.path === p)?.message;
  expect(at('acme.fallback[0].directory')).toMatch(/required/);
  expect(at('acme.fallback[0].email')).toBeDefined();
  expect(at('acme.fallback[0].colour')).toMatch(/unknown key/);
  expect(at('acme.fallback[1].directory')).toMatch(/https/);
  expect(at('acme.fallback[1].requestTimeout')).toMatch(/at least 1s/);
  expect(at('acme.fallback[2].eab.hmacKey')).toMatch(/required/);
  expect(at('acme.fallback[2].caaIdentities[0]')).toMatch(/domain name/);
  expect(at('acme.fallback[3]')).toMatch(/must be a mapping/);
});

test('the primary or an earlier entry again is refused, and so is an EAB CA without EAB', async () => {
  const err = await loadError(
    writeConfig(
      dir,
      withFallback([
        { directory: 'letsencrypt-staging' },
        { directory: 'https://ca2.example.org/acme' },
        { directory: 'https://ca2.example.org/acme' },
        { directory: 'zerossl', termsAgreed: true },
      ]),
    ),
  );
  expect(err.issues.map((i) => `${i.path}: ${i.message}`).sort()).toEqual([
    `acme.fallback[0].directory: ${ACME_DIRECTORY_PRESETS['letsencrypt-staging']} is already configured above`,
    'acme.fallback[2].directory: https://ca2.example.org/acme is already configured above',
    'acme.fallback[3].eab: zerossl requires External Account Binding: set acme.fallback[3].eab.keyId and hmacKey',
  ]);
});

test('an inline HMAC key is a secret: never in an error', async () => {
  const err = await loadError(
    writeConfig(dir, withFallback([{ directory: 'zerossl', eab: { hmacKey: 'not base64 !!' } }])),
  );
  expect(err.issues.map((i) => i.path)).toContain('acme.fallback[0].eab.keyId');
  expect(JSON.stringify(err.issues)).not.toContain('not base64');
});

test('a fallback CA whose terms are not agreed and that has no account: stopped before anything runs', async () => {
  const config = await load(
    writeConfig(
      dir,
      withFallback([
        { directory: 'https://ca2.example.org/acme' },
        { directory: 'buypass', termsAgreed: true },
      ]),
    ),
  );
  expect(await accountIssues(config)).toEqual([
    {
      path: 'acme.fallback[0].termsAgreed',
      message: expect.stringContaining('https://ca2.example.org/acme'),
    },
  ]);
});
