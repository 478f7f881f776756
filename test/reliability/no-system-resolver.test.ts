import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Issue #12: with `dns.resolvers` set, no code path may use the system resolver. The real CLI
 * runs in a child process whose system resolver is a tripwire (every dns.lookup fails and is
 * logged), against Pebble and BIND, where every host certpilot connects to is a NAME that BIND
 * serves an A record for: the ACME directory, a deploy webhook, an alert webhook, the daemon's
 * heartbeat and a TLS endpoint for `check`. The control proves the tripwire bites when the
 * resolvers are not configured.
 */

const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const TRIPWIRE = path.join(__dirname, '..', 'helpers', 'resolver-tripwire.js');
const NAMES = ['acme.example.test', 'hooks.example.test', 'web.example.test'];
const THREAD_MARKER = path.join(__dirname, '..', 'helpers', 'thread-marker.js');
/** Enough endpoints for `check` to probe them from worker threads (inspect/probe-threads.ts). */
const MANY = Array.from({ length: 200 }, (_, i) => `p${i}.example.test`);

let tb: Testbed;
let server: https.Server;
let port: number;
const received: { method: string; path: string; host: string }[] = [];
const arrivals = new EventEmitter();

/** Resolves when a request for `urlPath` has arrived (now or later). */
function requestFor(urlPath: string): Promise<{ method: string; host: string }> {
  const seen = received.find((r) => r.path === urlPath);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const on = (r: { method: string; path: string; host: string }): void => {
      if (r.path !== urlPath) return;
      arrivals.off('request', on);
      resolve(r);
    };
    arrivals.on('request', on);
  });
}

beforeAll(async () => {
  tb = await startTestbed({
    zones: [
      { name: 'example.test', records: [...NAMES, ...MANY].map((n) => `${n}. 60 IN A 127.0.0.1`) },
      { name: 'sub.example.test' },
    ],
    pebble: { extraSans: NAMES },
  });
  // One HTTPS server (Pebble's TLS certificate, which now names these hosts) is the webhook
  // receiver, the heartbeat receiver and the TLS endpoint `check` probes.
  const [cert, key] = await Promise.all([readFile(tb.pebble.tlsCertPath), readFile(tb.pebble.tlsKeyPath)]);
  server = https.createServer({ cert, key }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const r = { method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '' };
      received.push(r);
      arrivals.emit('request', r);
      res.statusCode = 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
}, 60_000);
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await tb?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Host names the system resolver was asked for. */
  tripped: string[];
  /** Worker threads the process started (with `threads`). */
  threads: number;
}

/**
 * `node -r resolver-tripwire.js bin/certpilot.js ARGS`. The child trusts Pebble's TLS CA for
 * webhooks and the heartbeat (they take no CA bundle of their own); `untilRequest` stops a
 * daemon with SIGTERM once that request has arrived.
 */
async function runTripwired(args: string[], label: string, untilRequest?: string): Promise<Run> {
  const logFile = path.join(tb.dir, `tripwire-${label}.log`);
  const threadLog = path.join(tb.dir, `threads-${label}.log`);
  await Promise.all([writeFile(logFile, ''), writeFile(threadLog, '')]);
  const child = spawn(process.execPath, ['-r', TRIPWIRE, '-r', THREAD_MARKER, BIN, ...args], {
    env: {
      ...process.env,
      CERTPILOT_TEST_TRIPWIRE_LOG: logFile,
      CERTPILOT_TEST_THREAD_LOG: threadLog,
      NODE_EXTRA_CA_CERTS: tb.pebble.tlsCaPath,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => resolve(c));
  });
  if (untilRequest !== undefined) {
    await Promise.race([requestFor(untilRequest), exited]);
    child.kill('SIGTERM');
  }
  const code = await exited;
  const lines = async (file: string): Promise<string[]> =>
    (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  return { code, stdout, stderr, tripped: await lines(logFile), threads: (await lines(threadLog)).length };
}

/** One certificate by name with a deploy webhook; `failing` adds one whose zone nobody serves (an alert). */
function writeConfig(label: string, extra: Record<string, unknown> = {}, failing = true): Promise<string> {
  const base = `https://hooks.example.test:${port}`;
  return tb.writeConfig(
    [
      {
        name: 'named',
        domains: [`${label}.example.test`],
        dns: { provider: 'bind' },
        deploy: [{ type: 'webhook', url: `${base}/deploy/${label}`, retries: 0 }],
      },
      ...(failing
        ? [{ name: 'failing', domains: [`${label}.nowhere.test`], dns: { provider: 'bind' } }]
        : []),
    ],
    {
      acme: {
        directory: `https://acme.example.test:${tb.pebble.directoryUrl.split(':')[2]}`,
        caBundle: tb.pebble.tlsCaPath,
        termsAgreed: true,
        email: 'ops@example.test',
        requestTimeout: '10s',
      },
      storage: { stateDir: path.join(tb.dir, `state-${label}`) },
      notify: { on: ['renewal-failed'], webhooks: [{ url: `${base}/alert/${label}`, retries: 0 }] },
      watch: { endpoints: [`web.example.test:${port}`] },
      ...extra,
    },
  );
}

test('renew, check and the daemon reach every host by name with zero system-resolver calls', async () => {
  const config = await writeConfig('renew');
  const renew = await runTripwired(['renew', '--config', config, '--json'], 'renew');
  const report = JSON.parse(renew.stdout) as {
    certificates: { name: string; status: string; errorCode?: string }[];
    acmeRequests: { byEndpoint: Record<string, number> };
  };
  expect({ tripped: renew.tripped, certificates: report.certificates }).toMatchObject({
    tripped: [],
    certificates: [
      { name: 'named', status: 'renewed' },
      // Failed at the zone (BIND refuses nowhere.test), not at a tripwire.
      { name: 'failing', status: 'failed', errorCode: 'DNS_ZONE_NOT_FOUND' },
    ],
  });
  expect(report.acmeRequests.byEndpoint['GET /dir']).toBe(1);
  expect(renew.code).toBe(1);
  // The CA by name (the directory), the deploy webhook and the alert, all through BIND's answers.
  expect(await requestFor('/deploy/renew')).toMatchObject({
    method: 'POST',
    host: `hooks.example.test:${port}`,
  });
  expect(await requestFor('/alert/renew')).toMatchObject({
    method: 'POST',
    host: `hooks.example.test:${port}`,
  });

  const check = await runTripwired(['check', '--config', config, '--json'], 'check');
  expect(check.tripped).toEqual([]);
  // The endpoint was reached by name and its certificate read (Pebble's TLS certificate).
  const results = (JSON.parse(check.stdout) as { results: Record<string, unknown>[] }).results;
  expect(results.find((r) => r.name === `web.example.test:${port}`)).toMatchObject({
    source: 'endpoint',
    status: 'ok',
    probe: { success: true, trusted: true },
    certificate: { names: expect.arrayContaining(['web.example.test']) as unknown },
  });

  // The heartbeat follows a successful cycle only: no failing certificate here.
  const daemonConfig = await writeConfig(
    'daemon',
    {
      daemon: {
        listen: '',
        heartbeat: `https://hooks.example.test:${port}/ping/daemon`,
        heartbeatTimeout: '5s',
      },
    },
    false,
  );
  const daemon = await runTripwired(
    ['run', '--config', daemonConfig, '--log-format', 'json'],
    'daemon',
    '/ping/daemon',
  );
  expect({ code: daemon.code, tripped: daemon.tripped }).toEqual({ code: 0, tripped: [] });
  expect(await requestFor('/ping/daemon')).toMatchObject({
    method: 'GET',
    host: `hooks.example.test:${port}`,
  });
}, 180_000);

test('check probes 200 endpoints by name from worker threads, and the threads use only the configured resolvers', async () => {
  const config = await tb.writeConfig([], { watch: { endpoints: MANY.map((n) => `${n}:${port}`) } });
  const check = await runTripwired(['check', '--config', config, '--json'], 'check-threads');
  expect(check.tripped).toEqual([]);
  // Threads only where there is more than one CPU to run them (probeThreadCount).
  expect(check.threads > 0).toBe(os.availableParallelism() > 1);
  const results = (JSON.parse(check.stdout) as { results: { name: string; probe: { success: boolean } }[] })
    .results;
  // Every name was resolved through BIND and its endpoint answered. The names are not on the
  // served certificate, so the rows are critical; what matters here is that each was reached.
  expect(results.map((r) => [r.name, r.probe.success])).toEqual(MANY.map((n) => [`${n}:${port}`, true]));
}, 60_000);

test('control: without dns.resolvers the endpoint goes to the system resolver, and the tripwire catches it', async () => {
  // `check` only: with no resolvers the DNS client would ask this host's resolvers, and no
  // query may leave the machine.
  const config = await tb.writeConfig([], {
    dns: { resolvers: [] },
    watch: { endpoints: [`web.example.test:${port}`] },
  });
  const check = await runTripwired(['check', '--config', config, '--json'], 'control');
  expect(check.tripped).toContain('web.example.test');
  expect(check.stdout + check.stderr).toContain(
    'resolver-tripwire: system resolver asked for web.example.test',
  );
}, 60_000);
