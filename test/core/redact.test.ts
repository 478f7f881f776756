import { PassThrough } from 'node:stream';
import { CertpilotError, describeError } from '../../src/core/errors';
import { createLogger } from '../../src/core/logger';
import {
  clearRegisteredSecrets,
  isSecretName,
  maskUrl,
  MIN_SECRET_LENGTH,
  redact,
  redactText,
  registerSecret,
} from '../../src/core/redact';
import { createNotifier } from '../../src/notify';
import { startMailServer, type MailServer } from '../helpers/mail-server';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/** A value registered the way the config loader registers a resolved secret. */
const SECRET = 'tsig-secret-redact-test-8c1f0e-do-not-print';
const SMTP_PASSWORD = 'smtp-password-redact-test-do-not-print';

afterEach(() => clearRegisteredSecrets());

/** A JSON logger writing into a string. */
function capturedLogger(): { lines: () => string; log: ReturnType<typeof createLogger> } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { lines: () => text, log: createLogger({ format: 'json', level: 'debug', stream }) };
}

/** winston writes asynchronously: wait until `n` lines have arrived (an event, not a timer). */
async function lineCount(get: () => string, n: number): Promise<void> {
  while (get().split('\n').filter(Boolean).length < n) await new Promise((r) => setImmediate(r));
}

describe('a registered secret is masked everywhere', () => {
  test('in a log message and in log metadata, whatever the field is called', async () => {
    registerSecret(SECRET);
    const { lines, log } = capturedLogger();
    log.warn(`nsupdate said: bad key ${SECRET}`, {
      stderr: `key "${SECRET}" rejected`,
      nested: { list: [`x${SECRET}y`] },
      error: new Error(`echo: ${SECRET}`),
    });
    await lineCount(lines, 1);
    const text = lines();
    expect(text).not.toContain(SECRET);
    const record = JSON.parse(text) as Record<string, unknown>;
    expect(record).toMatchObject({
      message: 'nsupdate said: bad key [redacted]',
      stderr: 'key "[redacted]" rejected',
      nested: { list: ['x[redacted]y'] },
      error: 'echo: [redacted]',
    });
  });

  test('in error messages: typed errors at construction, any error when rendered', () => {
    registerSecret(SECRET);
    const typed = new CertpilotError('DNS_UPDATE_FAILED', `rfc2136: server echoed ${SECRET}`);
    expect(typed.message).toBe('rfc2136: server echoed [redacted]');
    // A library's own error (not constructed by us) in a cause chain.
    const foreign = new Error(`request failed: Authorization: Bearer ${SECRET}`);
    const wrapped = new CertpilotError('DNS_UPDATE_FAILED', 'cloudflare: list failed', { cause: foreign });
    expect(describeError(wrapped)).toBe(
      'cloudflare: list failed: caused by: request failed: Authorization: Bearer [redacted]',
    );
    expect(describeError(`thrown string ${SECRET}`)).toBe('thrown string [redacted]');
  });

  describe('in alert bodies', () => {
    let receiver: WebhookReceiver;
    let mail: MailServer;
    beforeAll(async () => {
      receiver = await startWebhookReceiver();
      mail = await startMailServer({ username: 'certpilot', password: SMTP_PASSWORD });
    });
    afterAll(async () => {
      await receiver.close();
      await mail.close();
    });

    test('JSON webhook, Slack webhook and e-mail', async () => {
      registerSecret(SECRET);
      const common = { signatureHeader: 'X-Certpilot-Signature', headers: {}, retries: 0, timeoutMs: 5_000 };
      const notifier = createNotifier(
        {
          on: ['renewal-failed'],
          criticalDays: 7,
          webhooks: [
            { ...common, url: `${receiver.url}/json`, format: 'json' },
            { ...common, url: `${receiver.url}/slack`, format: 'slack' },
          ],
          email: {
            host: mail.host,
            port: mail.port,
            tls: 'none',
            username: 'certpilot',
            password: { value: SMTP_PASSWORD },
            from: 'certpilot@example.test',
            to: ['ops@example.test'],
            timeoutMs: 5_000,
          },
        },
        capturedLogger().log,
      );
      await notifier.notify({
        kind: 'renewal-failed',
        cert: 'www',
        message: `rfc2136: update refused: key ${SECRET} (BADSIG)`,
      });
      const json = await receiver.waitFor((r) => r.path === '/hook/json');
      const slack = await receiver.waitFor((r) => r.path === '/hook/slack');
      const mailed = await mail.waitFor((m) => /Subject: certpilot renewal-failed: www/.test(m.raw));
      for (const body of [json.body, slack.body, mailed.raw]) {
        expect(body).not.toContain(SECRET);
        expect(body).toContain('[redacted]');
      }
      expect(json.json).toMatchObject({ message: 'rfc2136: update refused: key [redacted] (BADSIG)' });
    });
  });
});

describe('registerSecret', () => {
  test('also masks the forms a value takes inside JSON and URLs', () => {
    const value = 'p@ss "word"/with+chars';
    registerSecret(value);
    expect(redactText(JSON.stringify({ v: value }))).toBe('{"v":"[redacted]"}');
    expect(redactText(`https://h/x?p=${encodeURIComponent(value)}`)).toBe('https://h/x?p=[redacted]');
  });

  test('a secret containing another is masked whole', () => {
    registerSecret('abcdef');
    registerSecret('abcdef-longer-secret');
    expect(redactText('x abcdef-longer-secret y abcdef')).toBe('x [redacted] y [redacted]');
  });

  test(`values shorter than ${MIN_SECRET_LENGTH} characters are not masked by value (they would mask ordinary words)`, () => {
    registerSecret('abc');
    registerSecret(42);
    expect(redactText('abc 42')).toBe('abc 42');
  });

  test('regular-expression characters in a secret are taken literally', () => {
    registerSecret('a.b*c+d(e)');
    expect(redactText('a.b*c+d(e) axbbbcd(e)')).toBe('[redacted] axbbbcd(e)');
  });
});

describe('by shape and by name', () => {
  test('PEM private keys are cut out of any text', () => {
    const pem = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----';
    expect(redactText(`x ${pem} y`)).toBe('x [private key redacted] y');
  });

  test.each([
    ['password', true],
    ['PGPASSWORD', true],
    ['Authorization', true],
    ['X-Api-Key', true],
    ['x-apikey', true],
    ['X-Auth-Token', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['AWS_SESSION_TOKEN', true],
    ['hmacKey', true],
    ['key', true],
    ['privateKey', true],
    ['Cookie', true],
    ['secret', true],
    ['keyAuthorization', true],
    // About a secret, not the secret:
    ['secret_file', false],
    ['hmacKey_file', false],
    ['signatureHeader', false],
    ['keyId', false],
    ['keyType', false],
    ['keyPath', false],
    ['sessionName', false],
    ['authorityKeyId', false],
    // Ordinary words:
    ['author', false],
    ['cert', false],
    ['domains', false],
    ['monkey', false],
  ])('isSecretName(%j) is %s', (name, secret) => {
    expect(isSecretName(name)).toBe(secret);
  });

  test('redact masks secret-named fields but keeps booleans and descriptive fields', () => {
    expect(
      redact({ password: 'hunter2', tokenSet: true, apiKey: 12345, keyPath: '/k.pem', reuseKey: false }),
    ).toEqual({
      password: '[redacted]',
      tokenSet: true,
      apiKey: '[redacted]',
      keyPath: '/k.pem',
      reuseKey: false,
    });
  });

  test('URLs lose their password, query values and the path after the first segment', () => {
    expect(maskUrl('https://user:pw@hooks.example.net/services/T0/B0/xyz?token=abc&x=1')).toBe(
      'https://user:[redacted]@hooks.example.net/services/[redacted]?token=[redacted]&x=[redacted]',
    );
    expect(maskUrl('https://example.net/hook')).toBe('https://example.net/hook');
  });
});
