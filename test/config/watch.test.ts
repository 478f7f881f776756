/* eslint-disable @typescript-eslint/no-explicit-any -- tests build deliberately ill-typed configurations */
import path from 'node:path';
import { describeConfig } from '../../src/config/load';
import { DEFAULT_CHECK, checkSettingsOf, resolveThresholds } from '../../src/config/access';
import { baseConfig, load, loadError, makeTempDir, paths, removeDir, writeConfig } from './helpers';

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

describe('watch-only configuration (certpilot as a pure monitor)', () => {
  test('needs no acme, dns or certificates section', async () => {
    const config = await load(
      writeConfig(dir, {
        watch: {
          files: ['/etc/ssl/commercial/*.pem'],
          endpoints: ['www.example.com:443', 'mail.example.com'],
        },
      }),
    );
    expect(config.certificates).toEqual([]);
    expect(config.dns.providers).toEqual({});
    expect(config.watch).toEqual({
      files: [{ path: '/etc/ssl/commercial/*.pem', checkChain: true, thresholds: {} }],
      endpoints: [
        { host: 'www.example.com', port: 443, thresholds: {} },
        { host: 'mail.example.com', port: 443, thresholds: {} },
      ],
    });
    // No `check:` section: the built-in defaults apply.
    expect(config.check).toBeUndefined();
    expect(checkSettingsOf(config)).toEqual(DEFAULT_CHECK);
  });

  test('full entries: names, key, thresholds, STARTTLS with its default port', async () => {
    const config = await load(
      writeConfig(dir, {
        check: {
          warningDays: 30,
          criticalDays: 10,
          warningRatio: 0.3,
          criticalRatio: 1,
          connectTimeout: '2s',
          handshakeTimeout: 3000,
          concurrency: 100,
        },
        watch: {
          files: [
            {
              path: '/etc/haproxy/certs/shop.pem',
              name: 'shop',
              key: '/etc/haproxy/certs/shop.key',
              checkChain: false,
              names: ['Shop.Example.com', '*.shop.example.com'],
              warningDays: 45,
            },
          ],
          endpoints: [
            {
              host: 'mail.example.com',
              starttls: 'smtp',
              name: 'mx',
              connectAddress: '192.0.2.10',
              servername: 'mx.example.com',
              caBundle: '/etc/ssl/internal-ca.pem',
              criticalDays: 3,
            },
            { host: 'smtp.example.com', port: 587, starttls: 'smtp' },
          ],
        },
      }),
    );
    expect(config.check).toEqual({
      thresholds: { warningDays: 30, criticalDays: 10, warningRatio: 0.3, criticalRatio: 1 },
      connectTimeoutMs: 2000,
      handshakeTimeoutMs: 3000,
      concurrency: 100,
    });
    expect(config.watch?.files[0]).toEqual({
      path: '/etc/haproxy/certs/shop.pem',
      name: 'shop',
      key: '/etc/haproxy/certs/shop.key',
      checkChain: false,
      names: ['shop.example.com', '*.shop.example.com'],
      thresholds: { warningDays: 45 },
    });
    expect(config.watch?.endpoints).toEqual([
      {
        host: 'mail.example.com',
        port: 25,
        servername: 'mx.example.com',
        connectAddress: '192.0.2.10',
        caBundle: '/etc/ssl/internal-ca.pem',
        name: 'mx',
        starttls: 'smtp',
        thresholds: { criticalDays: 3 },
      },
      { host: 'smtp.example.com', port: 587, starttls: 'smtp', thresholds: {} },
    ]);
    const view = describeConfig(config) as any;
    expect(view.check.warningDays).toBe(30);
    expect(view.watch.endpoints[0].name).toBe('mx');
  });

  test('per-certificate thresholds under certificates[].check', async () => {
    const raw = baseConfig(dir);
    raw.certificates[0].check = { warningDays: 10, criticalDays: 2 };
    raw.certificates[0].endpoints = ['www.example.com:8443'];
    const config = await load(writeConfig(dir, raw));
    expect(config.certificates[0]?.thresholds).toEqual({ warningDays: 10, criticalDays: 2 });
    expect(config.certificates[0]?.endpoints).toEqual([{ host: 'www.example.com', port: 8443 }]);
    expect(resolveThresholds(checkSettingsOf(config).thresholds, config.certificates[0]?.thresholds)).toEqual(
      {
        ...DEFAULT_CHECK.thresholds,
        warningDays: 10,
        criticalDays: 2,
      },
    );
  });
});

describe('problems are reported all at once, each with its path', () => {
  test('bad values and unknown keys across check, watch and certificates', async () => {
    const raw = baseConfig(dir);
    raw.certificates[0].check = { warningDays: 1, criticalDays: 5, bogus: 1 };
    raw.check = { warningDays: -1, concurrency: 0, handshakeTimeout: 'soon', extra: true };
    raw.watch = {
      files: [
        'relative/*.pem',
        { name: 'x' },
        { path: '/a.pem', checkChain: 'yes', names: ['bad name!'] },
        42,
      ],
      endpoints: [
        'host:99999',
        { host: 'ok.example.com', starttls: 'imap', warningRatio: 2 },
        { port: 443 },
        { host: 'a.example.com', sni: 'b' },
        { host: 'b.example.com', warningDays: 3, criticalDays: 4 },
      ],
      other: [],
    };
    const err = await loadError(writeConfig(dir, raw));
    expect(paths(err.issues)).toEqual(
      [
        'certificates[0].check.bogus',
        'certificates[0].check.warningDays',
        'check.concurrency',
        'check.extra',
        'check.handshakeTimeout',
        'check.warningDays',
        'watch.endpoints[0]',
        'watch.endpoints[1].starttls',
        'watch.endpoints[1].warningRatio',
        'watch.endpoints[2].host',
        'watch.endpoints[3].sni',
        'watch.endpoints[4].warningDays',
        'watch.files[0]',
        'watch.files[1].path',
        'watch.files[2].checkChain',
        'watch.files[2].names[0]',
        'watch.files[3]',
        'watch.other',
      ].sort(),
    );
    const text = err.message;
    expect(text).toContain('watch.files[0]: must be an absolute path');
    expect(text).toContain('watch.endpoints[3].sni: unknown key (allowed: host, port, servername');
    expect(text).toContain('watch.endpoints[4].warningDays: warningDays (3) is less than criticalDays (4)');
  });

  test('sections of the wrong type', async () => {
    const err = await loadError(writeConfig(dir, { check: [1], watch: 'all of them' }));
    expect(paths(err.issues)).toEqual(['check', 'watch']);
  });

  test('watch entries do not need a state directory or CA account to be valid', async () => {
    const config = await load(writeConfig(dir, { watch: { files: [path.join(dir, 'none.pem')] } }));
    expect(config.watch?.files).toHaveLength(1);
  });
});

test('the annotated example configures check, watch and a certificate threshold', async () => {
  const fs = await import('node:fs');
  const text = fs
    .readFileSync(path.join(__dirname, '..', '..', 'config', 'certpilot.example.yaml'), 'utf8')
    // The example's TSIG secret files do not exist here; an inline secret keeps it loadable.
    .replace(/tsigSecret_file: \S+/g, 'tsigSecret: VFNJRy1TRUNSRVQtZG8tbm90LXByaW50');
  const config = await load(writeConfig(dir, text));
  expect(config.check?.thresholds).toEqual({
    warningDays: 21,
    criticalDays: 7,
    warningRatio: 0.25,
    criticalRatio: 0.1,
  });
  expect(config.watch?.files.map((f) => f.name ?? f.path)).toEqual(['/etc/ssl/commercial/*.pem', 'shop']);
  expect(config.watch?.endpoints.map((e) => [e.name ?? e.host, e.port])).toEqual([
    ['www.example.com', 443],
    ['mx', 25],
    ['api.example.com', 443],
  ]);
  expect(config.certificates[0]?.thresholds).toEqual({ warningDays: 25 });
});
