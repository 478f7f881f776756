import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AgentConfig } from '../../src/config/types';
import { signBody } from '../../src/core/http';
import { formatReport } from '../../src/cli/renew';
import { readDeployState } from '../../src/state/deploy-state';
import { readKept } from '../../src/state/kept';
import { startMailServer, type MailServer } from '../helpers/mail-server';
import { startNginx, type Nginx } from '../helpers/nginx';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { withDeploy } from './helpers';
import { loadBase, renew, servedSerial } from './world';

/**
 * Verified deploy against real servers: Pebble + BIND issue, a real nginx serves the stored
 * files on a loopback port, the certificate is deployed with the nginx deployer and the served
 * leaf is checked. Each test leaves nginx serving a valid certificate for the next one.
 */

const NAME = 'site';
const HOST = 'www.example.test';
const HMAC_SECRET = 'whsec-7f3a9c-do-not-log';
const SMTP_PASSWORD = 'smtp-pass-4b2e-do-not-log';

let tb: Testbed;
let base: AgentConfig;
let nginx: Nginx;
let hooks: WebhookReceiver;
let mail: MailServer;
let stateDir: string;

beforeAll(async () => {
  tb = await startTestbed();
  base = await loadBase(tb, [{ name: NAME, domains: [HOST], dns: { provider: 'bind' } }]);
  stateDir = base.storage.stateDir;
  // First issuance without deploy: nginx needs a certificate before it can start.
  const first = await renew(base);
  expect(first.report.ok).toBe(true);
  nginx = await startNginx({
    sites: [
      {
        serverName: HOST,
        certPath: path.join(stateDir, 'certs', NAME, 'fullchain.pem'),
        keyPath: path.join(stateDir, 'certs', NAME, 'privkey.pem'),
      },
    ],
  });
  hooks = await startWebhookReceiver();
  mail = await startMailServer({ username: 'certpilot', password: SMTP_PASSWORD });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([nginx?.stop(), hooks?.close(), mail?.close()]);
  await tb?.stop();
});

const endpoint = () => ({ host: HOST, port: nginx.ports[0], connectAddress: '127.0.0.1' });
const nginxStep = () => ({ type: 'nginx', test: nginx.testArgv(), reload: nginx.reloadArgv() });
const fastVerify = { timeout: '3s', interval: '100ms', maxInterval: '500ms' };

async function storedSerial(): Promise<string> {
  const pem = fs.readFileSync(path.join(stateDir, 'certs', NAME, 'cert.pem'), 'utf8');
  return new crypto.X509Certificate(pem).serialNumber;
}

test('renew --force deploys with the nginx deployer; nginx serves the new serial; state is verified', async () => {
  const before = await servedSerial(nginx.ports[0]!, HOST);
  const config = withDeploy(base, {
    verify: { timeout: '20s', interval: '100ms', maxInterval: '1s' },
    certificates: [{ name: NAME, endpoints: [endpoint()], deploy: [nginxStep()] }],
  });
  const { report, orders } = await renew(config, { force: true });
  expect(report.outcomes[0]).toMatchObject({ status: 'renewed', deploy: { status: 'verified' } });
  expect(report.ok).toBe(true);
  expect(orders).toBe(1);
  const now = await storedSerial();
  expect(now).not.toBe(before);
  await nginx.settled();
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(now);
  const state = await readDeployState(stateDir, NAME);
  expect(state).toMatchObject({ serial: now, status: 'verified', previousSerial: before });
  expect(state?.endpoints[`${HOST}:${nginx.ports[0]}@127.0.0.1`]).toMatchObject({
    status: 'verified',
    servedSerial: now,
  });
});

test('nginx not reloaded: verification fails and names what is served; the next run re-deploys without a new order', async () => {
  // What nginx serves: the version the previous test deployed and verified. (Not a probe here:
  // right after a reload, an old nginx worker may still answer a new connection once.)
  const served = await storedSerial();
  const doNothing = withDeploy(base, {
    verify: fastVerify,
    // rollback: false keeps the new version current, so the next run must finish its deploy.
    certificates: [
      {
        name: NAME,
        endpoints: [endpoint()],
        deploy: [{ type: 'command', command: ['true'] }],
        rollback: false,
      },
    ],
  });
  const first = await renew(doNothing, { force: true });
  expect(first.orders).toBe(1);
  expect(first.report.ok).toBe(false);
  const fresh = await storedSerial();
  expect(first.report.outcomes[0]).toMatchObject({
    status: 'failed',
    errorCode: 'VERIFY_FAILED',
    serial: fresh,
  });
  expect(first.report.outcomes[0]?.error).toContain(
    `${HOST}:${nginx.ports[0]}@127.0.0.1 serves serial ${served}`,
  );
  expect(first.report.outcomes[0]?.error).toContain(`instead of serial ${fresh}`);
  expect(await readDeployState(stateDir, NAME)).toMatchObject({ serial: fresh, status: 'verify-failed' });
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(served);

  // Fixed deploy config, no --force: the planner sees a valid certificate, the executor a pending deploy.
  const fixed = withDeploy(base, {
    verify: fastVerify,
    certificates: [{ name: NAME, endpoints: [endpoint()], deploy: [nginxStep()], rollback: false }],
  });
  const second = await renew(fixed);
  expect(second.orders).toBe(0);
  expect(second.report.acmeRequests).toBeUndefined();
  expect(second.report.outcomes[0]).toMatchObject({
    status: 'deployed',
    serial: fresh,
    deploy: { status: 'verified' },
  });
  expect(second.report.ok).toBe(true);
  await nginx.settled();
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(fresh);
  expect(await readDeployState(stateDir, NAME)).toMatchObject({
    serial: fresh,
    status: 'verified',
    attempts: 2,
  });

  // And once verified, nothing more happens.
  const third = await renew(fixed);
  expect(third.orders).toBe(0);
  expect(third.report.outcomes[0]?.status).toBe('valid');
});

test('broken deploy: nginx -t rejects the new pair, the previous one is restored and still served, alerts arrive', async () => {
  // The version the previous test deployed and verified (see above: no probe right after a reload).
  const previous = await storedSerial();
  const config = withDeploy(base, {
    verify: fastVerify,
    notify: {
      webhooks: [
        { url: hooks.url, format: 'json', secret: HMAC_SECRET },
        { url: `${hooks.url}/slack`, format: 'slack' },
      ],
      email: {
        host: '127.0.0.1',
        port: mail.port,
        tls: 'none',
        username: 'certpilot',
        password: SMTP_PASSWORD,
        from: 'certpilot@example.test',
        to: ['ops@example.test'],
      },
    },
    certificates: [{ name: NAME, endpoints: [endpoint()], deploy: [nginxStep()] }],
  });
  let broken = '';
  const { report, log } = await renew(
    config,
    { force: true },
    {
      // After issuance, before deploy: replace the new key with one that does not match.
      afterInstall: (_name, paths) => {
        broken = new crypto.X509Certificate(fs.readFileSync(paths.cert, 'utf8')).serialNumber;
        const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        fs.writeFileSync(paths.key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
      },
    },
  );
  expect(report.ok).toBe(false);
  const outcome = report.outcomes[0]!;
  expect(outcome).toMatchObject({
    status: 'failed',
    errorCode: 'HOOK_FAILED',
    serial: previous,
    deploy: { status: 'rolled-back', rolledBack: { from: broken, to: previous } },
  });
  expect(outcome.error).toMatch(/config test exited with status 1.*key values mismatch/);
  // nginx never loaded the broken pair, and the store holds the previous version again.
  await nginx.settled();
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(previous);
  expect(await storedSerial()).toBe(previous);
  expect(await readDeployState(stateDir, NAME)).toMatchObject({
    serial: previous,
    status: 'rolled-back',
    failedSerial: broken,
  });

  // Alerts: signed generic JSON, Slack text, and mail.
  const rollback = await hooks.waitFor((r) => (r.json as { kind?: string })?.kind === 'rollback');
  expect(rollback.json).toMatchObject({
    source: 'certpilot',
    certificate: NAME,
    serial: previous,
    failedSerial: broken,
  });
  const ts = String(rollback.headers['x-certpilot-timestamp']);
  expect(rollback.headers['x-certpilot-signature']).toBe(signBody(HMAC_SECRET, ts, rollback.body));
  await hooks.waitFor((r) => (r.json as { kind?: string })?.kind === 'deploy-failed');
  const slack = await hooks.waitFor(
    (r) => r.path.endsWith('/slack') && /rollback/.test(String((r.json as { text?: string })?.text)),
  );
  expect(slack.headers['x-certpilot-signature']).toBeUndefined();
  const mailed = await mail.waitFor((m) => /Subject: certpilot rollback: site/.test(m.raw));
  expect(mailed).toMatchObject({
    from: 'certpilot@example.test',
    to: ['ops@example.test'],
    user: 'certpilot',
  });
  // Quoted-printable: soft line breaks ("=" at the end of a line) are not part of the text.
  expect(mailed.raw.replace(/=\r?\n/g, '')).toContain(`failed serial: ${broken}`);

  // The status line and the alert say what happened in the order it happened.
  expect(formatReport(report)).toContain(
    `deploy: rolled-back (new serial ${broken} failed deploy; rolled back to ${previous})`,
  );
  expect((rollback.json as { message: string }).message).toMatch(
    new RegExp(`^new serial ${broken} failed deploy; rolled back to ${previous}, which is served again \\(`),
  );

  const logged = JSON.stringify(log.records);
  expect(logged).not.toContain(HMAC_SECRET);
  expect(logged).not.toContain(SMTP_PASSWORD);
  expect(logged).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
});

test('after the rollback: the next run waits out the backoff without an order, then deploys the kept version without one', async () => {
  // Where the previous test left off: `broken` was rolled back to `previous`, and kept.
  const previous = await storedSerial();
  const kept = await readKept(stateDir, NAME);
  expect(kept).not.toBeNull();
  expect(kept!.serial).not.toBe(previous);
  const config = withDeploy(base, {
    verify: fastVerify,
    certificates: [{ name: NAME, endpoints: [endpoint()], deploy: [nginxStep()] }],
  });

  const held = await renew(config);
  expect(held.orders).toBe(0);
  expect(held.report.outcomes[0]).toMatchObject({ status: 'waiting', decision: { reason: 'backoff' } });
  expect(held.report.outcomes[0]!.decision.detail).toContain(`new serial ${kept!.serial} was rolled back`);
  expect(held.report.outcomes[0]!.decision.detail).toContain(`certpilot renew --force ${NAME}`);

  // The operator fixed what broke the deploy and does not wait: the kept version, no new order.
  const now = await renew(config, { force: true });
  expect(now.orders).toBe(0);
  expect(now.report.acmeRequests).toBeUndefined();
  expect(now.report.outcomes[0]).toMatchObject({
    status: 'deployed',
    serial: kept!.serial,
    deploy: { status: 'verified' },
  });
  expect(await storedSerial()).toBe(kept!.serial);
  await nginx.settled();
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(kept!.serial);
  expect(await readKept(stateDir, NAME)).toBeNull();
});
