import { promises as fs } from 'node:fs';
import path from 'node:path';
import { atomicWriteFile } from '../store/atomic';

/**
 * "Last successful run", kept in the state directory so that something outside the renewer
 * (`certpilot check` under Nagios, node_exporter's textfile) can tell a dead or stuck service
 * from a quiet one: a systemd timer that stopped firing, or a daemon that hangs, logs nothing.
 * Successful means the run went through every certificate and nothing failed (the renew
 * report's `ok`); a certificate failing for days therefore also ends up here, after its own
 * alerts. Written by `certpilot run` after each such cycle and by `certpilot renew`.
 */

export const LAST_RUN_FILE = 'last-run.json';
/** Nothing secret in it (a time and a command name); readable by monitoring users. */
const LAST_RUN_MODE = 0o644;

export interface LastRun {
  /** When the successful run finished. */
  readonly at: Date;
  /** Which command ran it. */
  readonly by: 'run' | 'renew';
}

export function lastRunPath(stateDir: string): string {
  return path.join(stateDir, LAST_RUN_FILE);
}

/** Records a successful run (atomically: a reader never sees half a file). */
export async function recordSuccessfulRun(stateDir: string, run: LastRun): Promise<void> {
  const body = JSON.stringify({ lastSuccessAt: run.at.toISOString(), by: run.by }) + '\n';
  await atomicWriteFile(lastRunPath(stateDir), body, { mode: LAST_RUN_MODE });
}

/**
 * The recorded last successful run; undefined when none was ever recorded (a new install, or
 * one from before this file existed). A damaged file throws: that is for the caller to report.
 */
export async function readLastRun(stateDir: string): Promise<LastRun | undefined> {
  let text: string;
  try {
    text = await fs.readFile(lastRunPath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as { lastSuccessAt?: unknown; by?: unknown };
  const at = typeof v.lastSuccessAt === 'string' ? new Date(v.lastSuccessAt) : undefined;
  if (!at || Number.isNaN(at.getTime())) throw new Error(`${lastRunPath(stateDir)}: no valid lastSuccessAt`);
  return { at, by: v.by === 'renew' ? 'renew' : 'run' };
}
