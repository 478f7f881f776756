import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';
import { clearRegisteredSecrets, redactText } from '../../src/core/redact';

/**
 * The configuration registers every secret it resolves (inline, from a `_file`, from the
 * environment), so the redaction policy masks it by value from then on.
 */
const TSIG_INLINE = 'VFNJRy1pbmxpbmUtcmVkYWN0LXRlc3Q=';
const TSIG_FROM_FILE = 'VFNJRy1maWxlLXJlZGFjdC10ZXN0';
const TSIG_FROM_ENV = 'VFNJRy1lbnYtcmVkYWN0LXRlc3Q=';
const EAB_FROM_FILE = 'RUFCLWZpbGUtcmVkYWN0LXRlc3Q';
const WEBHOOK_SECRET = 'whsec-inline-redact-test';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-redact-'));
  clearRegisteredSecrets();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
  return file;
}

function provider(extra: Record<string, unknown>): Record<string, unknown> {
  return { type: 'rfc2136', server: '127.0.0.1', tsigKeyName: 'certpilot', zones: ['example.com'], ...extra };
}

test('secrets resolved inline, from files and from the environment are registered', async () => {
  const config = {
    acme: {
      directory: 'letsencrypt-staging',
      email: 'ops@example.com',
      termsAgreed: true,
      eab: { keyId: 'kid', hmacKey_file: write('eab', `${EAB_FROM_FILE}\n`) },
    },
    storage: { stateDir: path.join(dir, 'state') },
    dns: {
      providers: {
        inline: provider({ tsigSecret: TSIG_INLINE }),
        file: provider({ tsigSecret_file: write('tsig', TSIG_FROM_FILE) }),
        env: provider({}),
      },
    },
    certificates: [
      {
        name: 'www',
        domains: ['example.com'],
        dns: { provider: 'inline' },
        deploy: [{ type: 'webhook', url: 'http://127.0.0.1:9/x', secret: WEBHOOK_SECRET }],
      },
    ],
  };
  const before = [TSIG_INLINE, TSIG_FROM_FILE, TSIG_FROM_ENV, EAB_FROM_FILE, WEBHOOK_SECRET];
  expect(before.map(redactText)).toEqual(before);
  await loadConfig({
    path: write('config.yaml', stringify(config)),
    env: { CERTPILOT_RFC2136_TSIG_SECRET: TSIG_FROM_ENV },
  });
  expect(before.map((s) => redactText(`x ${s} y`))).toEqual(before.map(() => 'x [redacted] y'));
});
