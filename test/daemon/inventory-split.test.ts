import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { makeCa, makeCertificate } from '../helpers/certs';
import { freePort } from '../helpers/ports';
import { listen } from '../helpers/tls-servers';
import { get, startDaemon } from '../helpers/daemon-child';

/**
 * Issue #13 item 1, the split: `certpilot run` (a child process) reads watched files every
 * cycle but probes endpoints only every `daemon.endpointInterval`. A file replaced on disk shows
 * on /metrics at the next cycle while the endpoint (a local TLS server counting connections) is
 * not probed again; after a restart the endpoint's series are back within one cycle from the
 * persisted inventory, still without a new probe.
 */
const DAY_MS = 86_400_000;

let dir: string;
let server: tls.Server;
let port = 0;
let probes = 0;
const ca = makeCa();

function leafPem(daysLeft: number): { certPem: string; keyPem: string } {
  const now = Date.now();
  return makeCertificate({
    names: ['probe.example.test'],
    issuer: ca,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + daysLeft * DAY_MS),
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-split-'));
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
  const served = leafPem(50);
  server = tls.createServer({ key: served.keyPem, cert: served.certPem + ca.certPem });
  // TCP connections, not completed handshakes: a probe may hang up before the server's side of
  // a TLS 1.3 handshake is done.
  server.on('connection', () => probes++);
  server.on('secureConnection', (s) => s.on('error', () => undefined));
  server.on('tlsClientError', () => undefined);
  port = await listen(server);
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** certpilot_certificate_not_after_timestamp_seconds of the watched file, from /metrics. */
function fileNotAfter(metrics: string, file: string): number | undefined {
  const line = metrics
    .split('\n')
    .find(
      (l) =>
        l.startsWith('certpilot_certificate_not_after_timestamp_seconds{') &&
        l.includes(`endpoint="${file}"`),
    );
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('a replaced file shows at the next cycle; endpoints are probed on their own interval, also across a restart', async () => {
  const file = path.join(dir, 'site.crt');
  const first = leafPem(40);
  fs.writeFileSync(file, first.certPem + ca.certPem);
  const listenPort = await freePort();
  const config = path.join(dir, 'certpilot.yaml');
  fs.writeFileSync(
    config,
    [
      'storage:',
      `  stateDir: ${path.join(dir, 'state')}`,
      'daemon:',
      `  listen: 127.0.0.1:${listenPort}`,
      '  checkInterval: 1s',
      '  endpointInterval: 1h',
      'watch:',
      '  files:',
      `    - path: ${file}`,
      '  endpoints:',
      '    - host: probe.example.test',
      `      port: ${port}`,
      '      connectAddress: 127.0.0.1',
      `      caBundle: ${path.join(dir, 'ca.pem')}`,
      '',
    ].join('\n'),
  );
  const metricsUrl = `http://127.0.0.1:${listenPort}/metrics`;
  const endpointSeries = (m: string): string[] =>
    m.split('\n').filter((l) => l.includes(`endpoint="probe.example.test:${port}@127.0.0.1"`));

  let d = startDaemon(config);
  let before: string[];
  try {
    await d.cycles(1);
    const m1 = (await get(metricsUrl)).body;
    expect(fileNotAfter(m1, file)).toBeGreaterThan(Date.now() / 1000 + 39 * 86_400);
    before = endpointSeries(m1);
    expect(before.some((l) => l.startsWith('certpilot_endpoint_probe_success{') && l.endsWith(' 1'))).toBe(
      true,
    );
    expect(probes).toBe(1);

    const replacement = leafPem(90);
    fs.writeFileSync(file, replacement.certPem + ca.certPem);
    // The cycle running now may have read the file before the write: two more cycles suffice.
    await d.cycles(3);
    const m2 = (await get(metricsUrl)).body;
    expect(fileNotAfter(m2, file)).toBeGreaterThan(Date.now() / 1000 + 89 * 86_400);
    expect(endpointSeries(m2)).toEqual(before);
    expect(probes).toBe(1);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);

  d = startDaemon(config);
  try {
    await d.cycles(1);
    const m3 = (await get(metricsUrl)).body;
    expect(endpointSeries(m3)).toEqual(before);
    expect(fileNotAfter(m3, file)).toBeGreaterThan(Date.now() / 1000 + 89 * 86_400);
    await d.cycles(3);
    expect(probes).toBe(1);
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
}, 120_000);
