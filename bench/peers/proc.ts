import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Runs one client process the same way for every client: under GNU time (`/usr/bin/time -f %M`,
 * the peak resident set size in KiB that wait4() reports for the process and the children it
 * waited for), in its own process group, with a hard deadline after which the whole group is
 * killed. Output is kept (the last 64 KiB of each stream) for error messages and parsing.
 */
export const GNU_TIME = '/usr/bin/time';

export interface ProcResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  wallMs: number;
  /** Peak RSS in KiB from GNU time; NaN when unknown. */
  maxRssKb: number;
  stdout: string;
  stderr: string;
}

export interface ProcOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  /** Directory for GNU time's output file. */
  scratchDir: string;
  /** Measure with GNU time (default true). */
  measureRss?: boolean;
}

// 1 MiB: certpilot's --json report for N = 200 is about 130 KB, and it is parsed whole.
const KEEP = 1024 * 1024;
const live = new Set<number>();
let seq = 0;

/** Kills every process group still running (used on exit and on signals). */
export function killAll(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export async function runProc(argv: string[], opts: ProcOptions): Promise<ProcResult> {
  const measure = opts.measureRss !== false && existsSync(GNU_TIME);
  const timeFile = path.join(opts.scratchDir, `time-${process.pid}-${++seq}.txt`);
  const full = measure ? [GNU_TIME, '-f', '%M', '-o', timeFile, ...argv] : argv;
  const started = performance.now();
  const child = spawn(full[0]!, full.slice(1), {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so a timeout kills the client and its children
  });
  if (child.pid) live.add(child.pid);
  let stdout = '';
  let stderr = '';
  const keep = (s: string, c: Buffer): string => (s + c.toString('utf8')).slice(-KEEP);
  child.stdout.on('data', (c: Buffer) => (stdout = keep(stdout, c)));
  child.stderr.on('data', (c: Buffer) => (stderr = keep(stderr, c)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, opts.timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve) => {
      child.once('error', (err) => {
        stderr += `\nspawn failed: ${err.message}`;
        resolve({ code: -1, signal: null });
      });
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    },
  );
  const wallMs = performance.now() - started;
  clearTimeout(timer);
  if (child.pid) live.delete(child.pid);
  let maxRssKb = NaN;
  if (measure) {
    const text = await readFile(timeFile, 'utf8').catch(() => '');
    // GNU time writes "Command exited with non-zero status N" before the format line on failure.
    const last = text.trim().split('\n').pop() ?? '';
    if (/^\d+$/.test(last)) maxRssKb = Number(last);
    await rm(timeFile, { force: true });
  }
  return { argv, code, signal, timedOut, wallMs, maxRssKb, stdout, stderr };
}

export function describeFailure(r: ProcResult): string {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exited ${r.code}`;
  return `${r.argv.join(' ')} ${why}\n--- stdout (tail)\n${r.stdout.slice(-4000)}\n--- stderr (tail)\n${r.stderr.slice(-4000)}`;
}
