import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

/** The built CLI, as the packages and the unit run it. */
export const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; `input` is written to its stdin. */
export function runProgram(file: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** A GET on a fresh connection (no keep-alive between a test's requests). */
export function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .once('error', reject);
  });
}

export interface DaemonChild {
  child: ChildProcess;
  /** Resolves once n check cycles ended (from the JSON log); rejects if the daemon exits first. */
  cycles: (n: number) => Promise<void>;
  exited: Promise<number | null>;
  log: () => string;
}

/** `certpilot run --config CONFIG` as a child process, logging JSON at debug level. */
export function startDaemon(config: string): DaemonChild {
  const child = spawn(process.execPath, [
    BIN,
    'run',
    '--config',
    config,
    '--log-format',
    'json',
    '--log-level',
    'debug',
  ]);
  let log = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  const count = (): number => log.split('"message":"check cycle done"').length - 1;
  child.stderr.on('data', (c: Buffer) => {
    log += c.toString();
    for (const w of [...waiters]) if (count() >= w.n) w.resolve();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    log: () => log,
    cycles: (n) =>
      new Promise((resolve, reject) => {
        if (count() >= n) return resolve();
        waiters.push({ n, resolve });
        void exited.then((code) => reject(new Error(`daemon exited (${code}) before ${n} cycles:\n${log}`)));
      }),
  };
}
