import fs from 'node:fs';
import path from 'node:path';
import { isInheritedEnv } from '../../src/core/process';
import { CERT_VAR_NAMES } from '../../src/deploy/env';
import { createBindBackend, type BindBackend } from '../providers/bind-backend';
import { startCloudflareServer, type CloudflareTestServer } from '../helpers/cloudflare-server';
import { startMailServer, type MailServer } from '../helpers/mail-server';
import { startRoute53Server, type Route53TestServer } from '../helpers/route53-server';
import { runCli, startTestbed, type CliResult, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * Secrets (issue #7 item 6). Real flows run with distinctive secret values: issuance through
 * Pebble + BIND with the rfc2136 provider (TSIG secret from a 0600 file), a failing one (wrong
 * TSIG secret: BADSIG) and a refused one (frozen zone), Route 53 and Cloudflare issuances
 * through their loopback API servers (mirrored into BIND so Pebble validates for real), the
 * same providers failing (AccessDenied, wrong token), `config check` in text and JSON with
 * every secret configured inline and as files, deploy hooks and a webhook deploy step, and
 * webhook + SMTP alerts. Everything certpilot prints is captured: every log line at debug
 * level in JSON, stdout (reports with their error messages), hook argv and environment, and
 * what the alert and deploy receivers got. None of it may hold a secret or a PEM private key.
 */

// The AWS SDK must never look for real credentials or reach AWS.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

const EAB_HMAC = 'RUFCLUhNQUMtcmVsaWFiaWxpdHktc2VjcmV0';
/** Base64, accepted by the provider, but not the key BIND knows: updates fail with BADSIG. */
const WRONG_TSIG = 'V1JPTkctVFNJRy1yZWxpYWJpbGl0eS1zZWNyZXQ=';
const AWS_SECRET_ACCESS_KEY = 'AwsSecretKey-reliability-9f81c2-do-not-print';
const AWS_SESSION_TOKEN = 'AwsSessionToken-reliability-77ad02-do-not-print';
const CF_TOKEN = 'cf-token-reliability-3b7e51-do-not-print';
const CF_WRONG_TOKEN = 'cf-wrong-token-reliability-c0ffee-do-not-print';
const SMTP_PASSWORD = 'smtp-password-reliability-5e2d-do-not-print';
const ALERT_HMAC = 'whsec-alert-reliability-a41b-do-not-print';
const DEPLOY_HMAC = 'whsec-deploy-reliability-d17e-do-not-print';
/** Credentials that hide in plain settings: a webhook header, a URL query and userinfo, a hook's env. */
const HEADER_TOKEN = 'header-bearer-reliability-61f0-do-not-print';
const URL_TOKEN = 'url-query-token-reliability-0a9c-do-not-print';
const URL_PASSWORD = 'url-password-reliability-e3b8-do-not-print';
const HOOK_ENV_TOKEN = 'hook-env-token-reliability-47d1-do-not-print';

const ZONE = 'example.test';

let tb: Testbed;
let backend: BindBackend;
let r53: Route53TestServer;
let cf: CloudflareTestServer;
let receiver: WebhookReceiver;
let mail: MailServer;
let secretDir: string;
let stateDir: string;

/**
 * A new ACME account before a run that must reach the DNS provider: Pebble 2.4 reuses a valid
 * authorization about 1 time in 100 even with PEBBLE_AUTHZREUSE=0, and a re-issue of a name
 * with nothing to validate never meets the failure under test. A new account has none to reuse.
 */
function freshAccount(): void {
  fs.rmSync(path.join(stateDir, 'accounts'), { recursive: true, force: true });
}

/** Every secret, including the live TSIG secret of the test BIND (random per run). */
function secrets(): Record<string, string> {
  return {
    EAB_HMAC,
    TSIG_SECRET: tb.bind.tsig.secret,
    WRONG_TSIG,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    CF_TOKEN,
    CF_WRONG_TOKEN,
    SMTP_PASSWORD,
    ALERT_HMAC,
    DEPLOY_HMAC,
    HEADER_TOKEN,
    URL_TOKEN,
    URL_PASSWORD,
    HOOK_ENV_TOKEN,
  };
}

/** Everything captured in this file, checked once more at the end. */
const captured: { what: string; text: string }[] = [];

/** No secret and no PEM private key in `text`; a failure names the secret and where it was. */
function expectClean(what: string, text: string): void {
  captured.push({ what, text });
  expectNoSecret(what, text);
}

function expectNoSecret(what: string, text: string): void {
  const found = Object.entries(secrets())
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
  expect({ what, secretsFound: found }).toEqual({ what, secretsFound: [] });
  expect({ what, privateKey: /PRIVATE KEY/.test(text) }).toEqual({ what, privateKey: false });
}

interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

/** The JSON log records on stderr (a configuration error is printed as plain text instead). */
function logLines(res: CliResult): LogLine[] {
  return res.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** `certpilot ARGS --log-level debug --log-format json`, with stdout and stderr checked. */
async function cli(what: string, args: string[]): Promise<CliResult & { logs: LogLine[] }> {
  const res = await runCli([...args, '--log-level', 'debug', '--log-format', 'json']);
  expectClean(`${what}: stdout`, res.stdout);
  expectClean(`${what}: stderr`, res.stderr);
  return { ...res, logs: logLines(res) };
}

interface Report {
  ok: boolean;
  certificates: { name: string; status: string; error: string | null; errorCode: string | null }[];
}

async function renew(what: string, config: string, ...args: string[]) {
  const res = await cli(what, ['renew', ...args, '--config', config, '--json']);
  const report = JSON.parse(res.stdout) as Report;
  // Every stderr line is a log record, and debug level really was on: the secrets had every
  // chance to show up.
  expect(res.stderr.split('\n').filter((l) => l !== '')).toHaveLength(res.logs.length);
  expect(res.logs.some((l) => l.level === 'debug')).toBe(true);
  return { ...res, report };
}

function secretFile(name: string, value: string): string {
  const file = path.join(secretDir, name);
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

const fast = { propagationTimeout: '20s', propagationInterval: '100ms' };

beforeAll(async () => {
  tb = await startTestbed();
  backend = await createBindBackend(tb.bind);
  r53 = await startRoute53Server({
    zones: [{ id: 'Z1PUBLIC', name: ZONE }],
    onChange: (zone, fqdn, values) => backend.apply(zone, fqdn, values),
    pendingPolls: 0,
  });
  cf = await startCloudflareServer({
    token: CF_TOKEN,
    zones: [{ name: ZONE }],
    onChange: (zone, fqdn, values) => backend.apply(zone, fqdn, values),
  });
  receiver = await startWebhookReceiver();
  mail = await startMailServer({ username: 'certpilot', password: SMTP_PASSWORD });
  secretDir = path.join(tb.dir, 'secrets');
  fs.mkdirSync(secretDir, { mode: 0o700 });
  stateDir = path.join(tb.dir, 'state');
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([r53?.stop(), cf?.stop(), receiver?.close(), mail?.close()]);
  await backend?.close();
  await tb?.stop();
});

/** Alerts by webhook (HMAC-signed) and by SMTP (AUTH with the password from a 0600 file). */
function notify(): Record<string, unknown> {
  return {
    webhooks: [{ url: `${receiver.url}/alert`, format: 'json', secret: ALERT_HMAC, retries: 0 }],
    email: {
      host: '127.0.0.1',
      port: mail.port,
      tls: 'none',
      username: 'certpilot',
      password_file: secretFile('smtp.password', SMTP_PASSWORD),
      from: 'certpilot@example.test',
      to: ['ops@example.test'],
      timeout: '5s',
    },
  };
}

const extra = (): Record<string, unknown> => ({
  storage: { stateDir },
  defaults: { renewal: { maxOrdersPerWeek: 50 } },
  notify: notify(),
});

/** A node one-liner that writes its argv and whole environment as JSON into `file`. */
function dumpHook(file: string): string[] {
  return [
    process.execPath,
    '-e',
    'require("fs").writeFileSync(process.argv[1], JSON.stringify({argv: process.argv.slice(2), env: process.env}))',
    file,
    '{cert}',
    '{key}',
    '{fullchain}',
    '--name={name}',
    '--serial={serial}',
  ];
}

describe('rfc2136 through Pebble + BIND', () => {
  const hookDump = (): string => path.join(tb.dir, 'hook-dump.json');

  test('a full issuance with a deploy hook and a signed webhook deploy: no secret anywhere, hooks get a minimal environment', async () => {
    const outDir = path.join(tb.dir, 'out');
    const config = await tb.writeConfig(
      [
        {
          name: 'rfc',
          domains: [`rfc.${ZONE}`, `*.rfc.${ZONE}`],
          dns: { provider: 'bind' },
          outputs: [{ fullchain: path.join(outDir, 'fullchain.pem'), key: path.join(outDir, 'key.pem') }],
          hooks: { deploy: [dumpHook(hookDump())] },
          deploy: [
            {
              type: 'webhook',
              url: `${receiver.url}/deploy?token=${URL_TOKEN}`,
              headers: { Authorization: `Bearer ${HEADER_TOKEN}` },
              secret_file: secretFile('deploy.hmac', DEPLOY_HMAC),
              includeCertificate: true,
              retries: 0,
            },
          ],
        },
      ],
      extra(),
      { bind: tb.bindProvider(fast) },
    );
    // Secrets in certpilot's own environment must not reach hooks either.
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'AKIARELIABILITYENV',
      AWS_SECRET_ACCESS_KEY,
      AWS_SESSION_TOKEN,
      SMTP_PASSWORD,
    });
    let run;
    try {
      run = await renew('rfc2136 issuance', config);
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'SMTP_PASSWORD'])
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
    expect(run.code).toBe(0);
    expect(run.report.certificates[0]).toMatchObject({ name: 'rfc', status: 'renewed' });
    expect(run.logs.map((l) => l.message)).toEqual(
      expect.arrayContaining(['acme account registered', 'order created', 'rfc2136 update applied']),
    );

    // The hook: argv and environment hold paths and serials, never key material or secrets.
    const dumpText = fs.readFileSync(hookDump(), 'utf8');
    expectClean('deploy hook argv and environment', dumpText);
    const dump = JSON.parse(dumpText) as { argv: string[]; env: Record<string, string> };
    const certDir = path.join(stateDir, 'certs', 'rfc');
    expect(dump.argv.slice(0, 3)).toEqual(
      ['cert.pem', 'privkey.pem', 'fullchain.pem'].map((f) => path.join(certDir, f)),
    );
    expect(
      Object.keys(dump.env).filter((k) => !isInheritedEnv(k) && !CERT_VAR_NAMES.includes(k as never)),
    ).toEqual([]);

    // The webhook deploy step: signed with the secret (not carrying it), the configured
    // credentials sent where they belong (header, query) and nowhere else, certificate only.
    const deployed = await receiver.waitFor((r) => r.path.startsWith('/hook/deploy'));
    expect(deployed.headers['x-certpilot-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(deployed.headers.authorization).toBe(`Bearer ${HEADER_TOKEN}`);
    expect(deployed.path).toBe(`/hook/deploy?token=${URL_TOKEN}`);
    expect(deployed.body).toContain('BEGIN CERTIFICATE');
    expectClean('webhook deploy request body', deployed.body);
    expect(run.logs.filter((l) => l.message === 'webhook delivered')).toHaveLength(1);

    // Private keys: 0600 in the store, in the output and for the ACME account.
    expect(fs.statSync(path.join(certDir, 'privkey.pem')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(outDir, 'key.pem')).mode & 0o777).toBe(0o600);
    const accounts = fs.readdirSync(path.join(stateDir, 'accounts'));
    expect(accounts).toHaveLength(1);
    const accountKey = path.join(stateDir, 'accounts', accounts[0]!, 'account.key');
    expect(fs.readFileSync(accountKey, 'utf8')).toContain('PRIVATE KEY');
    expect(fs.statSync(accountKey).mode & 0o777).toBe(0o600);
    // Every file in the store holding a private key is private.
    const keyFiles: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && fs.readFileSync(p, 'utf8').includes('PRIVATE KEY')) keyFiles.push(p);
      }
    };
    walk(stateDir);
    expect(keyFiles.length).toBeGreaterThanOrEqual(2);
    for (const f of keyFiles) expect({ f, mode: fs.statSync(f).mode & 0o777 }).toEqual({ f, mode: 0o600 });
  });

  test('a wrong TSIG secret: BADSIG in the error, alerts by webhook and mail; no secret anywhere', async () => {
    const config = await tb.writeConfig(
      [{ name: 'badsig', domains: [`badsig.${ZONE}`], dns: { provider: 'wrong' } }],
      extra(),
      { wrong: tb.bindProvider({ ...fast, tsigSecret_file: undefined, tsigSecret: WRONG_TSIG }) },
    );
    const alertsBefore = receiver.requests.length;
    freshAccount();
    const run = await renew('rfc2136 wrong TSIG secret', config);
    expect(run.code).toBe(1);
    expect(run.report.certificates[0]).toMatchObject({ status: 'failed', errorCode: 'DNS_UPDATE_FAILED' });
    expect(run.report.certificates[0]!.error).toMatch(/rejected: NOTAUTH, TSIG error BADSIG/);

    const alert = await receiver.waitFor(
      (r, i = receiver.requests.indexOf(r)) => i >= alertsBefore && r.path.endsWith('/alert'),
    );
    expect((alert.json as { kind: string }).kind).toBe('renewal-failed');
    expectClean('webhook alert request', JSON.stringify({ headers: alert.headers, body: alert.body }));
    const mailed = await mail.waitFor((m) => /Subject: certpilot renewal-failed: badsig/.test(m.raw));
    expect(mailed.user).toBe('certpilot'); // AUTH with the password from the file succeeded
    expectClean('alert mail', mailed.raw);
  });

  test('a frozen zone: REFUSED, nothing written so no cleanup; no secret anywhere', async () => {
    const config = await tb.writeConfig(
      [{ name: 'frozen', domains: [`frozen.${ZONE}`], dns: { provider: 'bind' } }],
      extra(),
      { bind: tb.bindProvider(fast) },
    );
    await tb.bind.freeze(ZONE);
    try {
      freshAccount();
      const run = await renew('rfc2136 frozen zone', config);
      expect(run.code).toBe(1);
      expect(run.report.certificates[0]!.error).toMatch(/REFUSED/);
      expect(run.logs.some((l) => l.message === 'challenge record cleanup failed')).toBe(false);
    } finally {
      await tb.bind.thaw(ZONE);
    }
  });
});

describe('Route 53 through its REST-XML test server', () => {
  const provider = (): Record<string, unknown> => ({
    type: 'route53',
    endpoint: r53.endpoint,
    region: 'us-east-1',
    accessKeyId: 'AKIARELIABILITYTEST',
    secretAccessKey_file: secretFile('aws.secret', AWS_SECRET_ACCESS_KEY),
    sessionToken: AWS_SESSION_TOKEN,
    maxRetries: 0,
    ...fast,
  });

  test('an issuance with static keys and a session token; then AccessDenied: no secret anywhere', async () => {
    const config = await tb.writeConfig(
      [{ name: 'r53', domains: [`r53.${ZONE}`], dns: { provider: 'r53' } }],
      extra(),
      { r53: provider() },
    );
    const ok = await renew('route53 issuance', config);
    expect(ok.code).toBe(0);
    expect(ok.report.certificates[0]!.status).toBe('renewed');
    expect(r53.count('ChangeResourceRecordSets')).toBeGreaterThanOrEqual(2);

    r53.deny('ChangeResourceRecordSets');
    try {
      freshAccount();
      const denied = await renew('route53 AccessDenied', config, '--force');
      expect(denied.code).toBe(1);
      expect(denied.report.certificates[0]!.error).toMatch(/access denied/);
    } finally {
      r53.allow('ChangeResourceRecordSets');
    }
  });
});

describe('Cloudflare through its v4 test server', () => {
  const provider = (token: string): Record<string, unknown> => ({
    type: 'cloudflare',
    baseUrl: cf.baseUrl,
    apiToken_file: secretFile(`cf-${token.length}.token`, token),
    maxRetries: 0,
    ...fast,
  });

  test('an issuance with the API token; then a wrong token: no secret anywhere', async () => {
    const config = await tb.writeConfig(
      [{ name: 'cf', domains: [`cf.${ZONE}`], dns: { provider: 'cf' } }],
      extra(),
      { cf: provider(CF_TOKEN) },
    );
    const ok = await renew('cloudflare issuance', config);
    expect(ok.code).toBe(0);
    expect(ok.report.certificates[0]!.status).toBe('renewed');
    expect(new Set(cf.authHeaders)).toEqual(new Set([`Bearer ${CF_TOKEN}`]));

    const wrong = await tb.writeConfig(
      [{ name: 'cf', domains: [`cf.${ZONE}`], dns: { provider: 'cf' } }],
      extra(),
      { cf: provider(CF_WRONG_TOKEN) },
    );
    freshAccount();
    const failed = await renew('cloudflare wrong token', wrong, '--force');
    expect(failed.code).toBe(1);
    expect(failed.report.certificates[0]!.error).toMatch(/HTTP 403.*Authentication error/);
  });
});

describe('config check', () => {
  /** Every secret certpilot can be given, inline where possible. */
  async function everySecret(asFiles: boolean): Promise<string> {
    const s = (key: string, name: string, value: string): Record<string, string> =>
      asFiles ? { [`${key}_file`]: secretFile(name, value) } : { [key]: value };
    return tb.writeConfig(
      [
        {
          name: 'all',
          domains: [`all.${ZONE}`],
          dns: { provider: 'bind' },
          deploy: [
            { type: 'webhook', url: `${receiver.url}/deploy`, ...s('secret', 'cc-deploy', DEPLOY_HMAC) },
          ],
          hooks: { deploy: [{ command: ['/bin/true'], env: { API_TOKEN: HOOK_ENV_TOKEN, MODE: 'plain' } }] },
        },
      ],
      {
        acme: {
          directory: tb.pebble.directoryUrl,
          caBundle: tb.pebble.tlsCaPath,
          termsAgreed: true,
          eab: { keyId: 'kid-reliability', ...s('hmacKey', 'cc-eab', EAB_HMAC) },
        },
        storage: { stateDir },
        notify: {
          webhooks: [
            {
              url: `${receiver.url.replace('//', `//certpilot:${URL_PASSWORD}@`)}/alert?token=${URL_TOKEN}`,
              headers: { Authorization: `Bearer ${HEADER_TOKEN}`, 'X-Team': 'ops' },
              ...s('secret', 'cc-alert', ALERT_HMAC),
            },
          ],
          email: {
            host: '127.0.0.1',
            port: mail.port,
            tls: 'none',
            username: 'certpilot',
            ...s('password', 'cc-smtp', SMTP_PASSWORD),
            from: 'certpilot@example.test',
            to: ['ops@example.test'],
          },
        },
      },
      {
        bind: {
          ...tb.bindProvider(),
          tsigSecret_file: undefined,
          ...s('tsigSecret', 'cc-tsig', tb.bind.tsig.secret),
        },
        wrong: {
          ...tb.bindProvider(),
          tsigSecret_file: undefined,
          ...s('tsigSecret', 'cc-wrong', WRONG_TSIG),
        },
        r53: {
          type: 'route53',
          endpoint: r53.endpoint,
          accessKeyId: 'AKIARELIABILITYTEST',
          ...s('secretAccessKey', 'cc-aws', AWS_SECRET_ACCESS_KEY),
          ...s('sessionToken', 'cc-aws-token', AWS_SESSION_TOKEN),
        },
        cf: { type: 'cloudflare', baseUrl: cf.baseUrl, ...s('apiToken', 'cc-cf', CF_TOKEN) },
        cf2: { type: 'cloudflare', baseUrl: cf.baseUrl, ...s('apiToken', 'cc-cf2', CF_WRONG_TOKEN) },
      },
    );
  }

  test.each([
    ['inline', false],
    ['from 0600 files', true],
  ])('secrets given %s are masked in text and JSON output', async (_how, asFiles) => {
    const config = await everySecret(asFiles);
    const text = await cli(`config check (${_how})`, ['config', 'check', '--config', config]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`# ${config}: valid`);
    const json = await cli(`config check --json (${_how})`, [
      'config',
      'check',
      '--json',
      '--config',
      config,
    ]);
    expect(json.code).toBe(0);
    const view = JSON.parse(json.stdout) as {
      acme: { eab: Record<string, unknown> };
      dns: { providers: Record<string, Record<string, unknown>> };
    };
    // Printed in the file's own keys: an inline secret masked, a file as its path (never the value).
    const secret = (o: Record<string, unknown> | undefined, key: string): unknown =>
      asFiles ? typeof o?.[`${key}_file`] === 'string' && !(key in (o ?? {})) : o?.[key];
    const expected = asFiles ? true : '[redacted]';
    expect(view.acme.eab.keyId).toBe('kid-reliability');
    expect(secret(view.acme.eab, 'hmacKey')).toBe(expected);
    expect(secret(view.dns.providers.bind, 'tsigSecret')).toBe(expected);
    expect(secret(view.dns.providers.r53, 'secretAccessKey')).toBe(expected);
    expect(secret(view.dns.providers.r53, 'sessionToken')).toBe(expected);
    expect(secret(view.dns.providers.cf, 'apiToken')).toBe(expected);
    // Credentials in plain settings: masked by name or position, the rest still shown.
    const alert = (view as unknown as { notify: { webhooks: { url: string; headers: unknown }[] } }).notify
      .webhooks[0]!;
    expect(alert.url).toBe(
      `${receiver.url.replace('//', '//certpilot:[redacted]@')}/[redacted]?token=[redacted]`,
    );
    expect(alert.headers).toEqual({ Authorization: '[redacted]', 'X-Team': 'ops' });
    const hook = (view as unknown as { certificates: { hooks: { deploy: { env: unknown }[] } }[] })
      .certificates[0]!.hooks.deploy[0]!;
    expect(hook.env).toEqual({ API_TOKEN: '[redacted]', MODE: 'plain' });
  });

  test('an invalid file holding every secret: exit 2, the problem named, no secret quoted', async () => {
    const valid = await everySecret(false);
    const broken = valid.replace(/\.yaml$/, '-broken.yaml');
    fs.writeFileSync(broken, `${fs.readFileSync(valid, 'utf8')}colour: blue\n`);
    const res = await cli('config check (invalid)', ['config', 'check', '--config', broken]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('  colour: unknown key');
    const renewRes = await cli('renew (invalid)', ['renew', '--config', broken]);
    expect(renewRes.code).toBe(2);
  });
});

test('nothing captured in this file holds a secret or a private key', () => {
  // Enough was captured for the assertion to mean something.
  expect(captured.length).toBeGreaterThanOrEqual(20);
  for (const { what, text } of captured) expectNoSecret(what, text);
});
