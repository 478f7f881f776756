import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startMailServer, type MailServer } from '../helpers/mail-server';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { startDaemon, type DaemonChild } from '../helpers/daemon-child';

/**
 * `notify.digest` against real processes: `certpilot run` (a child process) sends one digest
 * per period, through a local webhook receiver and a real SMTP server, listing what is not OK;
 * none when everything is OK; none repeated over cycles and a restart. The period boundary is
 * placed by writing the persisted last-digest time (digest.json) before a start, so the counts
 * do not depend on how fast the machine is.
 */
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

let dir: string;
let receiver: WebhookReceiver;
let mail: MailServer;
const ca = makeCa();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-digest-'));
  receiver = await startWebhookReceiver();
  mail = await startMailServer({ username: 'certpilot', password: 'smtp-pass-1234' });
});
afterAll(async () => {
  await receiver?.close();
  await mail?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const stateDir = (): string => path.join(dir, 'state');
const siteFile = (): string => path.join(dir, 'site.crt');

function writeSite(daysLeft: number): void {
  const now = Date.now();
  const leaf = makeCertificate({
    names: ['digest.example.test'],
    issuer: ca,
    notBefore: new Date(now - 60 * DAY_MS),
    notAfter: new Date(now + daysLeft * DAY_MS),
  });
  fs.writeFileSync(siteFile(), leaf.certPem + ca.certPem);
}

function writeConfig(digest: string): string {
  const passwordFile = path.join(dir, 'smtp.password');
  fs.writeFileSync(passwordFile, 'smtp-pass-1234\n', { mode: 0o600 });
  const file = path.join(dir, 'certpilot.yaml');
  const config = {
    storage: { stateDir: stateDir() },
    daemon: { listen: '', checkInterval: '1s' },
    notify: {
      on: ['digest'],
      digest,
      webhooks: [{ url: receiver.url }],
      email: {
        host: '127.0.0.1',
        port: mail.port,
        tls: 'none',
        username: 'certpilot',
        password_file: passwordFile,
        from: 'certpilot@example.test',
        to: ['ops@example.test'],
      },
    },
    watch: { files: [{ path: siteFile(), name: 'site' }] },
  };
  fs.writeFileSync(file, stringify(config));
  return file;
}

/** The last digest period as the daemon persists it. */
function seedLastDigest(at: number): void {
  fs.mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(stateDir(), 'digest.json'), JSON.stringify({ version: 1, lastAt: at }));
}

async function runCycles(config: string, n: number): Promise<DaemonChild> {
  const d = startDaemon(config);
  try {
    await d.cycles(n);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  return d;
}

const digests = (): { kind: string; message: string }[] =>
  receiver.requests.map((r) => r.json as { kind: string; message: string });

test('one digest per period by webhook and mail, none repeated over cycles and a restart, none when all is OK', async () => {
  writeSite(10);
  const hourly = writeConfig('1h');
  seedLastDigest(Date.now() - 2 * HOUR_MS);
  await runCycles(hourly, 4);
  expect(digests()).toHaveLength(1);
  expect(digests()[0]).toMatchObject({ kind: 'digest' });
  expect(digests()[0]!.message).toMatch(/^1 of 1 item\(s\) not OK:\n- WARNING site \(file \/.*site\.crt\): /);
  expect(mail.messages).toHaveLength(1);
  expect(mail.messages[0]!.raw).toMatch(/Subject: certpilot digest/);
  expect(mail.messages[0]!.raw).toMatch(/WARNING site/);

  await runCycles(hourly, 3);
  expect(digests()).toHaveLength(1);
  expect(mail.messages).toHaveLength(1);

  // Everything OK at the next period: the period is used up, nothing is sent.
  writeSite(80);
  const seeded = Date.now() - 2 * HOUR_MS;
  seedLastDigest(seeded);
  await runCycles(hourly, 3);
  expect(digests()).toHaveLength(1);
  expect(mail.messages).toHaveLength(1);
  const after = JSON.parse(fs.readFileSync(path.join(stateDir(), 'digest.json'), 'utf8')) as {
    lastAt: number;
  };
  expect(after.lastAt).toBeGreaterThan(seeded);
}, 120_000);

test('a time of day (UTC): the digest of the period that began at HH:MM goes out once', async () => {
  writeSite(5);
  const sent = digests().length;
  const mails = mail.messages.length;
  const minuteAgo = new Date(Date.now() - 60_000);
  const hhmm = `${String(minuteAgo.getUTCHours()).padStart(2, '0')}:${String(minuteAgo.getUTCMinutes()).padStart(2, '0')}`;
  const daily = writeConfig(hhmm);
  seedLastDigest(Date.now() - DAY_MS - HOUR_MS);
  await runCycles(daily, 4);
  await runCycles(daily, 2);
  expect(digests()).toHaveLength(sent + 1);
  expect(digests()[sent]!.message).toMatch(/CRITICAL site/);
  expect(mail.messages).toHaveLength(mails + 1);
}, 120_000);
