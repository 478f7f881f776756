import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

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

/** Runs `times` measured runs after one warm-up (page cache, not a JIT: each run is a new process). */
export async function timeRuns(
  args: readonly string[],
  times: number,
  accept: (r: Run) => void,
): Promise<{ runs: number[]; medianMs: number; medianCpuMs: number; last: Run }> {
  accept(await runCertpilot(args));
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
