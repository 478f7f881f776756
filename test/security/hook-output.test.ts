import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * Issue #14 item 3, written as an attacker would: deploy hooks that fail after printing
 * secrets to stderr (a registered secret from the configuration, the TSIG key certpilot
 * read from its 0600 file, the hook's own API token from its `env`, an `Authorization: Bearer`
 * header line as `curl -v` prints it with a token certpilot never saw, the private key of the
 * certificate just issued) and a hook that prints 1 MB with a secret straddling the point
 * where the bounded capture cuts it. Through the real CLI (bin/certpilot.js, built dist/):
 * none of it may reach the alerts (a local webhook receiver, JSON and Slack format), the deploy
 * state files, the JSON report or the log, and what does reach alerts and state is bounded.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');

/** Inline in the configuration (the alert webhook's HMAC key): registered when parsed. */
const ALERT_HMAC = 'whsec-hook-output-test-7c1e0a-do-not-print';
/** The hook's own credential, given to it through `env` under a secret name. */
const HOOK_API_TOKEN = 'hook-api-token-5f9b2d-do-not-print';
/** A token only the hook knows (read from its own file): no registration can catch it. */
const UNKNOWN_BEARER = 'eyJhbGciOiJIUzI1NiJ9.unregistered-bearer-3d8a.c2lnbmF0dXJl';
/** Straddles the 16 KiB capture boundary of the chatty hook: its last 10 characters survive a naive cut. */
const CUT_SECRET_TAIL = 10;

let tb: Testbed;
let receiver: WebhookReceiver;
let hookDir: string;

beforeAll(async () => {
  tb = await startTestbed();
  receiver = await startWebhookReceiver();
  hookDir = path.join(tb.dir, 'hook-secrets');
  fs.mkdirSync(hookDir, { mode: 0o700 });
  fs.writeFileSync(path.join(hookDir, 'bearer'), UNKNOWN_BEARER, { mode: 0o600 });
  fs.writeFileSync(path.join(hookDir, 'alert'), ALERT_HMAC, { mode: 0o600 });
  fs.writeFileSync(path.join(hookDir, 'tsig'), tb.bind.tsig.secret, { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  await receiver?.close();
  await tb?.stop();
});

/** Every secret the hooks print, and the pieces that a naive cut of long output would leave. */
function secrets(): Record<string, string> {
  return {
    ALERT_HMAC,
    HOOK_API_TOKEN,
    UNKNOWN_BEARER,
    TSIG_SECRET: tb.bind.tsig.secret,
    CUT_PIECE: tb.bind.tsig.secret.slice(-CUT_SECRET_TAIL),
  };
}

function expectClean(what: string, text: string): void {
  const found = Object.entries(secrets())
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
  expect({ what, secretsFound: found }).toEqual({ what, secretsFound: [] });
  expect({ what, privateKey: /PRIVATE KEY-----\s*[A-Za-z0-9+/]{16}/.test(text) }).toEqual({
    what,
    privateKey: false,
  });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** What a careless `curl -v` deploy script prints before it fails. */
const LEAKY_HOOK = [
  'echo "* Connected to cdn.example.test (127.0.0.1) port 443" >&2',
  `echo "> Authorization: Bearer $(cat ${hookDir_('bearer')})" >&2`,
  'echo "+ API_TOKEN=$API_TOKEN" >&2',
  `echo "X-Webhook-Secret: $(cat ${hookDir_('alert')})" >&2`,
  `echo "tsig key is $(cat ${hookDir_('tsig')})" >&2`,
  'cat "$CERTPILOT_KEY_PATH" >&2',
  `echo "curl: (22) The requested URL returned error: 401 token=$(cat ${hookDir_('alert')})" >&2`,
  'exit 22',
].join('\n');

/** 1 MiB of noise, then the TSIG secret cut so that only its last characters fit the 16 KiB tail. */
const CHATTY_HOOK = [
  'head -c 1048576 /dev/zero | tr "\\0" x >&2',
  `cat ${hookDir_('tsig')} | tr -d "\\n" >&2`,
  `head -c ${16 * 1024 - CUT_SECRET_TAIL} /dev/zero | tr "\\0" y >&2`,
  'exit 1',
].join('\n');

/** The hook scripts are built before beforeAll ran: they name the files by a shell variable. */
function hookDir_(file: string): string {
  return `"$HOOK_SECRETS/${file}"`;
}

test('failing hooks that print secrets: alerts, deploy state, JSON report and logs hold none of them, and stay bounded', async () => {
  const stateDir = path.join(tb.dir, 'state');
  const hook = (script: string, env: Record<string, string> = {}): Record<string, unknown> => ({
    command: ['/bin/sh', '-c', script],
    env: { HOOK_SECRETS: hookDir, ...env },
  });
  const config = await tb.writeConfig(
    [
      {
        name: 'leaky',
        domains: ['leaky.example.test'],
        hooks: { deploy: [hook(LEAKY_HOOK, { API_TOKEN: HOOK_API_TOKEN })] },
      },
      { name: 'chatty', domains: ['chatty.example.test'], hooks: { deploy: [hook(CHATTY_HOOK)] } },
    ],
    {
      storage: { stateDir },
      hooks: { post: [hook(LEAKY_HOOK, { API_TOKEN: HOOK_API_TOKEN })] },
      notify: {
        webhooks: [
          { url: `${receiver.url}/json`, format: 'json', secret: ALERT_HMAC, retries: 0 },
          { url: `${receiver.url}/slack`, format: 'slack', retries: 0 },
        ],
      },
    },
  );
  const res = await run([
    'renew',
    '--config',
    config,
    '--json',
    '--log-format',
    'json',
    '--log-level',
    'debug',
  ]);
  expect(res.code).toBe(1);

  // The JSON report: both certificates issued, then failed in deploy with the hook's excerpt.
  const report = JSON.parse(res.stdout) as {
    certificates: { name: string; status: string; error: string; errorCode: string }[];
    hookErrors: string[];
  };
  expect(report.certificates.map((c) => [c.name, c.status, c.errorCode])).toEqual([
    ['leaky', 'failed', 'HOOK_FAILED'],
    ['chatty', 'failed', 'HOOK_FAILED'],
  ]);
  const leaky = report.certificates[0]!.error;
  // The excerpt is still useful: the exit status and curl's last words, credentials masked.
  expect(leaky).toMatch(/exited with status 22: .*curl: \(22\) The requested URL returned error: 401/);
  expect(report.hookErrors).toEqual([
    expect.stringMatching(/^deploy: hooks\.post\[0\] exited with status 22/),
  ]);
  expectClean('JSON report', res.stdout);
  for (const c of report.certificates) expect(c.error.length).toBeLessThan(1_000);

  // Deploy state files.
  for (const name of ['leaky', 'chatty']) {
    const text = fs.readFileSync(path.join(stateDir, 'deploy', `${name}.json`), 'utf8');
    expectClean(`deploy/${name}.json`, text);
    const state = JSON.parse(text) as { status: string; error: string };
    expect(state.status).toBe('deploy-failed');
    expect(state.error.length).toBeLessThan(1_000);
  }
  // 1 MiB of output left a bounded excerpt: the end of what the hook said.
  const chattyState = JSON.parse(fs.readFileSync(path.join(stateDir, 'deploy', 'chatty.json'), 'utf8')) as {
    error: string;
  };
  expect(chattyState.error).toMatch(/exited with status 1: \.\.\.y+$/);

  // Alerts: one deploy-failed per certificate on each channel, signed, clean and bounded.
  const alerts = receiver.requests.filter((r) => r.path.startsWith('/hook/'));
  const deployFailed = alerts.filter(
    (r) => r.path === '/hook/json' && (r.json as { kind: string }).kind === 'deploy-failed',
  );
  expect(deployFailed.map((r) => (r.json as { certificate: string }).certificate).sort()).toEqual([
    'chatty',
    'leaky',
  ]);
  expect(alerts.filter((r) => r.path === '/hook/slack').length).toBeGreaterThanOrEqual(2);
  for (const a of alerts) {
    expectClean(`alert ${a.path}`, JSON.stringify({ headers: a.headers, body: a.body }));
    expect(a.body.length).toBeLessThan(2_000);
  }

  // The log: every record, including the hooks' captured output at debug level.
  const logs = res.stderr.split('\n').filter((l) => l.startsWith('{'));
  const failed = logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.message === 'command failed');
  expect(failed).toHaveLength(3);
  // The log keeps more than the excerpt (the bounded tail), masked where it held credentials.
  const leakyLog = failed.find((l) => String(l.stderr).includes('Connected to cdn'))!;
  expect(String(leakyLog.stderr)).toContain('> Authorization: Bearer [redacted]');
  expect(String(leakyLog.stderr)).toContain('+ API_TOKEN=[redacted]');
  expect(String(leakyLog.stderr)).toContain('[private key redacted]');
  const chattyLog = failed.find((l) => String(l.stderr).startsWith('['))!;
  expect(String(chattyLog.stderr)).toMatch(/^\[\d+ bytes dropped\]\.\.\.y+$/);
  expect(String(chattyLog.stderr).length).toBeLessThanOrEqual(16 * 1024 + 40);
  expectClean('log', res.stderr);
}, 120_000);
