import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readCertbot } from '../../src/import/certbot';
import { readLego } from '../../src/import/lego';
import { planImport, type PlanInput } from '../../src/import/plan';
import type { ImportSource } from '../../src/import/types';
import { parseCertificate } from '../../src/x509';
import { makeCa, makeCertificate } from '../helpers/certs';

/**
 * The mappings certbot's and lego's real runs cannot produce here (test/import/import.test.ts
 * covers rfc2136 end to end): Cloudflare, Route 53, other authenticators, hooks, and the plan's
 * rules for accounts, stored certificates and provider names. The layouts follow what certbot
 * 2.1 and lego 4.9 write (file names, renewal configuration keys, JSON fields).
 */
let dir: string;
const ca = makeCa();
const DIRECTORY = 'https://acme.example.net/directory';
const ACCOUNT_URL = 'https://acme.example.net/acct/7';

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-import-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function issue(names: string[], keyType: 'ec-p256' | 'rsa-2048' = 'ec-p256') {
  const now = Date.now();
  return makeCertificate({
    names,
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 60 * 86_400_000),
    keyType,
    issuer: ca,
  });
}

/** A certbot --config-dir with one lineage and its account. */
async function certbotLayout(lineage: string, params: string[]): Promise<string> {
  const root = path.join(dir, 'letsencrypt');
  const live = path.join(root, 'live', lineage);
  await mkdir(live, { recursive: true });
  await mkdir(path.join(root, 'renewal'), { recursive: true });
  const pair = issue([lineage]);
  await writeFile(path.join(live, 'cert.pem'), pair.certPem);
  await writeFile(path.join(live, 'chain.pem'), ca.certPem);
  await writeFile(path.join(live, 'fullchain.pem'), pair.certPem + ca.certPem);
  await writeFile(path.join(live, 'privkey.pem'), pair.keyPem);
  const conf = [
    'version = 2.1.0',
    `cert = ${live}/cert.pem`,
    `privkey = ${live}/privkey.pem`,
    `chain = ${live}/chain.pem`,
    `fullchain = ${live}/fullchain.pem`,
    '',
    '[renewalparams]',
    'account = 0123abcd',
    `server = ${DIRECTORY}`,
    ...params,
  ];
  await writeFile(path.join(root, 'renewal', `${lineage}.conf`), conf.join('\n') + '\n');
  const acct = path.join(root, 'accounts', 'acme.example.net', 'directory', '0123abcd');
  await mkdir(acct, { recursive: true });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { kty: _kty, ...jwk } = privateKey.export({ format: 'jwk' });
  await writeFile(path.join(acct, 'private_key.json'), JSON.stringify(jwk));
  await writeFile(path.join(acct, 'regr.json'), JSON.stringify({ body: {}, uri: ACCOUNT_URL }));
  await writeFile(path.join(acct, 'meta.json'), JSON.stringify({ creation_dt: '2025-01-02T03:04:05Z' }));
  return root;
}

function planInput(source: ImportSource, over: Partial<PlanInput> = {}): PlanInput {
  return {
    source,
    directoryUrl: DIRECTORY,
    configPath: path.join(dir, 'etc', 'certpilot.yaml'),
    existingAccount: null,
    stored: new Map(),
    force: false,
    ...over,
  };
}

describe('certbot', () => {
  test('cloudflare token, reuse_key, pre/post/deploy hooks; renewal-hooks programs are noted', async () => {
    const creds = path.join(dir, 'cf.ini');
    await writeFile(creds, 'dns_cloudflare_api_token = cf-token-123\n', { mode: 0o600 });
    const root = await certbotLayout('www.example.org', [
      'authenticator = dns-cloudflare',
      `dns_cloudflare_credentials = ${creds}`,
      'reuse_key = True',
      'pre_hook = systemctl stop fw',
      'post_hook = systemctl start fw',
      'renew_hook = systemctl reload nginx',
    ]);
    await mkdir(path.join(root, 'renewal-hooks', 'deploy'), { recursive: true });
    await writeFile(path.join(root, 'renewal-hooks', 'deploy', 'push.sh'), '#!/bin/sh\n', { mode: 0o755 });

    const source = await readCertbot(root, []);
    expect(source.accounts).toMatchObject([
      { directoryUrl: DIRECTORY, url: ACCOUNT_URL, createdAt: '2025-01-02T03:04:05.000Z' },
    ]);
    expect(source.accounts[0]!.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(source.notes.join('\n')).toContain(path.join(root, 'renewal-hooks', 'deploy', 'push.sh'));

    const plan = planImport(planInput(source));
    const secretFile = path.join(dir, 'etc', 'certbot-cloudflare.secret');
    expect(plan.secrets).toEqual([
      { provider: 'certbot-cloudflare', file: secretFile, value: 'cf-token-123' },
    ]);
    expect(plan.snippet).toEqual({
      acme: { directory: DIRECTORY, termsAgreed: true },
      dns: { providers: { 'certbot-cloudflare': { type: 'cloudflare', apiToken_file: secretFile } } },
      certificates: [
        {
          name: 'www.example.org',
          domains: ['www.example.org'],
          keyType: 'ec-p256',
          reuseKey: true,
          dns: { provider: 'certbot-cloudflare' },
          hooks: {
            pre: [{ shell: true, command: 'systemctl stop fw' }],
            deploy: [
              { shell: true, command: expect.stringMatching(/RENEWED_LINEAGE=.*; systemctl reload nginx$/) },
            ],
            post: [{ shell: true, command: 'systemctl start fw' }],
          },
        },
      ],
    });
    expect(JSON.stringify(plan.snippet)).not.toContain('cf-token-123');
  });

  test('route53 maps to the SDK chain; webroot is noted and leaves dns unset', async () => {
    const r53 = planImport(
      planInput(await readCertbot(await certbotLayout('a.example.org', ['authenticator = dns-route53']), [])),
    );
    expect(r53.snippet.dns).toEqual({ providers: { 'certbot-route53': { type: 'route53' } } });
    await rm(path.join(dir, 'letsencrypt'), { recursive: true });

    const web = planImport(
      planInput(await readCertbot(await certbotLayout('b.example.org', ['authenticator = webroot']), [])),
    );
    expect(web.snippet.dns).toBeUndefined();
    expect(web.snippet.certificates).toEqual([
      { name: 'b.example.org', domains: ['b.example.org'], keyType: 'ec-p256' },
    ]);
    expect(web.notes.join('\n')).toMatch(
      /b\.example\.org: authenticator "webroot" has no certpilot DNS provider/,
    );
  });

  test('an unknown lineage name is a usage error naming it', async () => {
    const root = await certbotLayout('a.example.org', ['authenticator = dns-route53']);
    await expect(readCertbot(root, ['nope'])).rejects.toThrow(/no lineage "nope"/);
  });
});

describe('lego', () => {
  async function legoLayout(): Promise<string> {
    const root = path.join(dir, 'lego');
    const certs = path.join(root, 'certificates');
    const acct = path.join(root, 'accounts', 'acme.example.net', 'ops@example.org');
    await mkdir(certs, { recursive: true });
    await mkdir(path.join(acct, 'keys'), { recursive: true });
    const pair = issue(['*.example.org', 'example.org'], 'rsa-2048');
    await writeFile(path.join(certs, '_.example.org.crt'), pair.certPem + ca.certPem);
    await writeFile(path.join(certs, '_.example.org.issuer.crt'), ca.certPem);
    await writeFile(path.join(certs, '_.example.org.key'), pair.keyPem);
    await writeFile(
      path.join(certs, '_.example.org.json'),
      JSON.stringify({ domain: '*.example.org', certUrl: 'https://acme.example.net/cert/1' }),
    );
    const other = issue(['other.example.org']);
    await writeFile(path.join(certs, 'other.example.org.crt'), other.certPem);
    await writeFile(path.join(certs, 'other.example.org.key'), other.keyPem);
    await writeFile(
      path.join(certs, 'other.example.org.json'),
      JSON.stringify({ domain: 'other.example.org', certUrl: 'https://elsewhere.example/cert/2' }),
    );
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(
      path.join(acct, 'keys', 'ops@example.org.key'),
      privateKey.export({ type: 'sec1', format: 'pem' }),
    );
    await writeFile(
      path.join(acct, 'account.json'),
      JSON.stringify({ email: 'ops@example.org', registration: { uri: ACCOUNT_URL } }),
    );
    return root;
  }

  test('cloudflare guessed from the environment; another CA host skipped; the chain from the bundle', async () => {
    const source = await readLego(await legoLayout(), [], {
      directoryUrl: DIRECTORY,
      env: { CLOUDFLARE_DNS_API_TOKEN: 'tok-9' },
    });
    expect(source.certificates.map((c) => c.name)).toEqual(['wildcard.example.org']);
    expect(source.notes.join('\n')).toMatch(/other\.example\.org\.crt was issued by elsewhere\.example/);
    const cert = source.certificates[0]!;
    expect(cert.keyType).toBe('rsa-2048');
    expect(cert.files.fullchain).toBe(cert.files.cert + cert.files.chain);
    expect(parseCertificate(cert.files.chain).subject).toBe(parseCertificate(ca.certPem).subject);
    const plan = planImport(planInput(source));
    expect(plan.snippet.acme).toEqual({ directory: DIRECTORY, termsAgreed: true, email: 'ops@example.org' });
    expect(plan.snippet.dns).toEqual({
      providers: {
        'lego-cloudflare': {
          type: 'cloudflare',
          apiToken_file: path.join(dir, 'etc', 'lego-cloudflare.secret'),
        },
      },
    });
    expect(plan.account?.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  test('route53 from --provider and AWS_*; static keys are not copied; no provider without a hint', async () => {
    const root = await legoLayout();
    const r53 = await readLego(root, [], {
      directoryUrl: DIRECTORY,
      provider: 'route53',
      env: { AWS_REGION: 'eu-west-1', AWS_HOSTED_ZONE_ID: 'Z123', AWS_ACCESS_KEY_ID: 'AKIA1' },
    });
    expect(r53.certificates[0]!.provider).toMatchObject({
      type: 'route53',
      options: { region: 'eu-west-1', hostedZoneId: 'Z123' },
    });
    expect(r53.notes.join('\n')).toMatch(/static AWS keys are not copied/);
    const none = await readLego(root, [], { directoryUrl: DIRECTORY, env: {} });
    expect(none.certificates[0]!.provider).toBeUndefined();
    expect(none.notes.join('\n')).toMatch(/pass --provider/);
    await expect(readLego(root, [], { env: {} })).rejects.toThrow(/pass --ca URL/);
  });
});

describe('plan', () => {
  async function rfc2136Source(secret = 's3cret'): Promise<ImportSource> {
    const creds = path.join(dir, `tsig-${secret}.ini`);
    await writeFile(
      creds,
      `dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_name = k1\ndns_rfc2136_secret = ${secret}\ndns_rfc2136_algorithm = HMAC-SHA256\n`,
    );
    await rm(path.join(dir, 'letsencrypt'), { recursive: true, force: true });
    const root = await certbotLayout('a.example.org', [
      'authenticator = dns-rfc2136',
      `dns_rfc2136_credentials = ${creds}`,
    ]);
    return readCertbot(root, []);
  }

  test('stored certificates: same serial unchanged, another skipped unless --force', async () => {
    const source = await rfc2136Source();
    const info = source.certificates[0]!.info;
    const other = parseCertificate(issue(['a.example.org']).certPem);
    expect(
      planImport(planInput(source, { stored: new Map([['a.example.org', info]]) })).installs[0]!.action,
    ).toBe('already-installed');
    const skip = planImport(planInput(source, { stored: new Map([['a.example.org', other]]) })).installs[0]!;
    expect(skip).toMatchObject({ action: 'skip', reason: expect.stringMatching(/--force replaces it/) });
    const forced = planImport(
      planInput(source, { stored: new Map([['a.example.org', other]]), force: true }),
    );
    expect(forced.installs[0]!.action).toBe('install');
  });

  test("certpilot's own account is kept; another directory's certificates are skipped", async () => {
    const source = await rfc2136Source();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const mine = {
      directoryUrl: DIRECTORY,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      url: 'x',
    };
    const kept = planImport(planInput(source, { existingAccount: mine }));
    expect(kept.account).toBeUndefined();
    expect(kept.notes.join('\n')).toMatch(/already has an account .*: kept/);
    const elsewhere = planImport(planInput(source, { directoryUrl: 'https://other.example/dir' }));
    expect(elsewhere.installs).toEqual([]);
    expect(elsewhere.account).toBeUndefined();
    expect(elsewhere.notes.join('\n')).toMatch(
      /issued through https:\/\/acme\.example\.net\/directory, not https:\/\/other\.example\/dir: skipped/,
    );
  });

  test('provider names: the same settings reuse the configured instance, others get a suffix', async () => {
    const source = await rfc2136Source();
    const same = {
      type: 'rfc2136',
      server: '192.0.2.1',
      port: 53,
      tsigKeyName: 'k1',
      tsigAlgorithm: 'hmac-sha256',
      tsigSecret_file: '/x',
    };
    const reused = planImport(
      planInput(source, { raw: { dns: { providers: { 'certbot-rfc2136': same } } } }),
    );
    expect(reused.snippet.dns).toBeUndefined();
    expect(reused.secrets).toEqual([]);
    expect(reused.snippet.certificates).toMatchObject([{ dns: { provider: 'certbot-rfc2136' } }]);
    const clash = planImport(
      planInput(source, {
        raw: { dns: { providers: { 'certbot-rfc2136': { ...same, server: '192.0.2.9' } } } },
      }),
    );
    expect(Object.keys((clash.snippet.dns as { providers: object }).providers)).toEqual([
      'certbot-rfc2136-2',
    ]);
    expect(clash.secrets.map((s) => s.provider)).toEqual(['certbot-rfc2136-2']);
    const configured = planImport(planInput(source, { raw: { certificates: [{ name: 'a.example.org' }] } }));
    expect(configured.snippet.certificates).toEqual([]);
    expect(configured.notes.join('\n')).toMatch(/"a\.example\.org" is already configured/);
  });
});
