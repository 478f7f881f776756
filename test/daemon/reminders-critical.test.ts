import { startTestbed, runCli, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { startDaemon } from '../helpers/daemon-child';

/**
 * Issue #13, the critical-alert rule in the daemon: a managed certificate with three days left
 * whose renewal fails on every cycle (its name is outside its provider's zones: failed before
 * anything is contacted, every cycle) must page once per certificate version. The renewal's
 * `critical` alert and the expiry reminder's `expiry-critical` share one record in the state
 * directory, so exactly one critical alert goes out over many cycles and a restart, while every
 * failed run still sends `renewal-failed` with its reason. A new version that is itself critical
 * resolves the old one and pages once more.
 */
const DAY_S = 86_400;

let tb: Testbed;
let receiver: WebhookReceiver;

beforeAll(async () => {
  tb = await startTestbed({ certificateValidityPeriod: 3 * DAY_S });
  receiver = await startWebhookReceiver();
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await tb?.stop();
});

interface Alert {
  kind: string;
  certificate: string | null;
  serial: string | null;
  message: string;
}
const alerts = (): Alert[] => receiver.requests.map((r) => r.json as Alert);
/** Everything but renewal-failed, which every failed run sends. */
const pages = (): string[] => alerts().flatMap((a) => (a.kind === 'renewal-failed' ? [] : [a.kind]));

test('one critical alert per certificate version over cycles and a restart; renewal-failed keeps its reason', async () => {
  const certs = [{ name: 'web', domains: ['web.example.test'] }];
  const common = {
    notify: { webhooks: [{ url: receiver.url }] },
    // Days only (ratio 1): three days left is critical for check as for notify.criticalDays (7).
    check: { warningRatio: 1, criticalRatio: 1 },
  };
  const good = await tb.writeConfig(certs);
  expect(await runCli(['renew', '--config', good, '--log-level', 'error'])).toMatchObject({ code: 0 });
  const broken = await tb.writeConfig(
    certs,
    { ...common, daemon: { listen: '', checkInterval: '1s', readinessInterval: 'off' } },
    { bind: tb.bindProvider({ zones: ['other.test'] }) },
  );

  let d = startDaemon(broken);
  try {
    await d.cycles(4);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  expect(pages()).toEqual(['critical']);
  const first = alerts().find((a) => a.kind === 'critical')!;
  expect(first).toMatchObject({
    certificate: 'web',
    message: expect.stringMatching(/this run failed: configuration:/),
  });
  const failed = alerts().filter((a) => a.kind === 'renewal-failed');
  expect(failed.length).toBeGreaterThanOrEqual(4);
  for (const f of failed) expect(f.message).toMatch(/other\.test|zone/);

  d = startDaemon(broken);
  try {
    await d.cycles(3);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  expect(pages()).toEqual(['critical']);

  // A new version, itself with three days left: the old one resolves, the new one pages once.
  expect(await runCli(['renew', '--force', '--config', good, '--log-level', 'error'])).toMatchObject({
    code: 0,
  });
  d = startDaemon(broken);
  try {
    await d.cycles(4);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  expect(pages()).toEqual(['critical', 'expiry-resolved', 'critical']);
  const second = alerts().filter((a) => a.kind === 'critical')[1]!;
  expect(second.serial).not.toBe(first.serial);
}, 180_000);
