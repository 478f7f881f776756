import { startTestbed, runCli, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { freePort } from '../helpers/ports';
import { get, startDaemon, type DaemonChild } from '../helpers/daemon-child';

/**
 * Issue #13 item 5 in the daemon, against real Pebble and BIND: `certpilot run` (a child
 * process) runs the renewal-readiness canary on `daemon.readinessInterval`. With a wrong TSIG
 * secret the dns-write check fails: one `readiness-failed` alert naming the check and the reason,
 * and certpilot_readiness_status 0 on /metrics. A restart neither runs the canary again at once
 * nor repeats the alert; once the secret is right again, one `readiness-resolved` follows and
 * nothing more over several further runs.
 */

let tb: Testbed;
let receiver: WebhookReceiver;

beforeAll(async () => {
  tb = await startTestbed();
  receiver = await startWebhookReceiver();
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await tb?.stop();
});

const kinds = (): string[] => receiver.requests.map((r) => (r.json as { kind: string }).kind);
const cyclesDone = (d: DaemonChild): number => d.log().split('"message":"check cycle done"').length - 1;
const readinessRuns = (d: DaemonChild): number => d.log().split('"message":"readiness checked"').length - 1;

async function stop(d: DaemonChild): Promise<void> {
  d.child.kill('SIGTERM');
  expect(await d.exited).toBe(0);
}

test('a failing check alerts once across cycles and a restart, and resolves once', async () => {
  const certs = [{ name: 'web', domains: ['web.example.test'] }];
  const port = await freePort();
  const notify = { webhooks: [{ url: receiver.url }] };
  // A stored certificate and a registered account, so only the DNS write can fail.
  expect(
    await runCli(['renew', '--config', await tb.writeConfig(certs), '--log-level', 'error']),
  ).toMatchObject({
    code: 0,
  });
  const daemon = (readinessInterval: string): Record<string, unknown> => ({
    listen: `127.0.0.1:${port}`,
    checkInterval: '1s',
    readinessInterval,
  });
  const wrongSecret = {
    bind: tb.bindProvider({ tsigSecret_file: undefined, tsigSecret: Buffer.alloc(32, 9).toString('base64') }),
  };
  const broken = await tb.writeConfig(certs, { notify, daemon: daemon('60s') }, wrongSecret);

  let d = startDaemon(broken);
  try {
    const failed = await receiver
      .waitFor((r) => (r.json as { kind?: string }).kind === 'readiness-failed', 30_000)
      .catch((err: Error) => Promise.reject(new Error(`${err.message}; daemon log:\n${d.log()}`)));
    expect(failed.json).toMatchObject({
      certificate: 'web',
      severity: 'error',
      message: expect.stringMatching(/^next renewal would fail: dns-write check: .*canary TXT record failed/),
    });
    await d.cycles(cyclesDone(d) + 3);
    const metrics = await get(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.body).toContain('certpilot_readiness_status{name="web",check="dns-write"} 0');
    expect(metrics.body).toContain('certpilot_readiness_status{name="web",check="account"} 1');
  } finally {
    await stop(d);
  }
  expect(kinds()).toEqual(['readiness-failed']);

  // The next run is due 54-60 s after the first: a restart now must not run it again.
  d = startDaemon(broken);
  try {
    await d.cycles(3);
    expect(readinessRuns(d)).toBe(0);
    // The persisted rows are on /metrics within one cycle.
    const metrics = await get(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.body).toContain('certpilot_readiness_status{name="web",check="dns-write"} 0');
  } finally {
    await stop(d);
  }
  expect(kinds()).toEqual(['readiness-failed']);

  // The secret fixed and a 2 s interval: the run planned for later is due now (not skipped).
  const fixed = await tb.writeConfig(certs, { notify, daemon: daemon('2s') });
  d = startDaemon(fixed);
  try {
    const resolved = await receiver.waitFor(
      (r) => (r.json as { kind?: string }).kind === 'readiness-resolved',
      30_000,
    );
    expect(resolved.json).toMatchObject({
      certificate: 'web',
      message: expect.stringMatching(/^dns-write check passes again/),
    });
    const runs = readinessRuns(d);
    // At least two more runs, all passing.
    while (readinessRuns(d) < runs + 2) await d.cycles(cyclesDone(d) + 1);
  } finally {
    await stop(d);
  }
  expect(kinds()).toEqual(['readiness-failed', 'readiness-resolved']);
}, 180_000);
