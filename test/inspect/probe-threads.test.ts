import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { probeThreadCount as probeThreadCountFromSource } from '../../src/inspect/probe-threads';
import type { ProbeOptions, ProbeResult } from '../../src/inspect/remote';
import { makeCa } from '../helpers/certs';
import { startSmtpServer } from '../helpers/smtp-server';
import {
  LOOPBACK,
  closedPort,
  startHttpServer,
  startSilentServer,
  startTlsServer,
  serverTracker,
} from '../helpers/tls-servers';
import { makePki, probeTarget, type Pki } from './fixtures';

/**
 * Probing from worker threads (inspect/probe-threads.ts) must give exactly what probing in
 * this thread gives. A thread runs the compiled worker, so these tests use the built modules
 * (jest's globalSetup builds dist/): the same probeMany, once in this thread and once spread
 * over real threads, against the same loopback servers of every kind.
 */
const DIST = path.join(__dirname, '..', '..', 'dist', 'inspect');
/* eslint-disable @typescript-eslint/no-require-imports */
const remote = require(path.join(DIST, 'remote.js')) as typeof import('../../src/inspect/remote');
const pool = require(path.join(DIST, 'probe-threads.js')) as typeof import('../../src/inspect/probe-threads');
/* eslint-enable @typescript-eslint/no-require-imports */

const pki: Pki = makePki(new Date());
const servers = serverTracker();
afterAll(() => servers.closeAll());
const serve = servers.serve;

const target = (port: number, extra: Partial<ProbeOptions> = {}): ProbeOptions =>
  probeTarget(pki, port, extra);

/** A probe result without its timing (the only thing allowed to differ), as COMPARE prints it. */
type Comparable = Omit<ProbeResult, 'elapsedMs' | 'chain'> & { chain: unknown[] };

const EXPECTED_OUTCOMES = [
  'trusted',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'not-tls',
  'unreachable',
  'handshake-timeout',
];

/** Thread entries for the pool that die: at once, and right after taking their first probe. */
const WORKERS = mkdtempSync(path.join(os.tmpdir(), 'certpilot-probe-threads-'));
const DEAD_WORKER = path.join(WORKERS, 'dead.js');
const DYING_WORKER = path.join(WORKERS, 'dying.js');
writeFileSync(DEAD_WORKER, 'process.exit(3);\n');
writeFileSync(
  DYING_WORKER,
  `const { parentPort } = require('node:worker_threads');
parentPort.once('message', () => setImmediate(() => { throw new Error('probe thread test: dies'); }));
require(${JSON.stringify(path.join(DIST, 'probe-worker.js'))});
`,
);
afterAll(() => rmSync(WORKERS, { recursive: true, force: true }));

/**
 * Probes the endpoints (JSON on stdin) with the built probeMany in this thread, with threads
 * as `check` asks for them, and with the pool forced to two and three threads; prints each
 * run's results without timings, the certificates as parsed (every field of CertInfo).
 */
const COMPARE = `
const path = require('node:path');
const remote = require(path.join(${JSON.stringify(DIST)}, 'remote.js'));
const pool = require(path.join(${JSON.stringify(DIST)}, 'probe-threads.js'));
const cache = require(path.join(${JSON.stringify(DIST)}, '..', 'x509', 'cache.js'));
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', async () => {
  const eps = JSON.parse(input);
  const strip = (rs) => rs.map(({ elapsedMs, ...r }) => {
    if (typeof elapsedMs !== 'number') throw new Error('no elapsedMs');
    return { ...r, chain: r.chain.map((c) => ({ ...c })) };
  });
  const opts = { concurrency: 32 };
  const here = strip(await remote.probeMany(eps, opts));
  const auto = strip(await remote.probeMany(eps, { ...opts, threads: true }));
  // The pool's own output, parsed as probeMany parses it.
  const forced = async (threads, workerFile) =>
    strip(
      (await pool.probeInThreads(eps, { ...opts, threads, workerFile })).map(({ ders, ...rest }) => ({
        ...rest,
        chain: ders.map((d) => cache.parseCertificateDerCached(d)),
      })),
    );
  const two = await forced(2);
  const three = await forced(3);
  // Threads that die: at once (as when no thread can be started), or after their first probe.
  const dead = await forced(2, ${JSON.stringify(DEAD_WORKER)});
  const dying = await forced(2, ${JSON.stringify(DYING_WORKER)});
  process.stdout.write(JSON.stringify({ here, auto, two, three, dead, dying }));
});
`;

/** Runs `script` in a plain Node process with `stdin` as its input; resolves with its stdout. */
function runNode(script: string, stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`node exited ${code}: ${stderr}`)),
    );
    child.stdin.end(stdin);
  });
}

describe('probeThreadCount', () => {
  it('uses one thread per CPU, up to four, with at least 100 endpoints and one probe in flight each', () => {
    expect(pool.probeThreadCount(1000, 64, 2)).toBe(2);
    expect(pool.probeThreadCount(1000, 64, 16)).toBe(4);
    expect(pool.probeThreadCount(250, 64, 16)).toBe(2);
    expect(pool.probeThreadCount(199, 64, 16)).toBe(1);
    expect(pool.probeThreadCount(1000, 3, 16)).toBe(3);
    expect(pool.probeThreadCount(1000, 64, 1)).toBe(1);
  });

  it('is 0 when run from the TypeScript sources, where there is no compiled worker', () => {
    expect(probeThreadCountFromSource(1000, 64, 16)).toBe(0);
  });
});

describe('probing from threads', () => {
  let endpoints: ProbeOptions[];

  beforeAll(async () => {
    const chain = [pki.intermediate.certPem];
    const valid = await serve(startTlsServer({ ...pki.valid, chainPems: chain }));
    const expired = await serve(startTlsServer({ ...pki.expired, chainPems: chain }));
    const wrongName = await serve(startTlsServer({ ...pki.wrongSan, chainPems: chain }));
    const selfSigned = await serve(startTlsServer(pki.selfSigned));
    const leafOnly = await serve(startTlsServer(pki.valid));
    const http = await serve(startHttpServer());
    const silent = await serve(startSilentServer());
    const refused = await closedPort();
    const smtp = await serve(startSmtpServer({ ...pki.valid, chainPems: chain }));
    const smtpWithoutTls = await serve(startSmtpServer({ ...pki.valid, withoutStarttls: true }));
    // Two roots with the same name: not a plain trust store, so the thread takes Node's chain.
    const twin = makeCa({ commonName: 'certpilot test root' });
    const kinds: ProbeOptions[] = [
      target(valid.port),
      target(expired.port),
      target(wrongName.port),
      target(selfSigned.port),
      target(leafOnly.port),
      target(http.port),
      target(refused),
      target(smtp.port, { starttls: 'smtp' }),
      target(smtpWithoutTls.port, { starttls: 'smtp' }),
      target(valid.port, { caBundle: twin.certPem + pki.root.certPem }),
      target(valid.port, { caBundle: undefined }),
      target(valid.port, { servername: 'www.example.test' }),
      target(valid.port, { host: LOOPBACK, connectAddress: undefined }),
    ];
    endpoints = Array.from({ length: 240 }, (_, i) => kinds[i % kinds.length] as ProbeOptions);
    // A few that can only time out, so threads also return a handshake timeout.
    for (const i of [5, 100, 200]) endpoints[i] = target(silent.port, { handshakeTimeoutMs: 300 });
  });

  it('gives the same results, in the same order, as probing in this thread', async () => {
    // In a plain Node process, as the CLI runs: in Jest's sandbox an error from Node's own
    // modules is not an instance of the sandbox's Error, and messages would differ for that.
    const out = await runNode(COMPARE, JSON.stringify(endpoints));
    const runs = JSON.parse(out) as Record<
      'here' | 'auto' | 'two' | 'three' | 'dead' | 'dying',
      Comparable[]
    >;
    const codes = new Set(runs.here.map((r) => r.error?.code ?? (r.trusted ? 'trusted' : r.trustError)));
    // Every kind of outcome is present (STARTTLS too), so the comparison covers each.
    expect(runs.here.filter((r, i) => endpoints[i]?.starttls && r.trusted)).not.toHaveLength(0);
    expect([...codes].sort()).toEqual(EXPECTED_OUTCOMES.slice().sort());
    expect(runs.here).toHaveLength(endpoints.length);
    // `auto` is what `check` does: threads when the machine has more than one CPU.
    expect(runs.auto).toEqual(runs.here);
    // With the thread count forced, so this holds on a machine of one CPU too.
    expect(runs.two).toEqual(runs.here);
    expect(runs.three).toEqual(runs.here);
    // A thread lost costs no result: its probes are made in the calling thread instead.
    expect(runs.dead).toEqual(runs.here);
    expect(runs.dying).toEqual(runs.here);
  }, 60_000);

  it('rejects at once when the shared signal aborts, and closes the probes in flight', async () => {
    const open = new Set<net.Socket>();
    let connected!: () => void;
    const allConnected = new Promise<void>((r) => (connected = r));
    const silent = await serve(
      startSilentServer((s) => {
        open.add(s);
        if (open.size === 4) connected();
      }),
    );
    const closed = new Promise<void>((resolve) => {
      let n = 0;
      const onClose = (): void => void (++n === 4 && resolve());
      void allConnected.then(() => open.forEach((s) => s.on('close', onClose)));
    });
    const ac = new AbortController();
    const call = pool.probeInThreads(
      Array.from({ length: 4 }, () => target(silent.port, { handshakeTimeoutMs: 60_000 })),
      { threads: 2, concurrency: 4, signal: ac.signal },
    );
    await allConnected;
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    await closed;
  });

  it("rejects when one endpoint's own signal aborts, as in this thread", async () => {
    const silent = await serve(startSilentServer());
    const run = async (threads: boolean): Promise<unknown> => {
      const ac = new AbortController();
      const eps = Array.from({ length: 240 }, (_, i) =>
        target(silent.port, { handshakeTimeoutMs: 60_000, ...(i === 7 ? { signal: ac.signal } : {}) }),
      );
      const call = threads
        ? pool.probeInThreads(eps, { threads: 2, concurrency: 8 })
        : remote.probeMany(eps, { concurrency: 8 });
      setImmediate(() => ac.abort());
      return call.catch((e: unknown) => e);
    };
    const [here, threaded] = [await run(false), await run(true)];
    expect(here).toMatchObject({ code: 'ABORTED' });
    expect(threaded).toMatchObject({ code: 'ABORTED', message: (here as Error).message });
  });

  it('passes an unexpected error in a thread on, as probing in this thread does', async () => {
    const bad = [target(70_000)];
    const here = (await remote.probeMany(bad).catch((e: unknown) => e)) as Error;
    const threaded = await pool
      .probeInThreads(bad, { threads: 2, concurrency: 2 })
      .catch((e: unknown) => e as Error);
    expect(here).toMatchObject({ name: 'RangeError' });
    expect(threaded).toMatchObject({ name: here.name, message: here.message });
  });
});
