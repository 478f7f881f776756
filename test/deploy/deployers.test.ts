import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixedClock } from '../../src/core/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { signBody } from '../../src/core/http';
import { readDeployState } from '../../src/state/deploy-state';
import { runRenew } from '../../src/renew/run';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { baseConfig, certSpec, installPair, withDeploy } from './helpers';

/**
 * The systemd and webhook deployers, on the pending-deploy path (no CA needed). systemd is
 * replaced by a stand-in `systemctl` that records its argv: the deployer's contract is the
 * exact command line, and there is no systemd in the test machine.
 */

let root: string;
let receiver: WebhookReceiver | undefined;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-deployers-'));
});
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
  fs.rmSync(root, { recursive: true, force: true });
});

test('systemd deployer runs `systemctl <action> -- <unit>` and a failure fails the deploy', async () => {
  const stateDir = path.join(root, 'state');
  await installPair(stateDir, 'site', ['example.test']);
  const argvFile = path.join(root, 'systemctl.argv');
  const systemctl = path.join(root, 'systemctl');
  fs.writeFileSync(systemctl, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}'\n[ "$3" = "good.service" ]\n`, {
    mode: 0o755,
  });
  const run = (unit: string) =>
    runRenew(
      withDeploy(baseConfig(stateDir, [certSpec('site', ['example.test'])]), {
        certificates: [{ name: 'site', deploy: [{ type: 'systemd', unit, action: 'restart', systemctl }] }],
      }),
      {},
      { log: memoryLogger(), clock: fixedClock(new Date()) },
    );
  const bad = await run('bad.service');
  expect(bad.ok).toBe(false);
  expect(bad.outcomes[0]?.error).toMatch(/deploy\[0\] \(systemd\) restart bad\.service exited with status 1/);
  expect(fs.readFileSync(argvFile, 'utf8')).toBe('restart\n--\nbad.service\n');
  // The failed deploy is retried by the next run.
  const good = await run('good.service');
  expect(good.ok).toBe(true);
  expect(good.outcomes[0]?.status).toBe('deployed');
  expect((await readDeployState(stateDir, 'site'))?.status).toBe('verified');
});

test('webhook deployer POSTs signed JSON without the key, retrying a 5xx', async () => {
  const stateDir = path.join(root, 'state');
  const { info } = await installPair(stateDir, 'site', ['example.test']);
  receiver = await startWebhookReceiver({ respond: (i) => (i === 0 ? 503 : 204) });
  const secret = 'deploy-hmac-secret-never-logged';
  const log = memoryLogger();
  const report = await runRenew(
    withDeploy(baseConfig(stateDir, [certSpec('site', ['example.test'])]), {
      certificates: [
        {
          name: 'site',
          deploy: [
            {
              type: 'webhook',
              url: receiver.url,
              secret,
              includeCertificate: true,
              headers: { 'X-Origin': 'test' },
            },
          ],
        },
      ],
    }),
    {},
    { log, clock: fixedClock(new Date()) },
  );
  expect(report.ok).toBe(true);
  expect(receiver.requests).toHaveLength(2);
  const req = receiver.requests[1]!;
  expect(req.headers['x-origin']).toBe('test');
  expect(req.headers['x-certpilot-signature']).toBe(
    signBody(secret, String(req.headers['x-certpilot-timestamp']), req.body),
  );
  expect(req.json).toMatchObject({
    event: 'certificate.deployed',
    certificate: {
      name: 'site',
      domains: ['example.test'],
      serial: info.serial,
      fingerprint256: info.fingerprint256,
    },
  });
  expect(req.body).toContain('BEGIN CERTIFICATE');
  expect(req.body).not.toMatch(/PRIVATE KEY/);
  expect(JSON.stringify(log.records)).not.toContain(secret);
});
