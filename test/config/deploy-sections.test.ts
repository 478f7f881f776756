import { loadConfig, describeConfig } from '../../src/config/load';
import { ConfigError } from '../../src/core/errors';
import { makeTempDir, removeDir, writeConfig, writeSecret } from './helpers';

/** The loader parses deploy, hooks, verify and notify with their section parsers (src/config/deploy.ts and neighbours). */
let dir: string;
beforeEach(() => {
  dir = makeTempDir();
});
afterEach(() => removeDir(dir));

const WEBHOOK_SECRET = 'V0VCSE9PSy1TRUNSRVQtZG8tbm90LXByaW50';

function base(extra: Record<string, unknown>, cert: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    storage: { stateDir: dir },
    dns: {
      providers: {
        p: { type: 'exec', command: '/bin/true' },
      },
    },
    certificates: [{ name: 'www', domains: ['www.example.test'], ...cert }],
    ...extra,
  };
}

test('deploy sections load, with defaults, and secrets are masked in describeConfig', async () => {
  const file = writeConfig(
    dir,
    base(
      {
        hooks: { post: [['/usr/bin/logger', 'renewed']] },
        verify: { timeout: '30s' },
        notify: { webhooks: [{ url: 'http://127.0.0.1:9/hook', secret: WEBHOOK_SECRET }] },
      },
      {
        endpoints: ['127.0.0.1:8443'],
        deploy: [{ type: 'nginx', reload: ['nginx', '-s', 'reload'] }],
      },
    ),
  );
  const config = await loadConfig({ path: file });
  expect(config.verify?.timeoutMs).toBe(30_000);
  expect(config.certificates[0]!.endpoints).toEqual([
    expect.objectContaining({ host: '127.0.0.1', port: 8443 }),
  ]);
  expect(config.certificates[0]!.rollback).toBe(true);
  expect(config.certificates[0]!.deploy?.[0]).toMatchObject({ type: 'nginx' });
  const printed = JSON.stringify(describeConfig(config));
  expect(printed).not.toContain(WEBHOOK_SECRET);
  expect(printed).toContain('[redacted]');
});

test('problems in deploy sections are reported with their paths, together with the rest', async () => {
  const file = writeConfig(
    dir,
    base(
      { verify: { timeout: 'soon' }, acme: { directory: 'ftp://ca.example' } },
      { deploy: [{ type: 'teleport' }], rollback: 'yes' },
    ),
  );
  const err = (await loadConfig({ path: file }).catch((e: unknown) => e)) as ConfigError;
  expect(err).toBeInstanceOf(ConfigError);
  const paths = err.issues.map((i) => i.path);
  expect(paths).toEqual(
    expect.arrayContaining([
      'verify.timeout',
      'acme.directory',
      'certificates[0].deploy[0].type',
      'certificates[0].rollback',
    ]),
  );
});

test('a webhook secret file readable by others is refused', async () => {
  const secret = writeSecret(dir, WEBHOOK_SECRET, 0o644);
  const file = writeConfig(
    dir,
    base({ notify: { webhooks: [{ url: 'http://127.0.0.1:9/x', secret_file: secret }] } }),
  );
  const err = (await loadConfig({ path: file }).catch((e: unknown) => e)) as ConfigError;
  expect(err.issues.map((i) => i.path)).toEqual(['notify.webhooks[0].secret_file']);
  expect(err.message).not.toContain(WEBHOOK_SECRET);
});

test('a deploy webhook secret file is checked at its index path, even when the certificate has other problems', async () => {
  const secret = writeSecret(dir, WEBHOOK_SECRET, 0o640);
  const file = writeConfig(
    dir,
    base(
      {},
      {
        keyType: 'rsa-1024',
        deploy: [{ type: 'nginx' }, { type: 'webhook', url: 'http://127.0.0.1:9/x', secret_file: secret }],
      },
    ),
  );
  const err = (await loadConfig({ path: file }).catch((e: unknown) => e)) as ConfigError;
  expect(err.issues.map((i) => i.path).sort()).toEqual([
    'certificates[0].deploy[1].secret_file',
    'certificates[0].keyType',
  ]);
  expect(err.message).not.toContain(WEBHOOK_SECRET);
});

test("an unknown top-level key names every section as allowed, the section parsers' too", async () => {
  const file = writeConfig(dir, base({ colour: 'blue' }));
  const err = (await loadConfig({ path: file }).catch((e: unknown) => e)) as ConfigError;
  expect(err.issues).toEqual([
    {
      path: 'colour',
      message:
        'unknown key (allowed: acme, storage, defaults, daemon, fleet, dns, certificates, hooks, notify, verify, check, watch)',
    },
  ]);
});

test('a managed certificate endpoint may use SMTP STARTTLS (port 25 unless given)', async () => {
  const file = writeConfig(
    dir,
    base(
      {},
      {
        endpoints: [
          { host: 'mx.example.test', starttls: 'smtp' },
          { host: 'mx.example.test', port: 587, starttls: 'smtp' },
        ],
      },
    ),
  );
  const config = await loadConfig({ path: file });
  expect(config.certificates[0]!.endpoints).toEqual([
    { host: 'mx.example.test', port: 25, starttls: 'smtp' },
    { host: 'mx.example.test', port: 587, starttls: 'smtp' },
  ]);
  const bad = writeConfig(dir, base({}, { endpoints: [{ host: 'mx.example.test', starttls: 'imap' }] }));
  const err = (await loadConfig({ path: bad }).catch((e: unknown) => e)) as ConfigError;
  expect(err.issues.map((i) => i.path)).toEqual(['certificates[0].endpoints[0].starttls']);
});
