import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isTempName } from '../../src/store/atomic';
import { runCli, type CliResult } from '../helpers/testbed';

/**
 * Shared by the fault suites (issue #7 items 2-4): run `certpilot renew` in process with JSON
 * output and JSON logs, and compare what the store holds before and after a failure.
 */

/** The four stable files of a certificate in the store (symlinks into its current version). */
export const STORE_FILES = ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem'] as const;

export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface CertReport {
  name: string;
  status: string;
  reason: string;
  detail: string;
  renewAt: string | null;
  serial: string | null;
  error: string | null;
  errorCode: string | null;
}

export interface RenewRun extends CliResult {
  report: { ok: boolean; certificates: CertReport[] };
  logs: LogLine[];
  /** Wall time of the whole command. */
  ms: number;
  cert(name: string): CertReport;
  /** Log lines with this message. */
  logged(message: string): LogLine[];
}

export function parseLogs(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** `certpilot renew ARGS --config CONFIG --json --log-format json`, parsed. */
export async function renew(config: string, ...args: string[]): Promise<RenewRun> {
  const started = Date.now();
  const res = await runCli(['renew', ...args, '--config', config, '--json', '--log-format', 'json']);
  const ms = Date.now() - started;
  let report: RenewRun['report'];
  try {
    report = JSON.parse(res.stdout) as RenewRun['report'];
  } catch {
    throw new Error(`renew printed no JSON report (exit ${res.code}):\n${res.stdout}\n${res.stderr}`);
  }
  const logs = parseLogs(res.stderr);
  return {
    ...res,
    report,
    logs,
    ms,
    cert(name) {
      const c = report.certificates.find((x) => x.name === name);
      if (!c) throw new Error(`no outcome for ${name} in ${res.stdout}`);
      return c;
    },
    logged: (message) => logs.filter((l) => l.message === message),
  };
}

/** Contents of the four stable files (read through the links), keyed by file name. */
export async function snapshot(stateDir: string, name: string): Promise<Record<string, Buffer>> {
  const dir = path.join(stateDir, 'certs', name);
  const entries = await Promise.all(
    STORE_FILES.map(async (f) => [f, await readFile(path.join(dir, f))] as const),
  );
  return Object.fromEntries(entries);
}

/** Asserts byte identity file by file (a failure names the file). */
export function expectSameFiles(after: Record<string, Buffer>, before: Record<string, Buffer>): void {
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  for (const [file, buf] of Object.entries(before)) {
    expect({ file, identical: after[file]!.equals(buf) }).toEqual({ file, identical: true });
  }
}

/** Every temp file or directory (atomic-write leftovers) below `root`, as relative paths. */
export async function tempFilesBelow(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (isTempName(e.name)) out.push(path.relative(root, p));
      if (e.isDirectory() && !e.isSymbolicLink()) await walk(p);
    }
  };
  await walk(root);
  return out.sort();
}

/** Gaps in ms between consecutive timestamps. */
export function gaps(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}
