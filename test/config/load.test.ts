/* eslint-disable @typescript-eslint/no-explicit-any -- tests build deliberately ill-typed configurations */
import path from 'node:path';
import { DEFAULT_NOTIFY, DEFAULT_VERIFY, EMPTY_HOOKS } from '../../src/config/defaults';

/** What a certificate without deploy settings carries after loading. */
const NO_DEPLOY = { endpoints: [], hooks: EMPTY_HOOKS, deploy: [], rollback: false };
import { stringify } from 'yaml';
import { DEFAULT_CONFIG_PATH, resolveConfigPath } from '../../src/config/load';
import {
  baseConfig,
  EAB_HMAC,
  load,
  loadError,
  makeTempDir,
  removeDir,
  TSIG_SECRET,
  writeConfig,
  writeSecret,
} from './helpers';

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

describe('resolveConfigPath', () => {
  test.each([
    ['flag wins', '/a.yaml', { CERTPILOT_CONFIG: '/b.yaml' }, '/a.yaml'],
    ['then the environment', undefined, { CERTPILOT_CONFIG: '/b.yaml' }, '/b.yaml'],
    ['empty environment value is ignored', undefined, { CERTPILOT_CONFIG: '' }, DEFAULT_CONFIG_PATH],
    ['then the default', undefined, {}, '/etc/certpilot/certpilot.yaml'],
  ])('%s', (_name, flag, env, expected) => {
    expect(resolveConfigPath(flag, env)).toBe(expected);
  });
});

describe('defaults', () => {
  test('an empty file is a valid all-defaults configuration', async () => {
    const config = await load(writeConfig(dir, ''));
    expect(config).toEqual({
      source: expect.stringContaining(dir),
      acme: {
        directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
        termsAgreed: false,
        requestTimeoutMs: 30_000,
      },
      storage: { stateDir: '/var/lib/certpilot', archiveDepth: 5 },
      renewal: { renewRatio: 1 / 3, shortLifetimeRatio: 1 / 2, shortLifetimeDays: 10, maxOrdersPerWeek: 3 },
      defaultKeyType: 'ec-p256',
      concurrency: 4,
      daemon: {
        checkIntervalMs: 600_000,
        listen: { host: '127.0.0.1', port: 9612 },
        silentAfterMs: 36 * 3_600_000,
        endpointIntervalMs: 3_600_000,
        readinessIntervalMs: 86_400_000,
        redeployBackoffMs: 300_000,
      },
      dns: {
        resolvers: [],
        nameserverPort: 53,
        queryTimeoutMs: 5_000,
        propagation: { mode: 'authoritative', unreachable: 'fail', ipv6: 'on', waitMs: 60_000 },
        providers: {},
      },
      certificates: [],
      hooks: EMPTY_HOOKS,
      notify: DEFAULT_NOTIFY,
      verify: DEFAULT_VERIFY,
    });
  });

  test('empty sections (null in YAML) mean "use the defaults"', async () => {
    const config = await load(
      writeConfig(dir, 'acme:\nstorage:\ndefaults:\n  renewal:\ndns:\ncertificates: []\n'),
    );
    expect(config.storage.stateDir).toBe('/var/lib/certpilot');
  });

  test('provider and certificate defaults are filled in', async () => {
    const config = await load(writeConfig(dir, baseConfig(dir)));
    expect(config.dns.providers.bind).toEqual({
      name: 'bind',
      type: 'rfc2136',
      options: {
        server: '127.0.0.1',
        port: 53,
        protocol: 'tcp',
        tsigKeyName: 'certpilot',
        tsigAlgorithm: 'hmac-sha256',
        tsigSecret: TSIG_SECRET,
      },
      zones: [],
      ttl: 60,
      propagationTimeoutMs: 120_000,
      propagationIntervalMs: 1_000,
    });
    expect(config.certificates[0]).toEqual({
      name: 'www',
      domains: ['example.com', '*.example.com'],
      keyType: 'ec-p256',
      reuseKey: false,
      // The only instance is used without being named.
      dnsProvider: 'bind',
      domainProviders: {},
      outputs: [
        {
          fullchain: '/etc/ssl/www/fullchain.pem',
          key: '/etc/ssl/www/key.pem',
          certMode: 0o644,
          keyMode: 0o600,
        },
      ],
      ...NO_DEPLOY,
    });
  });

  test('the result is deeply frozen', async () => {
    const config = await load(writeConfig(dir, baseConfig(dir)));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.certificates[0].domains)).toBe(true);
    expect(Object.isFrozen(config.dns.providers.bind.options)).toBe(true);
  });
});

describe('YAML and JSON', () => {
  const full = (d: string): Record<string, any> => ({
    acme: {
      directory: 'https://ca.example.net/acme/directory',
      email: 'Ops@Example.COM',
      termsAgreed: true,
      requestTimeout: '1m30s',
    },
    storage: { stateDir: path.join(d, 'state', '..', 'state2'), archiveDepth: 0 },
    defaults: {
      keyType: 'rsa-3072',
      renewal: { ratio: 0.25, shortLifetimeRatio: 0.6, shortLifetimeDays: 7 },
      concurrency: 16,
    },
    dns: {
      resolvers: ['192.0.2.1', '192.0.2.2:5353', '[2001:db8::1]:53', '2001:db8::2'],
      nameserverPort: 5300,
      queryTimeout: 2500,
      providers: {
        primary: {
          type: 'nsupdate',
          server: 'ns1.example.com',
          tsigKeyName: 'k',
          tsigSecret: TSIG_SECRET,
          zones: ['Example.com.'],
        },
        internal: {
          type: 'rfc2136',
          server: '::1',
          port: 5353,
          protocol: 'udp',
          tsigKeyName: 'k2',
          tsigSecret: TSIG_SECRET,
          ttl: 30,
          propagationTimeout: '5m',
          propagationInterval: '500ms',
        },
      },
    },
    certificates: [
      {
        name: 'site.example-1',
        domains: ['WWW.Example.com.', 'www.example.com', 'intra.example.com'],
        keyType: 'ec-p384',
        reuseKey: true,
        dns: { provider: 'primary', domains: { 'INTRA.example.com': 'internal' } },
        outputs: [
          {
            cert: '/srv/tls/cert.pem',
            chain: '/srv/tls/chain.pem',
            key: '/srv/tls/key.pem',
            owner: 'www-data',
            group: 33,
            mode: '0640',
            keyMode: '0o400',
          },
          { fullchain: '/srv/other/fullchain.pem' },
        ],
      },
    ],
  });

  const expected = {
    acme: {
      directoryUrl: 'https://ca.example.net/acme/directory',
      email: 'Ops@example.com',
      termsAgreed: true,
      requestTimeoutMs: 90_000,
    },
    defaultKeyType: 'rsa-3072',
    renewal: { renewRatio: 0.25, shortLifetimeRatio: 0.6, shortLifetimeDays: 7, maxOrdersPerWeek: 3 },
    concurrency: 16,
    dnsSettings: {
      resolvers: ['192.0.2.1', '192.0.2.2:5353', '[2001:db8::1]:53', '2001:db8::2'],
      nameserverPort: 5300,
      queryTimeoutMs: 2500,
      propagation: { mode: 'authoritative', unreachable: 'fail', ipv6: 'on', waitMs: 60_000 },
    },
    certificate: {
      name: 'site.example-1',
      domains: ['www.example.com', 'intra.example.com'],
      keyType: 'ec-p384',
      reuseKey: true,
      dnsProvider: 'primary',
      domainProviders: { 'intra.example.com': 'internal' },
      ...NO_DEPLOY,
      outputs: [
        {
          cert: '/srv/tls/cert.pem',
          chain: '/srv/tls/chain.pem',
          key: '/srv/tls/key.pem',
          owner: 'www-data',
          group: '33',
          certMode: 0o640,
          keyMode: 0o400,
        },
        { fullchain: '/srv/other/fullchain.pem', certMode: 0o644, keyMode: 0o600 },
      ],
    },
  };

  test.each(['.yaml', '.yml', '.json'] as const)('a full configuration in %s', async (ext) => {
    const config = await load(writeConfig(dir, full(dir), ext));
    expect(config.acme).toEqual(expected.acme);
    expect(config.storage).toEqual({ stateDir: path.join(dir, 'state2'), archiveDepth: 0 });
    expect(config.defaultKeyType).toBe(expected.defaultKeyType);
    expect(config.renewal).toEqual(expected.renewal);
    expect(config.concurrency).toBe(16);
    expect({ ...config.dns, providers: undefined }).toEqual({
      ...expected.dnsSettings,
      providers: undefined,
    });
    expect(config.dns.providers.primary).toMatchObject({ type: 'rfc2136', zones: ['example.com'], ttl: 60 });
    expect(config.dns.providers.internal).toMatchObject({
      options: { server: '::1', port: 5353, protocol: 'udp' },
      ttl: 30,
      propagationTimeoutMs: 300_000,
      propagationIntervalMs: 500,
    });
    expect(config.certificates).toEqual([expected.certificate]);
  });

  test('YAML modes are octal whether quoted or not; JSON numbers are numeric modes', async () => {
    const yaml = [
      'certificates:',
      '  - name: a',
      '    domains: [a.example.com]',
      '    outputs:',
      '      - {cert: /x/a.pem, key: /x/a.key, mode: 0640, keyMode: 600}',
      '      - {cert: /x/b.pem, mode: 0o644, keyMode: "0400"}',
      'dns: {providers: {bind: {type: rfc2136, server: 127.0.0.1, tsigKeyName: k, tsigSecret: c2Vj}}}',
    ].join('\n');
    const fromYaml = await load(writeConfig(dir, yaml));
    expect(fromYaml.certificates[0].outputs.map((o) => [o.certMode, o.keyMode])).toEqual([
      [0o640, 0o600],
      [0o644, 0o400],
    ]);
    const json = baseConfig(dir);
    json.certificates[0].outputs[0].mode = 420;
    json.certificates[0].outputs[0].keyMode = 384;
    const fromJson = await load(writeConfig(dir, json, '.json'));
    expect(fromJson.certificates[0].outputs[0]).toMatchObject({ certMode: 0o644, keyMode: 0o600 });
  });

  test('JSON decimal 644 is refused rather than read as 0o1204', async () => {
    const c = baseConfig(dir);
    c.certificates[0].outputs[0].mode = 644;
    const err = await loadError(writeConfig(dir, c, '.json'));
    expect(err.issues).toEqual([
      { path: 'certificates[0].outputs[0].mode', message: expect.stringMatching(/read as decimal/) },
    ]);
  });
});

describe('ACME directory presets', () => {
  test.each([
    ['letsencrypt', 'https://acme-v02.api.letsencrypt.org/directory'],
    ['letsencrypt-staging', 'https://acme-staging-v02.api.letsencrypt.org/directory'],
    ['buypass', 'https://api.buypass.com/acme/directory'],
    ['LetsEncrypt', 'https://acme-v02.api.letsencrypt.org/directory'],
    ['https://acme.example.org/dir', 'https://acme.example.org/dir'],
    ['http://127.0.0.1:14000/dir', 'http://127.0.0.1:14000/dir'],
    ['http://127.10.0.1/dir', 'http://127.10.0.1/dir'],
    ['http://localhost:14000/dir', 'http://localhost:14000/dir'],
    ['http://[::1]:14000/dir', 'http://[::1]:14000/dir'],
  ])('%s', async (directory, url) => {
    const c = baseConfig(dir);
    c.acme.directory = directory;
    expect((await load(writeConfig(dir, c))).acme.directoryUrl).toBe(url);
  });

  test.each([
    ['zerossl', 'https://acme.zerossl.com/v2/DV90'],
    ['google', 'https://dv.acme-v02.api.pki.goog/directory'],
  ])('%s (with the EAB it requires)', async (directory, url) => {
    const c = baseConfig(dir);
    c.acme.directory = directory;
    c.acme.eab = { keyId: 'kid', hmacKey: EAB_HMAC };
    const config = await load(writeConfig(dir, c));
    expect(config.acme.directoryUrl).toBe(url);
    expect(config.acme.eab).toEqual({ keyId: 'kid', hmacKey: EAB_HMAC });
  });
});

describe('environment', () => {
  test('overrides the file for schema settings, with strict coercion', async () => {
    const c = baseConfig(dir);
    c.acme.termsAgreed = true;
    const config = await load(writeConfig(dir, c), {
      CERTPILOT_STATE_DIR: path.join(dir, 'from-env'),
      CERTPILOT_ACME_DIRECTORY: 'buypass',
      CERTPILOT_ACME_EMAIL: 'env@example.com',
      // convict alone would read "0" as true (its boolean format coerces any non-empty string).
      CERTPILOT_ACME_TERMS_AGREED: '0',
      CERTPILOT_CONCURRENCY: '8',
      // convict alone would keep the space after the comma.
      CERTPILOT_DNS_RESOLVERS: '192.0.2.1, [2001:db8::1]:5353',
      CERTPILOT_DNS_NAMESERVER_PORT: '5353',
      CERTPILOT_KEY_TYPE: 'rsa-2048',
    });
    expect(config.storage.stateDir).toBe(path.join(dir, 'from-env'));
    expect(config.acme.directoryUrl).toBe('https://api.buypass.com/acme/directory');
    expect(config.acme.email).toBe('env@example.com');
    expect(config.acme.termsAgreed).toBe(false);
    expect(config.concurrency).toBe(8);
    expect(config.dns.resolvers).toEqual(['192.0.2.1', '[2001:db8::1]:5353']);
    expect(config.dns.nameserverPort).toBe(5353);
    expect(config.defaultKeyType).toBe('rsa-2048');
    expect(config.certificates[0].keyType).toBe('rsa-2048');
  });

  test('variables not given leave the file alone; process.env is not read when env is passed', async () => {
    process.env.CERTPILOT_STATE_DIR = '/should/not/be/used';
    try {
      const config = await load(writeConfig(dir, baseConfig(dir)), {});
      expect(config.storage.stateDir).toBe(path.join(dir, 'state'));
    } finally {
      delete process.env.CERTPILOT_STATE_DIR;
    }
  });
});

describe('secrets', () => {
  const withoutSecret = (): Record<string, any> => {
    const c = baseConfig(dir);
    delete c.dns.providers.bind.tsigSecret;
    return c;
  };

  test('provider secret from <option>_file, trimmed', async () => {
    const c = withoutSecret();
    c.dns.providers.bind.tsigSecret_file = writeSecret(dir, `  ${TSIG_SECRET}\n`, 0o400);
    const config = await load(writeConfig(dir, c));
    expect(config.dns.providers.bind.options.tsigSecret).toBe(TSIG_SECRET);
    expect(config.dns.providers.bind.options).not.toHaveProperty('tsigSecret_file');
  });

  test('provider secret from the variable its spec names', async () => {
    const config = await load(writeConfig(dir, withoutSecret()), {
      CERTPILOT_RFC2136_TSIG_SECRET: TSIG_SECRET,
    });
    expect(config.dns.providers.bind.options.tsigSecret).toBe(TSIG_SECRET);
  });

  test('the file wins over the provider variable ("when the config omits it")', async () => {
    const config = await load(writeConfig(dir, baseConfig(dir)), {
      CERTPILOT_RFC2136_TSIG_SECRET: 'b3RoZXI=',
    });
    expect(config.dns.providers.bind.options.tsigSecret).toBe(TSIG_SECRET);
  });

  test('missing provider secret names every way to give it', async () => {
    const err = await loadError(writeConfig(dir, withoutSecret()));
    expect(err.issues).toEqual([
      {
        path: 'dns.providers.bind.tsigSecret',
        message: 'required by provider rfc2136 (or set tsigSecret_file or $CERTPILOT_RFC2136_TSIG_SECRET)',
      },
    ]);
  });

  test('EAB HMAC key from hmacKey_file and from the environment', async () => {
    const c = baseConfig(dir);
    c.acme.eab = { keyId: 'kid', hmacKey_file: writeSecret(dir, `${EAB_HMAC}\n`) };
    const file = c.acme.eab.hmacKey_file;
    expect((await load(writeConfig(dir, c))).acme.eab).toEqual({
      keyId: 'kid',
      hmacKey: EAB_HMAC,
      hmacKeyOrigin: { file },
    });

    const env = await load(writeConfig(dir, baseConfig(dir)), {
      CERTPILOT_EAB_KEY_ID: 'kid2',
      CERTPILOT_EAB_HMAC_KEY: EAB_HMAC,
    });
    expect(env.acme.eab).toEqual({
      keyId: 'kid2',
      hmacKey: EAB_HMAC,
      hmacKeyOrigin: { env: 'CERTPILOT_EAB_HMAC_KEY' },
    });
  });

  test('a secret file with group access is refused', async () => {
    const c = baseConfig(dir);
    c.acme.eab = { keyId: 'kid', hmacKey_file: writeSecret(dir, EAB_HMAC, 0o640) };
    const err = await loadError(writeConfig(dir, c));
    expect(err.issues).toEqual([
      { path: 'acme.eab.hmacKey_file', message: expect.stringMatching(/mode 0640\); chmod 600$/) },
    ]);
  });
});

describe('normalisation', () => {
  test('domains are lower-cased, stripped of the root dot and de-duplicated in order', async () => {
    const c = baseConfig(dir);
    c.certificates[0].domains = ['B.Example.com', 'a.example.com.', 'b.example.com', '*.EXAMPLE.com'];
    expect((await load(writeConfig(dir, c))).certificates[0].domains).toEqual([
      'b.example.com',
      'a.example.com',
      '*.example.com',
    ]);
  });

  test('a provider alias resolves to its code; certificates may be empty', async () => {
    const c = baseConfig(dir);
    c.dns.providers.bind.type = 'NSUPDATE';
    c.certificates = [];
    const config = await load(writeConfig(dir, c));
    expect(config.dns.providers.bind.type).toBe('rfc2136');
    expect(config.certificates).toEqual([]);
  });

  test('per-domain providers with two instances and zones', async () => {
    const c = baseConfig(dir);
    c.dns.providers.bind.zones = ['example.com'];
    c.dns.providers.other = { ...c.dns.providers.bind, zones: ['example.net'] };
    c.certificates[0].domains = ['example.com', 'www.example.net'];
    c.certificates[0].dns = { provider: 'bind', domains: { 'WWW.example.net': 'other' } };
    const spec = (await load(writeConfig(dir, stringify(c)))).certificates[0];
    expect(spec.dnsProvider).toBe('bind');
    expect(spec.domainProviders).toEqual({ 'www.example.net': 'other' });
  });
});
