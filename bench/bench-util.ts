import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { mapLimit } from '../src/core/concurrency';
import { CertStore } from '../src/store/cert-store';
import { makeCa, makeCertificate } from '../test/helpers/certs';

/** Shared by the check and no-op renew benchmarks: run the built CLI as its own process, time it. */

export const BIN = path.join(__dirname, '..', 'bin', 'certpilot.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** User + system CPU of the certpilot process: steadier than wall time on a shared machine. */
  cpuMs: number;
}

/** Preloaded with `node -r`: prints the process's own CPU time at exit. */
const CPU_PROBE = path.join(__dirname, 'cpu-probe.js');

/** Spawns `node bin/certpilot.js ARGS`; wall time from spawn to exit, as a shell's `time` sees it. */
export function runCertpilot(args: readonly string[], nodeArgs: readonly string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-r', CPU_PROBE, ...nodeArgs, BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const wallMs = performance.now() - started;
      const cpuMs = Number(/BENCH_CPU_MS=(\d+)/.exec(stderr)?.[1] ?? NaN);
      resolve({ code: code ?? -1, stdout, stderr, wallMs, cpuMs });
    });
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * Runs `times` measured runs after `warmups` unmeasured ones (default one: the page cache, not a
 * JIT, since each run is a new process; a long-lived peer such as the endpoint farm may need more).
 */
export async function timeRuns(
  args: readonly string[],
  times: number,
  accept: (r: Run) => void,
  warmups = 1,
): Promise<{ runs: number[]; medianMs: number; medianCpuMs: number; last: Run }> {
  for (let i = 0; i < warmups; i++) accept(await runCertpilot(args));
  const runs: number[] = [];
  const cpu: number[] = [];
  let last: Run | undefined;
  for (let i = 0; i < times; i++) {
    last = await runCertpilot(args);
    accept(last);
    runs.push(Math.round(last.wallMs));
    cpu.push(last.cpuMs);
  }
  return { runs, medianMs: median(runs), medianCpuMs: median(cpu), last: last as Run };
}

export function machine(): string {
  return `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

const DAY_MS = 86_400_000;

/**
 * Installs `n` certificates named c0..c<n-1> (c<i>.example.test, one shared key, 60 of 90 days
 * left: none is due) straight into `stateDir` with CertStore and a throwaway CA. No ACME.
 */
export async function installNotDueCertificates(stateDir: string, n: number): Promise<void> {
  const now = Date.now();
  const ca = makeCa();
  const store = new CertStore({ stateDir, archiveDepth: 5 });
  const validity = { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now + 60 * DAY_MS) };
  const first = makeCertificate({ names: ['c0.example.test'], issuer: ca, ...validity });
  await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    16,
    async (i) => {
      const c =
        i === 0
          ? first
          : makeCertificate({ names: [`c${i}.example.test`], issuer: ca, keyPem: first.keyPem, ...validity });
      await store.install(`c${i}`, {
        cert: c.certPem,
        chain: ca.certPem,
        fullchain: c.certPem + ca.certPem,
        key: c.keyPem,
      });
    },
  );
}
