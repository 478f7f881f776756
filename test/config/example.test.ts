import fs from 'node:fs';
import path from 'node:path';
import { describeConfig } from '../../src/config/load';
import { ACME_DIRECTORY_PRESETS } from '../../src/config/formats';
import { schemaLeaves } from '../../src/config/schema';
import { load, makeTempDir, removeDir, TSIG_SECRET, writeSecret } from './helpers';

const root = path.join(__dirname, '..', '..');
const EXAMPLE = path.join(root, 'config', 'certpilot.example.yaml');
const DOCS = path.join(root, 'docs', 'configuration.md');

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

describe('config/certpilot.example.yaml', () => {
  test('loads, with stateDir from the environment and the TSIG secrets from private files', async () => {
    const secret = writeSecret(dir, `${TSIG_SECRET}\n`);
    const text = fs
      .readFileSync(EXAMPLE, 'utf8')
      .replace(/\/etc\/certpilot\/tsig(-internal)?\.secret/g, secret);
    const file = path.join(dir, 'example.yaml');
    fs.writeFileSync(file, text);
    const stateDir = path.join(dir, 'state');

    const config = await load(file, { CERTPILOT_STATE_DIR: stateDir });

    expect(config.storage.stateDir).toBe(stateDir);
    expect(config.acme.directoryUrl).toBe('https://acme-staging-v02.api.letsencrypt.org/directory');
    expect(Object.keys(config.dns.providers).sort()).toEqual(['bind', 'internal']);
    expect(config.dns.providers.bind.options.tsigSecret).toBe(TSIG_SECRET);
    expect(config.certificates.map((c) => c.name)).toEqual(['www-example-com', 'intranet']);
    expect(config.certificates[0].outputs[0]).toMatchObject({ certMode: 0o644, keyMode: 0o640 });
    expect(config.certificates[1].domainProviders).toEqual({ 'portal.corp.example.net': 'internal' });
    expect(JSON.stringify(describeConfig(config))).not.toContain(TSIG_SECRET);
  });

  test('shows the deploy, hook, endpoint, rollback, check, notify and verify options', () => {
    const text = fs.readFileSync(EXAMPLE, 'utf8');
    for (const key of [
      'deploy',
      'hooks',
      'endpoints',
      'rollback',
      'check',
      'notify',
      'verify',
      'webhooks',
      'email',
    ])
      expect({ key, present: new RegExp(`^\\s*#?\\s*${key}:`, 'm').test(text) }).toEqual({
        key,
        present: true,
      });
    for (const type of ['nginx', 'systemd', 'webhook', 'command'])
      expect(text).toMatch(new RegExp(`type: ${type}\\b`));
  });

  test('mentions every schema key', () => {
    const text = fs.readFileSync(EXAMPLE, 'utf8');
    for (const leaf of schemaLeaves()) {
      const key = leaf.path.split('.').pop() as string;
      expect({ key, present: new RegExp(`\\b${key}:`).test(text) }).toEqual({ key, present: true });
    }
  });
});

describe('docs/configuration.md does not drift from the schema', () => {
  const docs = fs.readFileSync(DOCS, 'utf8');

  test.each(schemaLeaves().map((l) => [l.path, l] as const))(
    '%s is documented with its env variable',
    (p, leaf) => {
      expect(docs).toContain(`\`${p}\``);
      if (leaf.env) expect(docs).toContain(`\`${leaf.env}\``);
    },
  );

  test('every preset is documented', () => {
    for (const [name, url] of Object.entries(ACME_DIRECTORY_PRESETS)) {
      expect(docs).toContain(`\`${name}\``);
      expect(docs).toContain(url);
    }
  });
});
