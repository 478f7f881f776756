import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertStore } from '../../src/store/cert-store';
import { makeCa, makeCertificate } from '../helpers/certs';

/**
 * A `renew` with nothing due (the timer's usual run) reads its configuration, the certificates
 * and their state, and plans; it loads nothing for work it does not do. Observed on the built
 * CLI in a plain node process: a preloaded script records every module asked for.
 */

const BIN = path.join(__dirname, '../../bin/certpilot.js');
const DAY_MS = 86_400_000;
let dir: string;
let config: string;
const RECORDER = `
const Module = require('node:module');
const load = Module._load;
const asked = new Set();
Module._load = function (request, parent, isMain) {
  const out = load.apply(this, arguments);
  asked.add(request.replace(/^node:/, ''));
  return out;
};
process.on('exit', () => {
  const files = Object.keys(require.cache).map((f) => f.replace(/.*node_modules\\//, '')).filter((f) => !f.startsWith('/'));
  const packages = [...new Set(files.map((f) => f.split('/')[0]))];
  process.stderr.write('MODULES=' + JSON.stringify({ builtins: [...asked].filter((m) => Module.isBuiltin(m)), packages }) + '\\n');
});
`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-quiet-renew-'));
  const stateDir = path.join(dir, 'state');
  const store = new CertStore({ stateDir, archiveDepth: 5 });
  const ca = makeCa();
  const now = Date.now();
  for (const name of ['www', 'api']) {
    const c = makeCertificate({
      names: [`${name}.example.test`],
      issuer: ca,
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now + 60 * DAY_MS),
    });
    await store.install(name, {
      cert: c.certPem,
      chain: ca.certPem,
      fullchain: c.certPem + ca.certPem,
      key: c.keyPem,
    });
  }
  config = path.join(dir, 'certpilot.yaml');
  writeFileSync(
    config,
    [
      'acme:',
      '  directory: https://127.0.0.1:1/never-contacted',
      '  termsAgreed: true',
      'storage:',
      `  stateDir: ${stateDir}`,
      'dns:',
      '  providers:',
      '    bind: { type: rfc2136, server: 127.0.0.1, tsigKeyName: k, tsigSecret: c2VjcmV0LXNlY3JldA== }',
      'certificates:',
      '  - name: www',
      '    domains: [www.example.test]',
      '    outputs:',
      `      - { fullchain: ${path.join(dir, 'out', 'fullchain.pem')}, key: ${path.join(dir, 'out', 'key.pem')}, mode: 0644, keyMode: 0600 }`,
      '    hooks:',
      '      post: [[systemctl, reload, nginx]]',
      '  - name: api',
      '    domains: [api.example.test]',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a renew with nothing due loads no YAML document model, no network, process or logger modules', () => {
  const recorder = path.join(dir, 'recorder.js');
  writeFileSync(recorder, RECORDER);
  // The first run writes the outputs, which do not exist yet (real work); the timer's later runs
  // find them in place.
  const first = spawnSync(process.execPath, [BIN, 'renew', '--config', config, '--log-level', 'warn'], {
    encoding: 'utf8',
  });
  expect(`${first.stdout}\n${first.stderr}`).toMatch(/www +valid/);
  const r = spawnSync(
    process.execPath,
    ['-r', recorder, BIN, 'renew', '--config', config, '--log-level', 'warn'],
    {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  expect(`${r.stdout}\n${r.stderr}`).toMatch(/www +valid/);
  expect(r.status).toBe(0);
  const loaded = JSON.parse(/^MODULES=(.*)$/m.exec(r.stderr)?.[1] ?? 'null') as {
    builtins: string[];
    packages: string[];
  };
  // What it does need, so the recorder is known to see requires at all.
  expect(loaded.builtins).toEqual(expect.arrayContaining(['crypto', 'fs']));
  expect(loaded.packages).toEqual(expect.arrayContaining(['js-yaml', 'convict']));
  for (const unused of ['child_process', 'http', 'https', 'http2', 'tls', 'dns', 'worker_threads'])
    expect(loaded.builtins).not.toContain(unused);
  for (const unused of [
    'yaml',
    'winston',
    'acme-client',
    '@aws-sdk',
    'prom-client',
    'nodemailer',
    'dns-packet',
  ])
    expect(loaded.packages).not.toContain(unused);
});
