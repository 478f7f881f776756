import { execFile } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ariCertId } from '../../src/acme/ari';
import { readAccount } from '../../src/acme/account';
import { loadConfig } from '../../src/config/load';
import { CertStore } from '../../src/store/cert-store';
import { parseCertificate } from '../../src/x509';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * `certpilot import` on layouts made by the real certbot 2.1 (with its rfc2136 plugin) and lego
 * 4.9, both issuing from Pebble through the ARI proxy with DNS-01 at the test BIND. Then the
 * imported configuration is used as it is: `renew` places no order (the certificate is valid
 * and ARI, asked with the id computed from the imported certificate, says later), and
 * `renew --force` orders through the imported account (no newAccount) and DNS settings, with
 * `replaces` naming the imported certificate.
 */
const run = promisify(execFile);
let tb: Testbed;
let proxy: AriProxy;
const HOUR = 3_600_000;
const NEW_ACCOUNT = 'POST /sign-me-up';

beforeAll(async () => {
  tb = await startTestbed();
  proxy = await startAriProxy(tb.pebble);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await tb?.stop();
});

interface JsonReport {
  certificates: { name: string; status: string; reason: string; serial: string | null }[];
}

async function renew(configPath: string, ...extra: string[]): Promise<JsonReport> {
  const res = await runCli(['renew', '--config', configPath, '--json', '--log-format', 'json', ...extra]);
  expect(res.stderr).not.toMatch(/unexpected error/);
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as JsonReport;
}

/** A configuration without certificates or providers: what an operator starts the import from. */
async function baseConfig(name: string): Promise<{ configPath: string; stateDir: string }> {
  const stateDir = path.join(tb.dir, `state-${name}`);
  const configPath = await tb.writeConfig(
    [],
    {
      acme: {
        directory: proxy.directoryUrl,
        caBundle: tb.pebble.tlsCaPath,
        termsAgreed: true,
        requestTimeout: '10s',
      },
      storage: { stateDir },
    },
    {},
  );
  return { configPath, stateDir };
}

async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.sort();
}

/** The path of the first file called `file` under `dir`. */
async function findFile(dir: string, file: string): Promise<string> {
  const hit = (await listTree(dir)).find((f) => path.basename(f) === file);
  if (!hit) throw new Error(`no ${file} under ${dir}`);
  return path.join(dir, hit);
}

/**
 * With the imported configuration as it is: `renew` orders nothing (the certificate is valid;
 * ARI, asked with the id computed from the imported certificate, says later), and `renew
 * --force` orders through the imported account and DNS settings, naming the imported
 * certificate in `replaces`. Neither registers an account.
 */
async function expectRenewals(
  configPath: string,
  stateDir: string,
  name: string,
  serial: string,
): Promise<void> {
  const store = new CertStore({ stateDir, archiveDepth: 5 });
  const certId = ariCertId((await store.read(name))!.info);
  const now = Date.now();
  proxy.setWindow(certId, { start: new Date(now + 48 * HOUR), end: new Date(now + 50 * HOUR) }, 3600);
  const accounts = proxy.counts[NEW_ACCOUNT] ?? 0;
  const orders = proxy.orders.length;

  const quiet = await renew(configPath);
  expect(quiet.certificates).toMatchObject([{ name, status: 'valid', serial }]);
  expect(proxy.renewalInfoRequests(certId)).toBe(1);
  expect(proxy.orders).toHaveLength(orders);

  const forced = await renew(configPath, '--force');
  expect(forced.certificates).toMatchObject([{ name, status: 'renewed' }]);
  expect(forced.certificates[0]!.serial).not.toBe(serial);
  expect(proxy.orders.slice(orders)).toMatchObject([{ status: 201, payload: { replaces: certId } }]);
  expect(proxy.counts[NEW_ACCOUNT] ?? 0).toBe(accounts);
  expect((await store.read(name))!.info.serial).toBe(forced.certificates[0]!.serial);
}

describe('certpilot import certbot', () => {
  const secretFile = (configPath: string): string =>
    path.join(path.dirname(configPath), 'certbot-rfc2136.secret');

  test('dry-run prints the snippet and plan and writes nothing; the import installs, merges, and renew/force-renew work with it', async () => {
    const cb = path.join(tb.dir, 'certbot');
    const creds = path.join(tb.dir, 'rfc2136.ini');
    const { name: keyName, secret, algorithm } = tb.bind.tsig;
    await writeFile(
      creds,
      [
        'dns_rfc2136_server = 127.0.0.1',
        `dns_rfc2136_port = ${tb.bind.port}`,
        `dns_rfc2136_name = ${keyName}.`,
        `dns_rfc2136_secret = ${secret}`,
        `dns_rfc2136_algorithm = ${algorithm.toUpperCase()}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const hookLog = path.join(tb.dir, 'certbot-hook.log');
    await run(
      'certbot',
      [
        'certonly',
        '-n',
        '--config-dir',
        `${cb}/config`,
        '--work-dir',
        `${cb}/work`,
        '--logs-dir',
        `${cb}/logs`,
        '--server',
        proxy.directoryUrl,
        '--agree-tos',
        '--register-unsafely-without-email',
        '-a',
        'dns-rfc2136',
        '--dns-rfc2136-credentials',
        creds,
        '--dns-rfc2136-propagation-seconds',
        '1',
        '--key-type',
        'ecdsa',
        '--cert-name',
        'cb-lineage',
        '-d',
        'cb.example.test',
        '-d',
        '*.cb.example.test',
        '--deploy-hook',
        `echo "$RENEWED_LINEAGE|$RENEWED_DOMAINS" >> ${hookLog}`,
      ],
      { env: { ...process.env, REQUESTS_CA_BUNDLE: tb.pebble.tlsCaPath } },
    );
    const certbotCert = parseCertificate(await readFile(`${cb}/config/live/cb-lineage/cert.pem`, 'utf8'));
    const certbotAccount = JSON.parse(
      await readFile(await findFile(`${cb}/config/accounts`, 'regr.json'), 'utf8'),
    ) as { uri: string };

    const { configPath, stateDir } = await baseConfig('certbot');
    const configBefore = await readFile(configPath, 'utf8');
    const treeBefore = await listTree(tb.dir);

    const dry = await runCli([
      'import',
      'certbot',
      '--dir',
      `${cb}/config`,
      '--config',
      configPath,
      '--dry-run',
    ]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const snippet = parse(dry.stdout.slice(0, dry.stdout.indexOf('\nsecret:'))) as {
      dns: { providers: Record<string, unknown> };
      certificates: unknown[];
    };
    expect(snippet.dns.providers['certbot-rfc2136']).toEqual({
      type: 'rfc2136',
      server: '127.0.0.1',
      port: tb.bind.port,
      tsigKeyName: keyName,
      tsigAlgorithm: algorithm,
      tsigSecret_file: secretFile(configPath),
    });
    expect(snippet.certificates).toEqual([
      {
        name: 'cb-lineage',
        domains: certbotCert.names,
        keyType: 'ec-p256',
        dns: { provider: 'certbot-rfc2136' },
        hooks: { deploy: [{ shell: true, command: expect.stringContaining(`>> ${hookLog}`) }] },
      },
    ]);
    expect(dry.stdout).toContain(`account: import ${certbotAccount.uri}`);
    expect(dry.stdout).toContain(`install: cb-lineage (`);
    expect(dry.stdout).not.toContain(secret);
    expect(await readFile(configPath, 'utf8')).toBe(configBefore);
    expect(await listTree(tb.dir)).toEqual(treeBefore);

    const res = await runCli([
      'import',
      'certbot',
      '--dir',
      `${cb}/config`,
      '--config',
      configPath,
      '--write',
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout + res.stderr).not.toContain(secret);
    expect((await stat(secretFile(configPath))).mode & 0o777).toBe(0o600);
    expect((await readFile(secretFile(configPath), 'utf8')).trim()).toBe(secret);
    const config = await loadConfig({ path: configPath });
    expect(config.certificates.map((c) => [c.name, c.keyType, c.dnsProvider])).toEqual([
      ['cb-lineage', 'ec-p256', 'certbot-rfc2136'],
    ]);
    const stored = (await new CertStore({ stateDir, archiveDepth: 5 }).read('cb-lineage'))!;
    expect(stored.info.serial).toBe(certbotCert.serial);
    expect((await readAccount(stateDir, proxy.directoryUrl))?.url).toBe(certbotAccount.uri);

    // Again: nothing new to do (idempotent), nothing merged twice.
    const again = await runCli([
      'import',
      'certbot',
      '--dir',
      `${cb}/config`,
      '--config',
      configPath,
      '--write',
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('unchanged: cb-lineage');
    expect((await loadConfig({ path: configPath })).certificates).toHaveLength(1);

    await expectRenewals(configPath, stateDir, 'cb-lineage', certbotCert.serial);
    const hookLines = (await readFile(hookLog, 'utf8')).trim().split('\n');
    // certbot's own run, then certpilot's forced renewal with certbot's variables.
    expect(hookLines).toHaveLength(2);
    expect(hookLines[1]).toBe(`${path.join(stateDir, 'certs', 'cb-lineage')}|${certbotCert.names.join(' ')}`);
  }, 180_000);
});

describe('certpilot import lego', () => {
  test('lego --dns rfc2136: the provider from lego environment, its account reused, the wildcard file name mapped', async () => {
    const legoPath = path.join(tb.dir, 'lego');
    const { name: keyName, secret, algorithm } = tb.bind.tsig;
    const legoEnv = {
      RFC2136_NAMESERVER: `127.0.0.1:${tb.bind.port}`,
      RFC2136_TSIG_KEY: `${keyName}.`,
      RFC2136_TSIG_SECRET: secret,
      RFC2136_TSIG_ALGORITHM: `${algorithm}.`,
    };
    await run(
      'lego',
      [
        '--server',
        proxy.directoryUrl,
        '--path',
        legoPath,
        '--accept-tos',
        '--email',
        'ops@example.test',
        '--dns',
        'rfc2136',
        '--dns.resolvers',
        `127.0.0.1:${tb.bind.port}`,
        '--dns.disable-cp',
        '--key-type',
        'rsa2048',
        '-d',
        '*.lg.example.test',
        '-d',
        'lg.example.test',
        'run',
      ],
      {
        env: {
          ...process.env,
          ...legoEnv,
          LEGO_CA_CERTIFICATES: tb.pebble.tlsCaPath,
          // lego's own pauses (defaults 60 s / 2 s), not needed with BIND on loopback.
          RFC2136_PROPAGATION_TIMEOUT: '10',
          RFC2136_POLLING_INTERVAL: '1',
        },
      },
    );
    const legoCert = parseCertificate(
      await readFile(path.join(legoPath, 'certificates', '_.lg.example.test.crt'), 'utf8'),
    );
    const legoAccount = JSON.parse(
      await readFile(await findFile(path.join(legoPath, 'accounts'), 'account.json'), 'utf8'),
    ) as {
      registration: { uri: string };
    };
    const { configPath, stateDir } = await baseConfig('lego');

    // lego records no directory URL: without --ca (and no acme.directory configured) it asks for one.
    const noCa = await runCli([
      'import',
      'lego',
      '--path',
      legoPath,
      '--config',
      path.join(tb.dir, 'none.yaml'),
      '--dry-run',
    ]);
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toMatch(/lego does not record the ACME directory URL; pass --ca URL/);

    const saved = { ...process.env };
    Object.assign(process.env, legoEnv);
    let res;
    try {
      res = await runCli([
        'import',
        'lego',
        '--path',
        legoPath,
        '--provider',
        'rfc2136',
        '--config',
        configPath,
        '--write',
      ]);
    } finally {
      for (const k of Object.keys(legoEnv)) if (saved[k] === undefined) delete process.env[k];
    }
    expect(res.stderr).not.toMatch(/unexpected error/);
    expect(res.code).toBe(0);
    expect(res.stdout + res.stderr).not.toContain(secret);
    const secretPath = path.join(path.dirname(configPath), 'lego-rfc2136.secret');
    expect((await stat(secretPath)).mode & 0o777).toBe(0o600);
    const config = await loadConfig({ path: configPath });
    expect(config.acme.email).toBe('ops@example.test');
    expect(config.dns.providers['lego-rfc2136']).toMatchObject({
      type: 'rfc2136',
      options: { server: '127.0.0.1', port: tb.bind.port, tsigKeyName: keyName, tsigAlgorithm: algorithm },
    });
    expect(config.certificates).toMatchObject([
      {
        name: 'wildcard.lg.example.test',
        domains: legoCert.names,
        keyType: 'rsa-2048',
        dnsProvider: 'lego-rfc2136',
      },
    ]);
    expect((await readAccount(stateDir, proxy.directoryUrl))?.url).toBe(legoAccount.registration.uri);
    await expectRenewals(configPath, stateDir, 'wildcard.lg.example.test', legoCert.serial);
  }, 180_000);
});
