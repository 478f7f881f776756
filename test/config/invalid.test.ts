/* eslint-disable @typescript-eslint/no-explicit-any -- tests build deliberately ill-typed configurations */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { describeConfig } from '../../src/config/load';
import {
  baseConfig,
  EAB_HMAC,
  load,
  loadError,
  makeTempDir,
  paths,
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

type Case = {
  name: string;
  /** Breaks a fresh copy of the base configuration. */
  mutate: (c: Record<string, any>, dir: string) => void;
  /** Exactly the paths that must be reported. */
  paths: string[];
  /** A fragment the (first) message must contain. */
  message?: RegExp;
  env?: NodeJS.ProcessEnv;
};

const cert0 = (c: Record<string, any>): Record<string, any> => c.certificates[0];

const cases: Case[] = [
  // Unknown keys at every level.
  {
    name: 'unknown top-level key',
    mutate: (c) => (c.colour = 'blue'),
    paths: ['colour'],
    message: /unknown key/,
  },
  { name: 'unknown acme key', mutate: (c) => (c.acme.dirctory = 'x'), paths: ['acme.dirctory'] },
  {
    name: 'unknown nested key under unknown key',
    mutate: (c) => (c.acme.extra = { a: { b: 1 } }),
    paths: ['acme.extra'],
  },
  {
    name: 'unknown eab key',
    mutate: (c) => (c.acme.eab = { keyId: 'k', hmacKey: EAB_HMAC, kid: 'x' }),
    paths: ['acme.eab.kid'],
  },
  {
    name: 'unknown certificate key',
    mutate: (c) => (cert0(c).domain = 'x'),
    paths: ['certificates[0].domain'],
  },
  {
    name: 'unknown output key',
    mutate: (c) => (cert0(c).outputs[0].perms = '0600'),
    paths: ['certificates[0].outputs[0].perms'],
  },
  {
    name: 'unknown certificate dns key',
    mutate: (c) => (cert0(c).dns = { provider: 'bind', zone: 'x' }),
    paths: ['certificates[0].dns.zone'],
  },
  {
    name: 'unknown provider option',
    mutate: (c) => (c.dns.providers.bind.colour = 'red'),
    paths: ['dns.providers.bind.colour'],
    message: /unknown option for provider rfc2136/,
  },
  // Wrong types and ranges.
  { name: 'boolean as a word', mutate: (c) => (c.acme.termsAgreed = 'maybe'), paths: ['acme.termsAgreed'] },
  {
    name: 'archiveDepth too large',
    mutate: (c) => (c.storage.archiveDepth = 101),
    paths: ['storage.archiveDepth'],
  },
  {
    name: 'integer with junk',
    mutate: (c) => (c.defaults = { concurrency: '4x' }),
    paths: ['defaults.concurrency'],
  },
  {
    name: 'concurrency zero',
    mutate: (c) => (c.defaults = { concurrency: 0 }),
    paths: ['defaults.concurrency'],
  },
  {
    name: 'ratio out of range',
    mutate: (c) => (c.defaults = { renewal: { ratio: 1.5 } }),
    paths: ['defaults.renewal.ratio'],
  },
  {
    name: 'section given as scalar',
    mutate: (c) => (c.acme = 'letsencrypt'),
    paths: ['acme'],
    message: /mapping/,
  },
  {
    name: 'leaf given as mapping',
    mutate: (c) => (c.acme.directory = { url: 'x' }),
    paths: ['acme.directory'],
  },
  { name: 'certificates as mapping', mutate: (c) => (c.certificates = { www: {} }), paths: ['certificates'] },
  { name: 'certificate as scalar', mutate: (c) => (c.certificates = ['www']), paths: ['certificates[0]'] },
  {
    name: 'providers as list',
    mutate: (c) => ((c.dns.providers = ['bind']), (c.certificates = [])),
    paths: ['dns.providers'],
  },
  {
    name: 'duration without unit',
    mutate: (c) => (c.acme.requestTimeout = '30 seconds'),
    paths: ['acme.requestTimeout'],
  },
  {
    name: 'duration too short (seconds meant)',
    mutate: (c) => (c.acme.requestTimeout = 30),
    paths: ['acme.requestTimeout'],
  },
  { name: 'bad e-mail', mutate: (c) => (c.acme.email = 'ops-at-example.com'), paths: ['acme.email'] },
  {
    name: 'resolver host name',
    mutate: (c) => (c.dns.resolvers = ['1.1.1.1', 'dns.google']),
    paths: ['dns.resolvers[1]'],
  },
  {
    name: 'nameserver port out of range',
    mutate: (c) => (c.dns.nameserverPort = 0),
    paths: ['dns.nameserverPort'],
  },
  // ACME directory.
  {
    name: 'http:// directory to a non-loopback host',
    mutate: (c) => (c.acme.directory = 'http://acme.example.com/directory'),
    paths: ['acme.directory'],
    message: /http:\/\/ is allowed only for a local test CA/,
  },
  {
    name: 'ftp:// directory',
    mutate: (c) => (c.acme.directory = 'ftp://acme.example.com/'),
    paths: ['acme.directory'],
    message: /scheme "ftp"/,
  },
  {
    name: 'unknown preset',
    mutate: (c) => (c.acme.directory = 'letsencrypt-prod'),
    paths: ['acme.directory'],
  },
  {
    name: 'missing caBundle file',
    mutate: (c, d) => (c.acme.caBundle = path.join(d, 'nope.pem')),
    paths: ['acme.caBundle'],
  },
  { name: 'relative caBundle', mutate: (c) => (c.acme.caBundle = 'ca.pem'), paths: ['acme.caBundle'] },
  {
    name: 'EAB key id without key',
    mutate: (c) => (c.acme.eab = { keyId: 'kid' }),
    paths: ['acme.eab.hmacKey'],
  },
  {
    name: 'EAB key without key id',
    mutate: (c) => (c.acme.eab = { hmacKey: EAB_HMAC }),
    paths: ['acme.eab.keyId'],
  },
  { name: 'zerossl without EAB', mutate: (c) => (c.acme.directory = 'zerossl'), paths: ['acme.eab'] },
  {
    name: 'EAB key inline and from a file',
    mutate: (c, d) =>
      (c.acme.eab = { keyId: 'k', hmacKey: EAB_HMAC, hmacKey_file: writeSecret(d, EAB_HMAC) }),
    paths: ['acme.eab.hmacKey_file'],
  },
  // Storage.
  {
    name: 'relative stateDir',
    mutate: (c) => (c.storage.stateDir = 'var/lib/certpilot'),
    paths: ['storage.stateDir'],
  },
  // Key types.
  {
    name: 'ed25519 default key type',
    mutate: (c) => (c.defaults = { keyType: 'ed25519' }),
    paths: ['defaults.keyType'],
    message: /Let's Encrypt accepts only/,
  },
  {
    name: 'ec-p521 certificate key type',
    mutate: (c) => (cert0(c).keyType = 'ec-p521'),
    paths: ['certificates[0].keyType'],
  },
  {
    name: 'rsa-1024 certificate key type',
    mutate: (c) => (cert0(c).keyType = 'rsa-1024'),
    paths: ['certificates[0].keyType'],
    message: /too weak/,
  },
  // Certificate names.
  {
    name: 'path traversal name',
    mutate: (c) => (cert0(c).name = '../../etc'),
    paths: ['certificates[0].name'],
  },
  { name: 'upper-case name', mutate: (c) => (cert0(c).name = 'WWW'), paths: ['certificates[0].name'] },
  { name: 'missing name', mutate: (c) => delete cert0(c).name, paths: ['certificates[0].name'] },
  {
    name: 'duplicate names',
    mutate: (c) => c.certificates.push({ name: 'www', domains: ['other.example.com'] }),
    paths: ['certificates[1].name'],
    message: /duplicate name "www"/,
  },
  // Domains.
  { name: 'no domains', mutate: (c) => (cert0(c).domains = []), paths: ['certificates[0].domains'] },
  {
    name: 'underscore in a label',
    mutate: (c) => (cert0(c).domains = ['exa_mple.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'empty label',
    mutate: (c) => (cert0(c).domains = ['a..example.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'label too long',
    mutate: (c) => (cert0(c).domains = [`${'a'.repeat(64)}.example.com`]),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'single-label name',
    mutate: (c) => (cert0(c).domains = ['localhost']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'IP address',
    mutate: (c) => (cert0(c).domains = ['example.com', '192.0.2.1']),
    paths: ['certificates[0].domains[1]'],
    message: /IP address/,
  },
  {
    name: 'IPv6 address',
    mutate: (c) => (cert0(c).domains = ['2001:db8::1']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'double wildcard',
    mutate: (c) => (cert0(c).domains = ['*.*.example.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'inner wildcard',
    mutate: (c) => (cert0(c).domains = ['www.*.example.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'partial wildcard label',
    mutate: (c) => (cert0(c).domains = ['w*.example.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'wildcard over a TLD',
    mutate: (c) => (cert0(c).domains = ['*.com']),
    paths: ['certificates[0].domains[0]'],
  },
  {
    name: 'non-ASCII name',
    mutate: (c) => (cert0(c).domains = ['bücher.example']),
    paths: ['certificates[0].domains[0]'],
    message: /xn--/,
  },
  {
    name: 'domain not a string',
    mutate: (c) => (cert0(c).domains = [42]),
    paths: ['certificates[0].domains[0]'],
  },
  // DNS provider references.
  {
    name: 'unknown provider instance',
    mutate: (c) => (cert0(c).dns = { provider: 'route35' }),
    paths: ['certificates[0].dns.provider'],
    message: /unknown provider instance "route35"/,
  },
  {
    name: 'per-domain instance unknown',
    mutate: (c) => (cert0(c).dns = { domains: { 'example.com': 'nope' } }),
    paths: ['certificates[0].dns.domains["example.com"]'],
  },
  {
    name: 'per-domain key not among the domains',
    mutate: (c) => (cert0(c).dns = { provider: 'bind', domains: { 'other.example.com': 'bind' } }),
    paths: ['certificates[0].dns.domains["other.example.com"]'],
  },
  // A name without a provider, or outside its zones, is a certificate problem: problems.test.ts.
  // Provider instances.
  {
    name: 'unknown provider type',
    mutate: (c) => (c.dns.providers.bind.type = 'route35'),
    paths: ['dns.providers.bind.type'],
    message: /unknown provider type "route35"/,
  },
  {
    name: 'missing provider type',
    mutate: (c) => delete c.dns.providers.bind.type,
    paths: ['dns.providers.bind.type'],
  },
  {
    // Found at load time, not when the first update is signed.
    name: 'TSIG secret that is not base64',
    mutate: (c) => (c.dns.providers.bind.tsigSecret = 'not base64: with spaces and !'),
    paths: ['dns.providers.bind.tsigSecret'],
    message: /must be base64/,
  },
  {
    name: 'missing required option',
    mutate: (c) => delete c.dns.providers.bind.tsigKeyName,
    paths: ['dns.providers.bind.tsigKeyName'],
  },
  {
    name: 'port out of range',
    mutate: (c) => (c.dns.providers.bind.port = 70000),
    paths: ['dns.providers.bind.port'],
  },
  {
    name: 'port as text',
    mutate: (c) => (c.dns.providers.bind.port = '53abc'),
    paths: ['dns.providers.bind.port'],
  },
  {
    name: 'enum value',
    mutate: (c) => (c.dns.providers.bind.protocol = 'quic'),
    paths: ['dns.providers.bind.protocol'],
    message: /udp, tcp/,
  },
  {
    name: 'bad host',
    mutate: (c) => (c.dns.providers.bind.server = 'not a host'),
    paths: ['dns.providers.bind.server'],
  },
  {
    name: 'empty string option',
    mutate: (c) => (c.dns.providers.bind.tsigKeyName = ' '),
    paths: ['dns.providers.bind.tsigKeyName'],
  },
  {
    name: 'bad zone',
    mutate: (c) => (c.dns.providers.bind.zones = ['*.example.com']),
    paths: ['dns.providers.bind.zones[0]'],
  },
  { name: 'ttl zero', mutate: (c) => (c.dns.providers.bind.ttl = 0), paths: ['dns.providers.bind.ttl'] },
  {
    name: 'interval longer than timeout',
    mutate: (c) =>
      Object.assign(c.dns.providers.bind, { propagationTimeout: '10s', propagationInterval: '1m' }),
    paths: ['dns.providers.bind.propagationInterval'],
  },
  {
    name: 'bad instance name',
    mutate: (c) => ((c.dns.providers['my bind'] = c.dns.providers.bind), delete c.dns.providers.bind),
    paths: ['dns.providers["my bind"]'],
  },
  {
    name: 'world-readable secret file',
    mutate: (c, d) => {
      delete c.dns.providers.bind.tsigSecret;
      c.dns.providers.bind.tsigSecret_file = writeSecret(d, TSIG_SECRET, 0o644);
    },
    paths: ['dns.providers.bind.tsigSecret_file'],
    message: /is readable by others \(mode 0644\); chmod 600/,
  },
  {
    name: 'missing secret file',
    mutate: (c, d) => {
      delete c.dns.providers.bind.tsigSecret;
      c.dns.providers.bind.tsigSecret_file = path.join(d, 'absent');
    },
    paths: ['dns.providers.bind.tsigSecret_file'],
  },
  {
    name: 'secret inline and from a file',
    mutate: (c, d) => (c.dns.providers.bind.tsigSecret_file = writeSecret(d, TSIG_SECRET)),
    paths: ['dns.providers.bind.tsigSecret_file'],
  },
  {
    name: '_file for a non-secret option',
    mutate: (c) => (c.dns.providers.bind.server_file = '/x'),
    paths: ['dns.providers.bind.server_file'],
  },
  // Outputs.
  {
    name: 'relative output path',
    mutate: (c) => (cert0(c).outputs[0].key = 'key.pem'),
    paths: ['certificates[0].outputs[0].key'],
  },
  {
    name: 'output that writes nothing',
    mutate: (c) => (cert0(c).outputs = [{ mode: '0644' }]),
    paths: ['certificates[0].outputs[0]'],
  },
  {
    name: 'setuid mode',
    mutate: (c) => (cert0(c).outputs[0].mode = '4755'),
    paths: ['certificates[0].outputs[0].mode'],
  },
  {
    name: 'mode not octal',
    mutate: (c) => (cert0(c).outputs[0].keyMode = '0999'),
    paths: ['certificates[0].outputs[0].keyMode'],
  },
  {
    name: 'two outputs write one file',
    mutate: (c) =>
      c.certificates.push({
        name: 'api',
        domains: ['api.example.com'],
        outputs: [{ key: '/etc/ssl/www/key.pem' }],
      }),
    paths: ['certificates[1].outputs[0].key'],
  },
  {
    name: 'reserved key',
    mutate: (c) => (c.storage = JSON.parse('{"__proto__": {"x": 1}}')),
    paths: ['storage.__proto__'],
  },
  // Environment values are validated too, and named in the message.
  {
    name: 'env integer with junk',
    mutate: () => undefined,
    env: { CERTPILOT_CONCURRENCY: '12abc' },
    paths: ['defaults.concurrency'],
    message: /CERTPILOT_CONCURRENCY/,
  },
  {
    name: 'env relative stateDir',
    mutate: () => undefined,
    env: { CERTPILOT_STATE_DIR: 'state' },
    paths: ['storage.stateDir'],
  },
  {
    name: 'env resolver list: the element at its index',
    mutate: () => undefined,
    env: { CERTPILOT_DNS_RESOLVERS: '192.0.2.1, dns.google' },
    paths: ['dns.resolvers[1]'],
    message: /"dns.google" must be an IP address.*\(from \$CERTPILOT_DNS_RESOLVERS\)$/,
  },
  {
    name: 'env boolean word',
    mutate: () => undefined,
    env: { CERTPILOT_ACME_TERMS_AGREED: 'sure' },
    paths: ['acme.termsAgreed'],
  },
];

describe('invalid configurations report exactly the offending paths', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const config = baseConfig(dir);
    c.mutate(config, dir);
    // JSON so that the __proto__ case survives serialisation as an own key.
    const file = writeConfig(dir, JSON.stringify(config), '.json');
    const err = await loadError(file, c.env ?? {});
    expect(err.code).toBe('CONFIG_INVALID');
    expect(paths(err.issues)).toEqual([...c.paths].sort());
    if (c.message) expect(err.issues[0].message).toMatch(c.message);
    expect(err.message).toContain(file);
    expect(err.message).not.toContain(TSIG_SECRET);
    expect(err.message).not.toContain(EAB_HMAC);
  });

  test('the base configuration itself is valid', async () => {
    await expect(load(writeConfig(dir, baseConfig(dir)))).resolves.toBeDefined();
  });
});

describe('every problem is reported at once', () => {
  test('many independent problems in one file', async () => {
    const c = baseConfig(dir);
    c.colour = 'blue';
    c.acme.directory = 'ftp://ca.example/';
    c.storage.stateDir = 'relative';
    c.defaults = { keyType: 'ed25519', concurrency: 100 };
    c.dns.providers.bind.port = 'x';
    c.certificates[0].name = '../x';
    c.certificates[0].domains = ['*.*.example.com', '10.0.0.1'];
    c.certificates[0].outputs[0].key = 'key.pem';
    const err = await loadError(writeConfig(dir, c));
    expect(paths(err.issues)).toEqual(
      [
        'colour',
        'acme.directory',
        'storage.stateDir',
        'defaults.keyType',
        'defaults.concurrency',
        'dns.providers.bind.port',
        'certificates[0].name',
        'certificates[0].domains[0]',
        'certificates[0].domains[1]',
        'certificates[0].outputs[0].key',
      ].sort(),
    );
    // One line per issue in the message, each "path: message".
    for (const issue of err.issues) expect(err.message).toContain(`  ${issue.path}: ${issue.message}`);
  });
});

describe('secrets never leak', () => {
  test('a secret that fails validation is not quoted', async () => {
    const c = baseConfig(dir);
    c.acme.eab = { keyId: 'kid', hmacKey: `${EAB_HMAC} with spaces!` };
    c.dns.providers.bind.tsigSecret = ['not', TSIG_SECRET];
    const err = await loadError(writeConfig(dir, c));
    expect(paths(err.issues)).toEqual(['acme.eab.hmacKey', 'dns.providers.bind.tsigSecret']);
    expect(err.message).not.toContain(EAB_HMAC);
    expect(err.message).not.toContain(TSIG_SECRET);
  });

  test('a secret from the environment that fails validation is not quoted', async () => {
    const err = await loadError(writeConfig(dir, baseConfig(dir)), {
      CERTPILOT_EAB_HMAC_KEY: `${EAB_HMAC}!!`,
      CERTPILOT_EAB_KEY_ID: 'kid',
    });
    expect(paths(err.issues)).toEqual(['acme.eab.hmacKey']);
    expect(err.message).not.toContain(EAB_HMAC);
  });

  test('describeConfig redacts the TSIG secret and the EAB key, wherever they came from', async () => {
    const c = baseConfig(dir);
    delete c.dns.providers.bind.tsigSecret;
    c.dns.providers.bind.tsigSecret_file = writeSecret(dir, `${TSIG_SECRET}\n`);
    c.acme.eab = { keyId: 'kid-1', hmacKey: EAB_HMAC };
    const config = await load(writeConfig(dir, c));
    expect(config.dns.providers.bind.options.tsigSecret).toBe(TSIG_SECRET);
    expect(config.acme.eab?.hmacKey).toBe(EAB_HMAC);
    const text = JSON.stringify(describeConfig(config));
    expect(text).not.toContain(TSIG_SECRET);
    expect(text).not.toContain(EAB_HMAC);
    const view = describeConfig(config) as any;
    // Given as a file: printed as the file's path, never as the value.
    expect(view.dns.providers.bind.tsigSecret_file).toBe(c.dns.providers.bind.tsigSecret_file);
    expect(view.dns.providers.bind).not.toHaveProperty('tsigSecret');
    expect(view.dns.providers.bind.tsigKeyName).toBe('certpilot');
    expect(view.acme.eab).toEqual({ keyId: 'kid-1', hmacKey: '[redacted]' });
  });
});

describe('file-level problems', () => {
  test('missing file', async () => {
    const err = await loadError(path.join(dir, 'absent.yaml'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues[0].message).toMatch(/does not exist/);
  });

  test('unreadable path (a directory)', async () => {
    // A directory, not a chmod 000 file: the tests may run as root, who reads any file.
    const file = path.join(dir, 'conf.d.yaml');
    fs.mkdirSync(file);
    const err = await loadError(file);
    expect(err.issues[0].message).toMatch(/cannot be read \(EISDIR\)/);
  });

  test('YAML syntax error carries line and column', async () => {
    const err = await loadError(
      writeConfig(dir, 'acme:\n  directory: letsencrypt\n  email: [unclosed\nstorage: {}\n'),
    );
    expect(err.issues[0].path).toBe('(yaml)');
    expect(err.issues[0].message).toMatch(/^line \d+, column \d+: /);
  });

  test('duplicate YAML keys are an error', async () => {
    const err = await loadError(writeConfig(dir, 'acme:\n  email: a@example.com\n  email: b@example.com\n'));
    expect(err.issues[0].message).toMatch(/line 3, column 3/);
  });

  test('JSON syntax error', async () => {
    const err = await loadError(writeConfig(dir, '{"acme": {"email": }}', '.json'));
    expect(err.issues[0].path).toBe('(json)');
  });

  test('unsupported extension', async () => {
    const file = path.join(dir, 'certpilot.toml');
    fs.writeFileSync(file, '');
    const err = await loadError(file);
    expect(err.issues[0].message).toMatch(/use .yaml, .yml or .json/);
  });

  test('top level must be a mapping', async () => {
    const err = await loadError(writeConfig(dir, '- a\n- b\n'));
    expect(paths(err.issues)).toEqual(['(root)']);
  });
});
