import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';

/**
 * No credential travels in the clear: SMTP AUTH only over TLS unless the relay is on this host;
 * http:// only to this host for every URL that carries a credential (provider API endpoints,
 * deploy and alert webhooks). Each refusal is a config error at the field's path.
 */
let dir: string;
let secret: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-cleartext-'));
  secret = path.join(dir, 'secret');
  await writeFile(secret, 'not-a-real-secret-value\n', { mode: 0o600 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(extra: Record<string, unknown>): Promise<unknown> {
  const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify({ watch: { files: [] }, ...extra }));
  return loadConfig({ path: file });
}

const email = (host: string, tls: string) => ({
  notify: {
    email: {
      host,
      tls,
      port: 25,
      username: 'u',
      password_file: secret,
      from: 'a@example.test',
      to: ['b@example.test'],
    },
  },
});

test('SMTP with a password over tls: none to a remote relay is refused at notify.email.tls', async () => {
  await expect(load(email('smtp.example.test', 'none'))).rejects.toThrow(
    /notify\.email\.tls: none would send the password to smtp\.example\.test in the clear: use starttls or implicit/,
  );
});

test.each(['127.0.0.1', 'localhost', '::1'])(
  'tls: none to a relay on this host (%s) is accepted',
  async (host) => {
    await expect(load(email(host, 'none'))).resolves.toBeDefined();
  },
);

test('starttls to a remote relay is accepted', async () => {
  await expect(load(email('smtp.example.test', 'starttls'))).resolves.toBeDefined();
});

const cloudflare = (baseUrl: string) => ({
  dns: { providers: { cf: { type: 'cloudflare', apiToken_file: secret, baseUrl } } },
});
const route53 = (key: string, url: string) => ({
  dns: {
    providers: {
      aws: { type: 'route53', accessKeyId: 'AKIAEXAMPLE', secretAccessKey_file: secret, [key]: url },
    },
  },
});

test.each([
  [
    'Cloudflare baseUrl',
    cloudflare('http://api.example.test/client/v4'),
    /dns\.providers\.cf\.baseUrl: http:\/\/ to api\.example\.test would send credentials in the clear/,
  ],
  [
    'Route 53 endpoint',
    route53('endpoint', 'http://route53.example.test'),
    /dns\.providers\.aws\.endpoint: http:\/\/ to route53\.example\.test/,
  ],
  [
    'STS endpoint',
    route53('stsEndpoint', 'http://sts.example.test'),
    /dns\.providers\.aws\.stsEndpoint: http:\/\/ to sts\.example\.test/,
  ],
  [
    'alert webhook',
    { notify: { webhooks: [{ url: 'http://hooks.example.test/x' }] } },
    /notify\.webhooks\[0\]\.url: http:\/\/ to hooks\.example\.test/,
  ],
])('%s over http:// to another host is refused', async (_what, extra, message) => {
  await expect(load(extra as Record<string, unknown>)).rejects.toThrow(message);
});

test('http:// to this host (a test server, a local proxy) is accepted', async () => {
  await expect(load(cloudflare('http://127.0.0.1:8080/client/v4'))).resolves.toBeDefined();
  await expect(load({ notify: { webhooks: [{ url: 'http://[::1]:9000/hook' }] } })).resolves.toBeDefined();
});
