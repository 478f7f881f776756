import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startNginx, type Nginx } from '../helpers/nginx';
import {
  startWebhookReceiver,
  type ReceivedRequest,
  type WebhookReceiver,
} from '../helpers/webhook-receiver';
import { startDaemon } from '../helpers/daemon-child';

/**
 * Issue #13 item 2, the seed case, against real processes: nginx serves a CA-signed certificate
 * that certpilot does not manage, with 20 days left (warning below 21). `certpilot run` (a child
 * process) watches the endpoint and alerts a local webhook receiver exactly once, over many
 * cycles and across a restart; once the certificate is replaced and nginx reloaded, exactly one
 * "resolved" alert follows.
 */
const DAY_MS = 86_400_000;
const execFileP = promisify(execFile);

let dir: string;
let nginx: Nginx;
let receiver: WebhookReceiver;
const ca = makeCa();
const certPath = (): string => path.join(dir, 'site.crt');
const keyPath = (): string => path.join(dir, 'site.key');

function writeSiteCertificate(daysLeft: number): void {
  const now = Date.now();
  const leaf = makeCertificate({
    names: ['shop.example.test'],
    issuer: ca,
    notBefore: new Date(now - 70 * DAY_MS),
    notAfter: new Date(now + daysLeft * DAY_MS),
  });
  fs.writeFileSync(certPath(), leaf.certPem + ca.certPem);
  fs.writeFileSync(keyPath(), leaf.keyPem, { mode: 0o600 });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-reminders-'));
  writeSiteCertificate(20);
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
  nginx = await startNginx({
    sites: [{ serverName: 'shop.example.test', certPath: certPath(), keyPath: keyPath() }],
  });
  receiver = await startWebhookReceiver();
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await nginx?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const kinds = (): string[] =>
  receiver.requests.map((r: ReceivedRequest) => (r.json as { kind: string }).kind);

test('a watched endpoint 20 days from expiry: one warning over many cycles and a restart, one resolved after replacement', async () => {
  const stateDir = path.join(dir, 'state');
  const config = path.join(dir, 'certpilot.yaml');
  fs.writeFileSync(
    config,
    [
      'storage:',
      `  stateDir: ${stateDir}`,
      'daemon:',
      "  listen: ''",
      '  checkInterval: 1s',
      '  endpointInterval: 1s',
      'notify:',
      '  webhooks:',
      `    - url: ${receiver.url}`,
      'watch:',
      '  endpoints:',
      '    - host: shop.example.test',
      `      port: ${nginx.ports[0]}`,
      '      connectAddress: 127.0.0.1',
      `      caBundle: ${path.join(dir, 'ca.pem')}`,
      '',
    ].join('\n'),
  );

  let d = startDaemon(config);
  try {
    const warning = await receiver
      .waitFor((r) => (r.json as { kind?: string }).kind === 'expiry-warning', 30_000)
      .catch((err: Error) => Promise.reject(new Error(`${err.message}; daemon log:\n${d.log()}`)));
    expect(warning.json).toMatchObject({
      certificate: `shop.example.test:${nginx.ports[0]}@127.0.0.1`,
      severity: 'warning',
    });
    await d.cycles(5);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);

  d = startDaemon(config);
  try {
    await d.cycles(4);
    expect(kinds()).toEqual(['expiry-warning']);

    writeSiteCertificate(80);
    await execFileP(nginx.reloadArgv()[0]!, nginx.reloadArgv().slice(1));
    await nginx.settled();
    const resolved = await receiver.waitFor(
      (r) => (r.json as { kind?: string }).kind === 'expiry-resolved',
      30_000,
    );
    expect((resolved.json as { message: string }).message).toMatch(/certificate replaced/);
    // Several more cycles (each one probes the endpoint again) must not repeat it.
    await d.cycles(8);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  expect(kinds()).toEqual(['expiry-warning', 'expiry-resolved']);
}, 120_000);
