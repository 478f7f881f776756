import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeCa, makeCertificate } from '../test/helpers/certs';

/**
 * N TLS endpoints on 127.0.0.1 for the benchmarks, all served by ONE separate Node process, so
 * the servers' handshake work is not counted in the measured certpilot process. Each endpoint
 * serves `example.test` (leaf + intermediate) from a throwaway CA written to `caFile`.
 */

const DAY_MS = 86_400_000;

/**
 * The server process: one TLS server per port, all sharing one secure context. Written as
 * plain JS for `node -e`, so it needs no compilation and holds no certpilot code. Every
 * handshake gets the one shared context through SNI (certpilot always sends SNI for a host
 * name), instead of one copy of the same key material per server.
 */
const FARM = `
const tls = require('node:tls');
const { cert, key, n } = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'));
const ctx = tls.createSecureContext({ cert, key });
const servers = [];
let ready = 0;
const ports = new Array(n);
for (let i = 0; i < n; i++) {
  const s = tls.createServer({ SNICallback: (_name, cb) => cb(null, ctx) });
  s.on('tlsClientError', () => {});
  s.on('secureConnection', (c) => c.on('error', () => {}));
  s.listen(0, '127.0.0.1', () => {
    ports[i] = s.address().port;
    if (++ready === n) process.stdout.write(JSON.stringify(ports) + '\\n');
  });
  servers.push(s);
}
process.on('SIGTERM', () => process.exit(0));
`;

export interface EndpointFarm {
  ports: number[];
  /** The CA that issued the served chain (a watched endpoint's `caBundle`). */
  caFile: string;
  /** `watch.endpoints` entries for a certpilot config. */
  watchEntries(): Record<string, unknown>[];
  stop(): void;
}

/**
 * Runs the farm script on `file` (JSON: cert, key, n) and resolves with the ports it listens
 * on once every server is up. bench/check-bench.ts uses it too.
 */
export function spawnFarm(file: string): Promise<{ child: ChildProcess; ports: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', FARM, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve({ child, ports: JSON.parse(out) as number[] });
    });
    child.on('exit', (code) => reject(new Error(`endpoint farm exited ${code}`)));
  });
}

/** Starts the farm with `n` endpoints; its files go to `dir`. */
export async function startEndpointFarm(dir: string, n: number): Promise<EndpointFarm> {
  const now = Date.now();
  const ca = makeCa();
  const intermediate = makeCertificate({
    names: [],
    isCA: true,
    issuer: ca,
    commonName: 'bench intermediate',
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 1000 * DAY_MS),
  });
  const served = makeCertificate({
    names: ['example.test'],
    issuer: intermediate,
    notBefore: new Date(now - 30 * DAY_MS),
    notAfter: new Date(now + 60 * DAY_MS),
  });
  const caFile = path.join(dir, 'farm-ca.pem');
  writeFileSync(caFile, ca.certPem);
  const farmFile = path.join(dir, 'farm.json');
  writeFileSync(
    farmFile,
    JSON.stringify({ cert: served.certPem + intermediate.certPem, key: served.keyPem, n }),
  );
  const { child, ports } = await spawnFarm(farmFile);
  return {
    ports,
    caFile,
    watchEntries: () =>
      ports.map((port) => ({ host: 'example.test', port, connectAddress: '127.0.0.1', caBundle: caFile })),
    stop: () => void child.kill('SIGTERM'),
  };
}
