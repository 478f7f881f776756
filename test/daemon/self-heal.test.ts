import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { readDeployState, readRedeployState } from '../../src/state/deploy-state';
import { BIN, get, runProgram, startDaemon, type DaemonChild } from '../helpers/daemon-child';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startNginx, type Nginx } from '../helpers/nginx';
import { freePort } from '../helpers/ports';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { servedSerial } from '../deploy/world';

/**
 * Issue #13 item 3 against real processes: Pebble (behind the fault proxy, which counts the
 * orders), BIND, a real nginx serving the certificate's outputs, a webhook receiver for alerts
 * and `certpilot run` as a child process. nginx is made to serve the previous version (its
 * files put back and reloaded, as a configuration tool would); the daemon deploys the current
 * one again within one cycle and orders nothing. A redeploy that keeps failing alerts exactly
 * once over many attempts and a restart, and once more, resolved, when it is served again.
 */
const NAME = 'heal';
const HOST = 'heal.example.test';
const execFileP = promisify(execFile);

let tb: Testbed;
let proxy: FaultProxy;
let nginx: Nginx;
let receiver: WebhookReceiver;
let stateDir: string;
let out: string;
/** The outputs as the first version left them: what is put back to make nginx serve it. */
let first: { crt: string; key: string };
let current = '';

const orders = (): number => proxy.count({ method: 'POST', path: proxy.paths.newOrder });
const redeployAlerts = (): string[] =>
  receiver.requests
    .map((r) => (r.json as { kind?: string }).kind ?? '')
    .filter((k) => k.startsWith('redeploy-'));

function writeConfig(file: string, deploy: unknown[], daemon: Record<string, unknown> = {}): string {
  const config = {
    acme: {
      directory: proxy.directoryUrl,
      caBundle: proxy.caBundlePath,
      termsAgreed: true,
      email: 'ops@example.test',
      requestTimeout: '10s',
    },
    storage: { stateDir },
    dns: {
      resolvers: [`127.0.0.1:${tb.bind.port}`],
      nameserverPort: tb.bind.port,
      providers: { bind: tb.bindProvider() },
    },
    verify: { timeout: '5s', interval: '100ms', maxInterval: '500ms' },
    notify: { webhooks: [{ url: receiver.url }] },
    daemon: { listen: '', checkInterval: '10m', ...daemon },
    certificates: [
      {
        name: NAME,
        domains: [HOST],
        dns: { provider: 'bind' },
        outputs: [{ fullchain: path.join(out, 'site.crt'), key: path.join(out, 'site.key') }],
        ...(deploy.length > 0
          ? { endpoints: [{ host: HOST, port: nginx.ports[0], connectAddress: '127.0.0.1' }], deploy }
          : {}),
      },
    ],
  };
  const target = path.join(tb.dir, file);
  fs.writeFileSync(target, stringify(config));
  return target;
}

const nginxStep = (): unknown => ({ type: 'nginx', test: nginx.testArgv(), reload: nginx.reloadArgv() });

async function cli(args: string[]): Promise<void> {
  const r = await runProgram(process.execPath, [BIN, ...args]);
  expect({ args, code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ args, code: 0, stderr: '' });
}

/** Puts the first version's files back and reloads nginx: it serves the older version again. */
async function serveFirstVersion(): Promise<void> {
  fs.writeFileSync(path.join(out, 'site.crt'), first.crt);
  fs.writeFileSync(path.join(out, 'site.key'), first.key, { mode: 0o600 });
  const [file, ...args] = nginx.reloadArgv() as [string, ...string[]];
  await execFileP(file, args);
  // Right after the signal the old worker may still be the only one (the master has not forked
  // the new one yet), so settled() alone can return early: wait for the old version to be served.
  let served = current;
  for (let i = 0; i < 250 && served === current; i++) {
    await nginx.settled();
    served = await servedSerial(nginx.ports[0]!, HOST);
    if (served === current) await new Promise((r) => setTimeout(r, 20));
  }
  expect(served).not.toBe(current);
}

/** Waits, cycle by cycle (an event each), until the log holds `n` lines with `message`. */
async function until(d: DaemonChild, message: string, n: number): Promise<void> {
  const count = (): number => d.log().split(`"message":"${message}"`).length - 1;
  for (let cycles = 1; count() < n; cycles++) await d.cycles(cycles);
}

async function stop(d: DaemonChild): Promise<void> {
  d.child.kill('SIGTERM');
  expect(await d.exited).toBe(0);
}

beforeAll(async () => {
  tb = await startTestbed();
  proxy = await startFaultProxy(tb.pebble);
  receiver = await startWebhookReceiver();
  stateDir = path.join(tb.dir, 'state');
  out = path.join(tb.dir, 'out');
  fs.mkdirSync(out);
  // First version: outputs only (nginx needs files before it can start).
  const bare = writeConfig('bare.yaml', []);
  await cli(['renew', '--config', bare]);
  first = {
    crt: fs.readFileSync(path.join(out, 'site.crt'), 'utf8'),
    key: fs.readFileSync(path.join(out, 'site.key'), 'utf8'),
  };
  nginx = await startNginx({
    sites: [{ serverName: HOST, certPath: path.join(out, 'site.crt'), keyPath: path.join(out, 'site.key') }],
  });
  // Second version, deployed to nginx and verified.
  await cli(['renew', '--force', '--config', writeConfig('nginx.yaml', [nginxStep()])]);
  current = (await readDeployState(stateDir, NAME))!.serial;
  expect(await readDeployState(stateDir, NAME)).toMatchObject({ status: 'verified' });
  await nginx.settled();
  expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(current);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([nginx?.stop(), receiver?.close(), proxy?.stop()]);
  await tb?.stop();
});

test('nginx serving the previous version serves the current one again within one cycle, with no new order', async () => {
  await serveFirstVersion();
  const ordersBefore = orders();
  const port = await freePort();
  const d = startDaemon(writeConfig('heal.yaml', [nginxStep()], { listen: `127.0.0.1:${port}` }));
  try {
    await d.cycles(1);
    await nginx.settled();
    expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(current);
    // The outputs held the first version: written again from the store before the reload.
    expect(fs.readFileSync(path.join(out, 'site.crt'), 'utf8')).not.toBe(first.crt);
    expect(orders()).toBe(ordersBefore);
    expect(await readDeployState(stateDir, NAME)).toMatchObject({ serial: current, status: 'verified' });
    // The endpoint is probed again at the next cycle (not an endpoint interval later).
    await d.cycles(2);
    const metrics = (await get(`http://127.0.0.1:${port}/metrics`)).body;
    expect(metrics).toContain(`certpilot_redeploys_total{name="${NAME}",result="success"} 1\n`);
    expect(metrics).toContain(`certpilot_redeploys_total{name="${NAME}",result="failure"} 0\n`);
    expect(metrics).toMatch(
      new RegExp(`^certpilot_endpoint_serves_current\\{name="${NAME}",endpoint="[^"]+"\\} 1$`, 'm'),
    );
    expect(metrics).toContain(`certpilot_certificate_redeploy_failures{name="${NAME}"} 0\n`);
    // One redeploy; the probe after it found the endpoint served and planned nothing more.
    const log = d.log();
    expect(log.split('"message":"redeployed: the endpoints serve the current version again"')).toHaveLength(
      2,
    );
    expect(log.split('"message":"redeploy failed"')).toHaveLength(1);
    // promtool accepts the exposition with the redeploy and renewal-state series.
    const promtool = await runProgram('promtool', ['check', 'metrics'], metrics);
    expect({ code: promtool.code, problems: (promtool.stdout + promtool.stderr).trim() }).toEqual({
      code: 0,
      problems: '',
    });
  } finally {
    await stop(d);
  }
  expect(orders()).toBe(ordersBefore);
  expect(redeployAlerts()).toEqual([]);
}, 120_000);

test('a redeploy that keeps failing: backoff, exactly one alert over many attempts and a restart, one resolved', async () => {
  await serveFirstVersion();
  const ordersBefore = orders();
  // A deploy step that fails every time; 1s backoff, doubling up to the 2s endpoint interval.
  const failing = writeConfig('failing.yaml', [{ type: 'command', command: ['false'] }], {
    redeployBackoff: '1s',
    endpointInterval: '2s',
  });
  let d = startDaemon(failing);
  try {
    await until(d, 'redeploy failed', 5);
    expect(redeployAlerts()).toEqual(['redeploy-failed']);
  } finally {
    await stop(d);
  }
  const attempts = (await readRedeployState(stateDir))[NAME]!;
  expect(attempts).toMatchObject({ alerted: true });
  expect(attempts.attempts).toBeGreaterThanOrEqual(5);
  // Not pending: `renew` leaves the retries (and the alerts) to the daemon's backoff.
  expect(await readDeployState(stateDir, NAME)).toMatchObject({ serial: current, status: 'redeploy-failed' });

  d = startDaemon(failing);
  try {
    await until(d, 'redeploy failed', 3);
    expect(redeployAlerts()).toEqual(['redeploy-failed']);
  } finally {
    await stop(d);
  }
  const alert = receiver.requests.find((r) => (r.json as { kind?: string }).kind === 'redeploy-failed')!;
  expect(alert.json).toMatchObject({ severity: 'error' });
  expect(JSON.stringify(alert.json)).toContain('redeploys in a row failed');

  // The deploy fixed: served again at the next attempt, one resolved alert.
  d = startDaemon(
    writeConfig('fixed.yaml', [nginxStep()], { redeployBackoff: '1s', endpointInterval: '2s' }),
  );
  try {
    await receiver.waitFor((r) => (r.json as { kind?: string }).kind === 'redeploy-resolved', 30_000);
    await nginx.settled();
    expect(await servedSerial(nginx.ports[0]!, HOST)).toBe(current);
  } finally {
    await stop(d);
  }
  expect(redeployAlerts()).toEqual(['redeploy-failed', 'redeploy-resolved']);
  expect(await readRedeployState(stateDir)).toEqual({});
  expect(await readDeployState(stateDir, NAME)).toMatchObject({ serial: current, status: 'verified' });
  expect(orders()).toBe(ordersBefore);
}, 180_000);
