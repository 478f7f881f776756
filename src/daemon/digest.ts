import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../core/clock';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AgentConfig, DigestSchedule } from '../config/types';
import type { CheckResult } from '../inspect/check';
import type { AlertEvent, Notifier } from '../notify';
import { atomicWriteFile } from '../store/atomic';

/**
 * `notify.digest`: one `digest` alert per period (daily at a UTC time of day, or every
 * interval) listing every row of the last inventory and readiness run that is not OK, with its
 * findings. A period in which everything is OK sends nothing: a daily "all good" message trains
 * people to stop reading the channel, and the daemon's heartbeat and /healthz already say it is
 * alive. Each period is handled once: the time of the last one is kept in
 * <stateDir>/digest.json (written before sending), so restarts neither repeat nor skip one. A
 * fresh installation sends its first digest one period after it starts.
 */

export const DIGEST_FILE = 'digest.json';
const DIGEST_MODE = 0o600;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

export interface DigestDeps {
  readonly log: Logger;
  readonly clock: Clock;
}

/** The start of the period `now` is in: the last HH:MM (UTC) passed, or the last interval step. */
export function periodStart(schedule: DigestSchedule, lastAt: number, now: number): number {
  if ('intervalMs' in schedule) return lastAt + schedule.intervalMs <= now ? now : lastAt;
  const today = Math.floor(now / DAY_MS) * DAY_MS + schedule.atMinuteOfDay * MINUTE_MS;
  return today <= now ? today : today - DAY_MS;
}

/** The digest's text: one line per row that is not OK; undefined when every row is OK. */
export function digestMessage(rows: readonly CheckResult[]): string | undefined {
  const bad = rows.filter((r) => r.status !== 'ok');
  if (bad.length === 0) return undefined;
  const lines = bad.map((r) => {
    const where = r.name === r.target ? `${r.source} ${r.target}` : `${r.name} (${r.source} ${r.target})`;
    const why = r.findings.filter((f) => f.severity !== 'info').map((f) => f.message);
    return `- ${r.status.toUpperCase()} ${where}${why.length > 0 ? `: ${why.join('; ')}` : ''}`;
  });
  return [`${bad.length} of ${rows.length} item(s) not OK:`, ...lines].join('\n');
}

export class Digest {
  /** Epoch ms of the last period handled; undefined until read from the state directory. */
  private lastAt: number | undefined;

  constructor(private readonly deps: DigestDeps) {}

  /** Sends the digest when a new period has begun. Never throws. */
  async refresh(config: AgentConfig, notifier: Notifier, rows: readonly CheckResult[]): Promise<void> {
    const schedule = config.notify?.digest;
    if (!schedule) return;
    const stateDir = config.storage.stateDir;
    const now = this.deps.clock.now().getTime();
    try {
      if (this.lastAt === undefined) {
        const stored = await readDigestState(stateDir);
        this.lastAt = stored ?? now;
        if (stored === undefined) await writeDigestState(stateDir, now);
      }
      const start = periodStart(schedule, this.lastAt, now);
      if (start <= this.lastAt) return;
      this.lastAt = start;
      await writeDigestState(stateDir, start);
    } catch (err) {
      this.deps.log.error('digest state unusable; no digest', { error: describeError(err) });
      return;
    }
    const message = digestMessage(rows);
    this.deps.log.info('digest period', { items: rows.length, sent: message !== undefined });
    if (message === undefined) return;
    const alert: AlertEvent = { kind: 'digest', message };
    await notifier.notify(alert);
  }
}

function digestPath(stateDir: string): string {
  return path.join(stateDir, DIGEST_FILE);
}

async function readDigestState(stateDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await fs.readFile(digestPath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const v = JSON.parse(text) as { version?: unknown; lastAt?: unknown };
  if (v.version !== 1 || typeof v.lastAt !== 'number') {
    throw new Error(`${digestPath(stateDir)}: not a digest state (version 1)`);
  }
  return v.lastAt;
}

async function writeDigestState(stateDir: string, lastAt: number): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await atomicWriteFile(digestPath(stateDir), JSON.stringify({ version: 1, lastAt }) + '\n', {
    mode: DIGEST_MODE,
  });
}
