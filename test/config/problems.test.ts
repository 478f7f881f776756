/* eslint-disable @typescript-eslint/no-explicit-any -- tests build deliberately ill-typed configurations */
import fs from 'node:fs';
import path from 'node:path';
import { accountDir } from '../../src/acme/account';
import { ConfigError } from '../../src/core/errors';
import { accountIssues, assertReadyToRenew } from '../../src/cli/account-preflight';
import { certificateIssues, certificateProblems } from '../../src/config/problems';
import { baseConfig, load, makeTempDir, removeDir, writeConfig } from './helpers';

/**
 * Problems of one certificate do not make the configuration invalid (renew fails only that
 * certificate); problems that need the state directory are found without writing to it.
 */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

function twoCertificates(): Record<string, any> {
  const c = baseConfig(dir);
  c.certificates.push({
    name: 'api',
    domains: ['api.example.net'],
    outputs: [{ fullchain: '/etc/ssl/api/fullchain.pem' }],
  });
  return c;
}

describe('certificate problems: loaded, then reported per certificate', () => {
  test('a name outside every zone fails that certificate only', async () => {
    const c = twoCertificates();
    c.dns.providers.bind.zones = ['example.com'];
    const config = await load(writeConfig(dir, c));
    expect(config.certificates.map((s) => s.name)).toEqual(['www', 'api']);
    expect(certificateProblems(config)).toEqual(
      new Map([
        ['api', ['"api.example.net" is outside the zones of provider instance "bind" (example.com)']],
      ]),
    );
    expect(certificateIssues(config).map((i) => i.path)).toEqual(['certificates[1].domains[0]']);
  });

  test('two instances and no choice: every certificate without dns.provider', async () => {
    const c = twoCertificates();
    c.dns.providers.second = { ...c.dns.providers.bind };
    c.certificates[1].dns = { provider: 'second' };
    const config = await load(writeConfig(dir, c));
    expect([...certificateProblems(config).keys()]).toEqual(['www']);
    expect(certificateProblems(config).get('www')).toEqual([
      'no DNS provider for example.com, *.example.com: set dns.provider or dns.domains on this certificate',
    ]);
    expect(certificateIssues(config)[0].path).toBe('certificates[0].dns.provider');
  });

  test('no instance configured at all says so', async () => {
    const c = baseConfig(dir);
    delete c.dns.providers;
    const config = await load(writeConfig(dir, c));
    expect(certificateProblems(config).get('www')?.[0]).toMatch(/configure an instance under dns.providers$/);
  });

  test('per-domain providers cover what the default does not', async () => {
    const c = twoCertificates();
    c.dns.providers.bind.zones = ['example.com'];
    c.dns.providers.other = { ...c.dns.providers.bind, zones: ['example.net'] };
    c.certificates[0].dns = { provider: 'bind' };
    c.certificates[1].dns = { domains: { 'api.example.net': 'other' } };
    const config = await load(writeConfig(dir, c));
    expect(certificateProblems(config).size).toBe(0);
  });
});

describe('terms of service without a stored account', () => {
  async function configWith(termsAgreed: boolean, stateDir: string): Promise<any> {
    const c = baseConfig(dir);
    c.acme.termsAgreed = termsAgreed;
    c.storage.stateDir = stateDir;
    return load(writeConfig(dir, c));
  }

  test('no account and termsAgreed false: a problem at acme.termsAgreed, nothing written', async () => {
    const stateDir = path.join(dir, 'fresh-state');
    const config = await configWith(false, stateDir);
    expect((await accountIssues(config)).map((i) => i.path)).toEqual(['acme.termsAgreed']);
    await expect(assertReadyToRenew(config)).rejects.toBeInstanceOf(ConfigError);
    expect(fs.existsSync(stateDir)).toBe(false);
  });

  test('an account key alone (registration never finished) still needs the terms', async () => {
    const stateDir = path.join(dir, 'key-only');
    const config = await configWith(false, stateDir);
    const account = accountDir(stateDir, config.acme.directoryUrl);
    fs.mkdirSync(account, { recursive: true });
    fs.writeFileSync(path.join(account, 'account.key'), 'key');
    expect(await accountIssues(config)).toHaveLength(1);
  });

  test('a registered account needs no agreement again', async () => {
    const stateDir = path.join(dir, 'registered');
    const config = await configWith(false, stateDir);
    const account = accountDir(stateDir, config.acme.directoryUrl);
    fs.mkdirSync(account, { recursive: true });
    fs.writeFileSync(path.join(account, 'account.json'), JSON.stringify({ url: 'https://ca/acct/1' }));
    expect(await accountIssues(config)).toEqual([]);
    await expect(assertReadyToRenew(config)).resolves.toBeUndefined();
  });

  test('termsAgreed true: nothing to check', async () => {
    expect(await accountIssues(await configWith(true, path.join(dir, 'none')))).toEqual([]);
  });
});
