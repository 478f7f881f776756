import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { DeployAwareConfig } from '../../src/config/types';
import { withStaging } from '../../src/cli/staging';
import { runCli } from '../helpers/testbed';

/**
 * `--staging`: the CA's staging directory for one run, kept apart from production (its own
 * state directory, no outputs, deploy steps, endpoints or hooks), and a clear refusal for a CA
 * whose staging directory is not known. Nothing here contacts a CA.
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-staging-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeConfig(directory: string): Promise<string> {
  const secret = path.join(dir, 'tsig.secret');
  await writeFile(secret, 'c2VjcmV0LXNlY3JldA==\n', { mode: 0o600 });
  const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    file,
    stringify({
      acme: { directory, termsAgreed: true },
      storage: { stateDir: path.join(dir, 'state') },
      dns: {
        resolvers: ['127.0.0.1:1'],
        providers: {
          bind: { type: 'rfc2136', server: '127.0.0.1', tsigKeyName: 'k', tsigSecret_file: secret },
        },
      },
      hooks: { pre: [['true']] },
      certificates: [
        {
          name: 'www',
          domains: ['www.example.test'],
          outputs: [{ fullchain: '/etc/ssl/certpilot/www.pem', key: '/etc/ssl/certpilot/www.key' }],
          endpoints: ['www.example.test:443'],
          deploy: [{ type: 'nginx' }],
          hooks: { post: [['true']] },
        },
      ],
    }),
  );
  return file;
}

test("Let's Encrypt becomes its staging directory; state apart; no outputs, deploy, endpoints or hooks", async () => {
  const config = (await loadConfig({ path: await writeConfig('letsencrypt') })) as DeployAwareConfig;
  expect(config.acme.directoryUrl).toBe('https://acme-v02.api.letsencrypt.org/directory');
  expect(config.certificates[0]!.deploy).toHaveLength(1);
  const staged = withStaging(config) as DeployAwareConfig;
  expect(staged.acme.directoryUrl).toBe('https://acme-staging-v02.api.letsencrypt.org/directory');
  expect(staged.storage.stateDir).toBe(path.join(dir, 'state', 'staging'));
  expect(staged.hooks).toBeUndefined();
  expect(staged.certificates[0]).toMatchObject({
    name: 'www',
    domains: ['www.example.test'],
    outputs: [],
    endpoints: [],
    deploy: [],
  });
  expect(staged.certificates[0]!.hooks).toBeUndefined();
  // The production config object is untouched.
  expect(config.certificates[0]!.outputs).toHaveLength(1);
  // Already staging: kept.
  expect(withStaging(staged).acme.directoryUrl).toBe(staged.acme.directoryUrl);
});

test('a CA without a known staging directory: exit 2, one line, nothing written', async () => {
  const file = await writeConfig('https://127.0.0.1:1/directory');
  const res = await runCli(['renew', '--staging', '--config', file]);
  expect(res.code).toBe(2);
  expect(res.stderr.trim()).toBe(
    'certpilot: --staging: no staging directory is known for https://127.0.0.1:1/directory ' +
      '(known: letsencrypt, google, buypass); point acme.directory at the staging CA instead',
  );
  expect(existsSync(path.join(dir, 'state'))).toBe(false);
});
