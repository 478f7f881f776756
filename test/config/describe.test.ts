/* eslint-disable @typescript-eslint/no-explicit-any -- configurations are built as plain documents */
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { checkSettingsOf } from '../../src/config/access';
import { describeConfig, environmentSecrets, formatDuration } from '../../src/config/describe';
import { parseDuration } from '../../src/config/formats';
import type { AgentConfig } from '../../src/config/types';
import {
  baseConfig,
  EAB_HMAC,
  load,
  makeTempDir,
  removeDir,
  TSIG_SECRET,
  writeConfig,
  writeSecret,
} from './helpers';

/**
 * `config check` prints the configuration in the file's own key names, every section, as a
 * document that loads back to the same configuration; secrets appear as the references they
 * were given as (a file, a variable) or masked when inline.
 */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

const WEBHOOK_SECRET = 'd2ViaG9vay1zZWNyZXQtZG8tbm90LXByaW50';
const SMTP_PASSWORD = 'c210cC1wYXNzd29yZC1kby1ub3QtcHJpbnQ';
const ENV_TSIG = 'RU5WLVRTSUctU0VDUkVULWRvLW5vdC1wcmludA==';

/** Everything a file can say, secrets given as files and as a variable. */
function fullConfig(): Record<string, any> {
  const bundle = path.join(dir, 'ca.pem');
  fs.writeFileSync(bundle, '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
  const c = baseConfig(dir);
  c.acme = {
    directory: 'https://ca.example.com/directory',
    email: 'ops@example.com',
    termsAgreed: true,
    eab: { keyId: 'kid-1', hmacKey_file: writeSecret(dir, EAB_HMAC) },
    caBundle: bundle,
    requestTimeout: '45s',
    fallback: [
      {
        directory: 'https://ca2.example.org/acme',
        termsAgreed: true,
        caaIdentities: ['ca2.example.org'],
        eab: { keyId: 'kid-2', hmacKey_file: writeSecret(dir, EAB_HMAC) },
        preferredChain: 'Root Two',
      },
      { directory: 'letsencrypt', email: 'other@example.com', requestTimeout: '20s' },
    ],
  };
  c.storage.archiveDepth = 7;
  c.defaults = {
    keyType: 'rsa-3072',
    renewal: { ratio: 0.25, shortLifetimeRatio: 0.6, shortLifetimeDays: 8, maxOrdersPerWeek: 2 },
    concurrency: 3,
  };
  c.daemon = { checkInterval: '90s', listen: '[::]:9612', allowRemote: true, readinessInterval: 'off' };
  c.dns.resolvers = ['192.0.2.1', '[2001:db8::1]:5353'];
  c.dns.nameserverPort = 5353;
  c.dns.queryTimeout = '1500ms';
  c.dns.providers.bind = {
    type: 'rfc2136',
    server: '127.0.0.1',
    port: 5300,
    tsigKeyName: 'certpilot',
    tsigSecret_file: writeSecret(dir, TSIG_SECRET),
    zones: ['example.com'],
    ttl: 30,
    propagationTimeout: '3m',
    propagationInterval: '2s',
  };
  // Its secret comes from CERTPILOT_RFC2136_TSIG_SECRET.
  c.dns.providers.internal = {
    type: 'rfc2136',
    server: '127.0.0.2',
    tsigKeyName: 'k2',
    zones: ['example.net'],
  };
  c.certificates = [
    {
      name: 'www',
      domains: ['example.com', '*.example.com', 'intra.example.net'],
      keyType: 'ec-p384',
      reuseKey: true,
      profile: 'tlsserver',
      profileMode: 'preferred',
      profileLifetime: '45d',
      dns: { provider: 'bind', domains: { 'intra.example.net': 'internal' } },
      outputs: [
        {
          fullchain: '/etc/ssl/www/fullchain.pem',
          key: '/etc/ssl/www/key.pem',
          owner: 'root',
          group: 'ssl-cert',
          mode: '0640',
          keyMode: '0600',
        },
        { cert: '/srv/www/cert.pem', chain: '/srv/www/chain.pem' },
      ],
      check: { warningDays: 20, criticalRatio: 0.05 },
      endpoints: [
        'www.example.com',
        { host: 'mail.example.com', starttls: 'smtp', connectAddress: '192.0.2.25' },
      ],
      hooks: {
        pre: [['/bin/true']],
        post: [{ shell: true, command: 'echo done', timeout: '5s', env: { LEVEL: '1' } }],
      },
      deploy: [
        { type: 'nginx', timeout: '20s' },
        { type: 'systemd', unit: 'postfix.service', action: 'restart' },
        {
          type: 'webhook',
          url: 'https://deploy.example.com/hook',
          secret_file: writeSecret(dir, WEBHOOK_SECRET),
          headers: { 'X-Env': 'prod' },
          includeCertificate: true,
        },
        { type: 'command', name: 'copy', command: ['/usr/local/bin/copy-cert', 'www'], cwd: '/tmp' },
      ],
      rollback: true,
    },
  ];
  c.hooks = { deploy: [{ command: ['/usr/bin/logger', 'renewed'], timeout: '10s' }] };
  c.notify = {
    on: ['renewal-failed', 'critical'],
    criticalDays: 5,
    digest: '07:30',
    webhooks: [
      {
        url: 'https://alerts.example.com/in',
        format: 'slack',
        retries: 1,
        secret_file: writeSecret(dir, WEBHOOK_SECRET),
      },
    ],
    email: {
      host: 'smtp.example.com',
      username: 'certpilot',
      password_file: writeSecret(dir, SMTP_PASSWORD),
      from: 'certpilot@example.com',
      to: ['ops@example.com'],
    },
  };
  c.verify = { timeout: '3m', interval: '2s', maxInterval: '20s' };
  c.check = { warningDays: 30, criticalDays: 10, connectTimeout: '3s', concurrency: 16 };
  c.watch = {
    files: [
      '/etc/ssl/legacy/*.pem',
      {
        path: '/etc/ssl/other.pem',
        name: 'other',
        checkChain: false,
        names: ['other.example.com'],
        criticalDays: 3,
      },
    ],
    endpoints: [{ host: 'mx.example.com', port: 465, name: 'mx', warningDays: 25 }],
  };
  return c;
}

const ENV = { CERTPILOT_RFC2136_TSIG_SECRET: ENV_TSIG };

/** The configuration without its source, optional monitoring sections filled in. */
function comparable(config: AgentConfig): unknown {
  const { source: _source, ...rest } = config;
  return { ...rest, check: checkSettingsOf(config), watch: config.watch ?? { files: [], endpoints: [] } };
}

async function roundTrip(
  doc: Record<string, any>,
  ext: '.yaml' | '.json',
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const first = await load(writeConfig(dir, doc), env);
  const view = describeConfig(first);
  const text = ext === '.json' ? JSON.stringify(view) : stringify(view);
  const second = await load(writeConfig(dir, text, ext), env);
  expect(comparable(second)).toEqual(comparable(first));
  // A fixed point: printing the reloaded configuration prints the same document.
  expect(describeConfig(second)).toEqual(view);
}

describe('the printed configuration loads back to the same configuration', () => {
  test.each(['.yaml', '.json'] as const)('every section and option (%s)', async (ext) => {
    await roundTrip(fullConfig(), ext, ENV);
  });

  test('a minimal file: defaults printed explicitly load back to the same values', async () => {
    const c = baseConfig(dir);
    delete c.dns.providers.bind.tsigSecret;
    c.dns.providers.bind.tsigSecret_file = writeSecret(dir, TSIG_SECRET);
    await roundTrip(c, '.yaml', {});
  });

  test('a fleet node: storage.etcd and every fleet option', async () => {
    const c = baseConfig(dir);
    delete c.dns.providers.bind.tsigSecret;
    c.dns.providers.bind.tsigSecret_file = writeSecret(dir, TSIG_SECRET);
    c.storage = {
      ...c.storage,
      backend: 'etcd',
      etcd: {
        endpoints: ['http://127.0.0.1:2379'],
        encryptionKeys: [{ id: 'k1', file: '/etc/certpilot/k1' }],
      },
    };
    c.fleet = { nodeName: 'web1', rollout: 'canary', canary: 'web2', stagger: '45s', pollInterval: '2s' };
    await roundTrip(c, '.yaml', {});
  });

  test('file keys, not internal names; every section', async () => {
    const view = describeConfig(await load(writeConfig(dir, fullConfig()), ENV));
    expect(Object.keys(view)).toEqual([
      'acme',
      'storage',
      'defaults',
      'daemon',
      'dns',
      'certificates',
      'hooks',
      'notify',
      'verify',
      'check',
      'watch',
    ]);
    const text = JSON.stringify(view);
    for (const internal of [
      'directoryUrl',
      'requestTimeoutMs',
      'dnsProvider',
      'domainProviders',
      'renewRatio',
      'thresholds',
      'certMode',
      'argv',
    ])
      expect(text).not.toContain(`"${internal}"`);
    expect(view.defaults).toMatchObject({ renewal: { maxOrdersPerWeek: 2 } });
    expect(view.daemon).toEqual({
      checkInterval: '90s',
      listen: '[::]:9612',
      allowRemote: true,
      silentAfter: '36h',
      endpointInterval: '1h',
      readinessInterval: 'off',
      redeployBackoff: '5m',
    });
    expect((view.acme as any).requestTimeout).toBe('45s');
  });
});

describe('secrets', () => {
  test('files print as <key>_file, a variable is named in a note, nothing is printed', async () => {
    const config = await load(writeConfig(dir, fullConfig()), ENV);
    const view = describeConfig(config) as any;
    const text = stringify(view);
    for (const secret of [TSIG_SECRET, EAB_HMAC, WEBHOOK_SECRET, SMTP_PASSWORD, ENV_TSIG])
      expect(text).not.toContain(secret);
    expect(view.acme.eab.hmacKey_file).toMatch(/secret-/);
    expect(view.dns.providers.bind.tsigSecret_file).toMatch(/secret-/);
    expect(view.dns.providers.internal).not.toHaveProperty('tsigSecret');
    expect(view.notify.email.password_file).toMatch(/secret-/);
    expect(view.certificates[0].deploy[2].secret_file).toMatch(/secret-/);
    expect(environmentSecrets(config)).toEqual([
      'dns.providers.internal.tsigSecret from $CERTPILOT_RFC2136_TSIG_SECRET',
    ]);
  });

  test('inline secrets are masked (and such a document is then not loadable as is)', async () => {
    const c = baseConfig(dir);
    c.acme.eab = { keyId: 'kid', hmacKey: EAB_HMAC };
    c.notify = { webhooks: [{ url: 'https://alerts.example.com/in', secret: WEBHOOK_SECRET }] };
    c.hooks = { pre: [{ command: ['/bin/true'], env: { API_TOKEN: 'inline-token-value' } }] };
    const view = describeConfig(await load(writeConfig(dir, c))) as any;
    const text = stringify(view);
    for (const secret of [TSIG_SECRET, EAB_HMAC, WEBHOOK_SECRET, 'inline-token-value'])
      expect(text).not.toContain(secret);
    expect(view.acme.eab).toEqual({ keyId: 'kid', hmacKey: '[redacted]' });
    expect(view.dns.providers.bind.tsigSecret).toBe('[redacted]');
    expect(view.notify.webhooks[0].secret).toBe('[redacted]');
    expect(view.hooks.pre[0].env.API_TOKEN).toBe('[redacted]');
    expect(parse(text)).toEqual(view);
  });
});

test('durations print in the largest exact unit and parse back unchanged', () => {
  for (const ms of [1, 999, 1_000, 1_500, 60_000, 90_000, 3_600_000, 5_400_000, 86_400_000]) {
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  }
  expect(formatDuration(90_000)).toBe('90s');
  expect(formatDuration(120_000)).toBe('2m');
});
