import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CheckResult } from '../inspect/check';
import type { AlertEvent } from '../notify';
import { atomicWriteFile } from '../store/atomic';

/**
 * Expiry reminders for every certificate the daemon's inventory sees, managed or not: one alert
 * when a certificate version crosses its warning or critical threshold (the thresholds of
 * `certpilot check`, src/inspect/findings.ts), one "resolved" alert when it is renewed or
 * replaced. What was sent is kept in the state directory, keyed by the row (name, source,
 * target) and the leaf's fingerprint, so neither a new cycle nor a restart repeats an alert.
 */

export const REMINDERS_FILE = 'reminders.json';
/** Certificate names and expiry dates only, but nobody else needs to write or read it. */
const REMINDERS_MODE = 0o600;

export type ExpiryLevel = 'warning' | 'critical';

export interface ReminderEntry {
  /** SHA-256 fingerprint of the leaf the alert was about. */
  readonly fingerprint: string;
  readonly level: ExpiryLevel;
}

/** Row key -> the last alert sent for it (absent = nothing outstanding). */
export type ReminderState = Readonly<Record<string, ReminderEntry>>;

export interface ReminderPlan {
  readonly alerts: readonly AlertEvent[];
  readonly state: ReminderState;
}

const LEVEL_RANK: Readonly<Record<ExpiryLevel, number>> = { warning: 1, critical: 2 };

export function remindersPath(stateDir: string): string {
  return path.join(stateDir, REMINDERS_FILE);
}

function rowKey(r: CheckResult): string {
  return `${r.name}|${r.source}|${r.target}`;
}

/** The expiry threshold the row's certificate is past, from its findings; undefined when none. */
export function expiryLevelOf(r: CheckResult): ExpiryLevel | undefined {
  const codes = new Set(r.findings.map((f) => f.code));
  if (codes.has('expired') || codes.has('critical')) return 'critical';
  if (codes.has('warning')) return 'warning';
  return undefined;
}

function describeRow(r: CheckResult): string {
  return r.name === r.target ? `${r.source} ${r.target}` : `${r.name} (${r.source} ${r.target})`;
}

function expiryAlert(r: CheckResult, level: ExpiryLevel): AlertEvent {
  const finding = r.findings.find((f) => f.code === 'expired' || f.code === level);
  return {
    kind: level === 'critical' ? 'expiry-critical' : 'expiry-warning',
    cert: r.name,
    domains: r.certificate?.names ?? [],
    message: `${describeRow(r)}: ${finding?.message ?? level}`,
    ...(r.certificate ? { serial: r.certificate.serial, notAfter: r.certificate.notAfter } : {}),
  };
}

function resolvedAlert(r: CheckResult, previous: ReminderEntry): AlertEvent {
  const replaced = r.certificate?.fingerprint256 !== previous.fingerprint;
  return {
    kind: 'expiry-resolved',
    cert: r.name,
    domains: r.certificate?.names ?? [],
    message: `${describeRow(r)}: ${replaced ? 'certificate replaced' : 'no longer'} below the ${previous.level} threshold`,
    ...(r.certificate ? { serial: r.certificate.serial, notAfter: r.certificate.notAfter } : {}),
  };
}

/**
 * Which alerts the rows call for, and the state to keep afterwards. A row whose certificate
 * could not be read (unreachable endpoint, missing file) changes nothing: an outage is not a
 * renewal, and the reminder must neither be resolved nor repeated because of it. A worse
 * threshold for the same version (warning, then critical) is a new alert; a better one without
 * a new version (thresholds raised in the config) resolves.
 */
export function planReminders(rows: readonly CheckResult[], previous: ReminderState): ReminderPlan {
  const alerts: AlertEvent[] = [];
  const state: Record<string, ReminderEntry> = {};
  for (const r of rows) {
    const key = rowKey(r);
    const before = previous[key];
    const fingerprint = r.certificate?.fingerprint256;
    if (fingerprint === undefined) {
      if (before) state[key] = before;
      continue;
    }
    const level = expiryLevelOf(r);
    if (level === undefined) {
      if (before) alerts.push(resolvedAlert(r, before));
      continue;
    }
    const repeat = before?.fingerprint === fingerprint && LEVEL_RANK[before.level] >= LEVEL_RANK[level];
    if (before && before.fingerprint !== fingerprint) alerts.push(resolvedAlert(r, before));
    if (!repeat) alerts.push(expiryAlert(r, level));
    state[key] = repeat && before ? before : { fingerprint, level };
  }
  // Rows no longer in the config are not carried over: nobody watches them any more.
  return { alerts, state };
}

/** The persisted reminder state; empty when none was written yet. A damaged file throws. */
export async function readReminderState(stateDir: string): Promise<ReminderState> {
  let text: string;
  try {
    text = await fs.readFile(remindersPath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const v = JSON.parse(text) as { version?: unknown; sent?: unknown };
  if (v.version !== 1 || typeof v.sent !== 'object' || v.sent === null) {
    throw new Error(`${remindersPath(stateDir)}: not a reminder state (version 1)`);
  }
  return v.sent as ReminderState;
}

/** Persists the state atomically (a crash leaves the old or the new file, never half of one). */
export async function writeReminderState(stateDir: string, state: ReminderState): Promise<void> {
  const body = JSON.stringify({ version: 1, sent: state }, null, 2) + '\n';
  // A watch-only configuration has no store that would have created the directory.
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await atomicWriteFile(remindersPath(stateDir), body, { mode: REMINDERS_MODE });
}
