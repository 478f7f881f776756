import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CheckResult } from '../inspect/check';
import type { AlertEvent, Notifier } from '../notify';
import { atomicWriteFile } from '../store/atomic';

/**
 * Expiry reminders for every certificate the daemon's inventory sees, managed or not: one alert
 * when a certificate version crosses its warning or critical threshold (the thresholds of
 * `certpilot check`, src/inspect/findings.ts), one "resolved" alert when it is renewed or
 * replaced. What was sent is kept in the state directory, keyed by the row (name, source,
 * target) and the leaf's fingerprint, so neither a new cycle nor a restart repeats an alert.
 *
 * One critical alert per certificate version: a managed certificate's stored version is keyed by
 * its name alone (managedKey), its endpoints serving that same version are covered by it (no
 * alert of their own; one serving another version still alerts), and the renewal's `critical`
 * alert (a failing renewal with little time left) shares the stored version's entry through
 * gateCritical: whichever of `critical` and `expiry-critical` comes first is the only one for
 * that version, across cycles and restarts. `renewal-failed` (with its reason) is not gated:
 * renewal attempts are spaced by their backoff, and each says why it failed.
 */

export const REMINDERS_FILE = 'reminders.json';
/** Certificate names and expiry dates only, but nobody else needs to write or read it. */
const REMINDERS_MODE = 0o600;

export type ExpiryLevel = 'warning' | 'critical';

export interface ReminderEntry {
  /** SHA-256 fingerprint of the leaf the alert was about (absent when gateCritical wrote it). */
  readonly fingerprint?: string;
  /** Its serial: the renewal's `critical` alert knows the version by serial only. */
  readonly serial?: string;
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

/** The entry of a managed certificate's stored version (shared with gateCritical). */
export function managedKey(name: string): string {
  return `${name}|store`;
}

function rowKey(r: CheckResult): string {
  return r.managed && r.source === 'file' ? managedKey(r.name) : `${r.name}|${r.source}|${r.target}`;
}

function sameVersion(entry: ReminderEntry, cert: { fingerprint256: string; serial: string }): boolean {
  return entry.fingerprint !== undefined
    ? entry.fingerprint === cert.fingerprint256
    : entry.serial === cert.serial;
}

/** Managed certificate name -> fingerprint of its stored version, from the rows. */
function storedVersions(rows: readonly CheckResult[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of rows) {
    if (r.managed && r.source === 'file' && r.certificate) out.set(r.name, r.certificate.fingerprint256);
  }
  return out;
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
  const replaced = !r.certificate || !sameVersion(previous, r.certificate);
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
 * a new version (thresholds raised in the config) resolves. An endpoint of a managed certificate
 * serving its stored version is covered by the stored row's alert.
 */
export function planReminders(rows: readonly CheckResult[], previous: ReminderState): ReminderPlan {
  const alerts: AlertEvent[] = [];
  const state: Record<string, ReminderEntry> = {};
  const stored = storedVersions(rows);
  for (const r of rows) {
    const key = rowKey(r);
    const before = previous[key];
    const cert = r.certificate;
    if (cert === undefined) {
      if (before) state[key] = before;
      continue;
    }
    const covered = r.managed && r.source === 'endpoint' && stored.get(r.name) === cert.fingerprint256;
    const level = covered ? undefined : expiryLevelOf(r);
    if (level === undefined) {
      if (before) alerts.push(resolvedAlert(r, before));
      continue;
    }
    const same = before !== undefined && sameVersion(before, cert);
    const repeat = same && LEVEL_RANK[before.level] >= LEVEL_RANK[level];
    if (before && !same) alerts.push(resolvedAlert(r, before));
    if (!repeat) alerts.push(expiryAlert(r, level));
    const entry = { fingerprint: cert.fingerprint256, serial: cert.serial };
    state[key] = repeat ? { ...entry, level: before.level } : { ...entry, level };
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

function replacedAlert(e: AlertEvent, before: ReminderEntry): AlertEvent {
  const old = before.serial !== undefined ? ` (serial ${before.serial})` : '';
  return {
    kind: 'expiry-resolved',
    ...(e.cert !== undefined ? { cert: e.cert } : {}),
    ...(e.domains ? { domains: e.domains } : {}),
    message: `${e.cert ?? ''}: certificate replaced${old}; the ${before.level} alert was about that version`,
  };
}

/**
 * The daemon's notifier for renewals: a `critical` alert goes out once per certificate version
 * (see the top of this file), recorded in the reminder state before it is sent. Everything else
 * passes through. A state directory that cannot be read or written lets the alert through: a
 * repeated page is better than a lost one.
 */
export function gateCritical(inner: Notifier, stateDir: string, log: Logger): Notifier {
  return {
    async notify(e) {
      if (e.kind !== 'critical' || e.cert === undefined) return inner.notify(e);
      const key = managedKey(e.cert);
      try {
        const state = await readReminderState(stateDir);
        const before = state[key];
        if (before?.level === 'critical' && before.serial === e.serial) {
          log.info('critical alert already sent for this version', { cert: e.cert, serial: e.serial });
          return;
        }
        const entry: ReminderEntry = { ...(e.serial ? { serial: e.serial } : {}), level: 'critical' };
        await writeReminderState(stateDir, { ...state, [key]: entry });
        // The entry of an older version is replaced here, so its reminder resolves here too.
        if (before?.serial !== undefined && before.serial !== e.serial)
          await inner.notify(replacedAlert(e, before));
      } catch (err) {
        log.warn('reminder state unusable; critical alert sent without dedup', { error: describeError(err) });
      }
      return inner.notify(e);
    },
  };
}
