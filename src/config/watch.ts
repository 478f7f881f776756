import { parseCertificateDeploy } from '../deploy/config';
import { DEFAULT_THRESHOLDS } from '../inspect/findings';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PROBE_CONCURRENCY,
} from '../inspect/remote';
import {
  parseAbsolutePath,
  parseBoolean,
  parseCertificateDomain,
  parseDuration,
  parseInteger,
} from './formats';
import { childPath, describeType, isPlainObject, type IssueList, unknownKeys } from './issues';
import type {
  AgentConfig,
  CheckSettings,
  ThresholdOverrides,
  ThresholdSettings,
  WatchedEndpoint,
  WatchedFile,
  WatchSettings,
} from './types';

/**
 * The monitoring sections: `check` (global thresholds, probe timeouts and concurrency),
 * `watch` (files and endpoints certpilot does not manage) and `certificates[].check`
 * (thresholds of one managed certificate). Lists of mappings are beyond convict, so they are
 * parsed here, element by element, into the same IssueList as the rest of the file: every
 * problem is reported at once, with its path, and unknown keys are errors.
 *
 * A file holding only `watch` is a valid configuration: nothing here requires an ACME account
 * or a DNS provider, and `certpilot check` never opens either.
 */

/** Root keys this module owns; the loader keeps them away from convict. */
export const CHECK_ROOT_KEYS = ['check', 'watch'] as const;

const THRESHOLD_KEYS = ['warningDays', 'criticalDays', 'warningRatio', 'criticalRatio'] as const;
const CHECK_KEYS = [...THRESHOLD_KEYS, 'connectTimeout', 'handshakeTimeout', 'concurrency'];
const WATCH_KEYS = ['files', 'endpoints'];
const FILE_KEYS = ['path', 'name', 'key', 'checkChain', 'names', ...THRESHOLD_KEYS];
/** Endpoint keys parsed by src/deploy/config.ts: one endpoint parser for deploy and check. */
const ENDPOINT_KEYS = ['host', 'port', 'servername', 'connectAddress', 'caBundle', 'starttls'];
const WATCH_ENDPOINT_KEYS = [...ENDPOINT_KEYS, 'name', 'names', ...THRESHOLD_KEYS];

/** Ten years: longer than any certificate a public CA issues; more is a typo. */
const MAX_THRESHOLD_DAYS = 3650;
/** More probes in flight than this look like a port scan and run into descriptor limits. */
export const MAX_CHECK_CONCURRENCY = 512;

export const DEFAULT_CHECK: CheckSettings = Object.freeze({
  thresholds: { ...DEFAULT_THRESHOLDS },
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  concurrency: DEFAULT_PROBE_CONCURRENCY,
});

/** The global check settings, defaults filled in when the file has no `check:` section. */
export function checkSettingsOf(config: Pick<AgentConfig, 'check'>): CheckSettings {
  return config.check ?? DEFAULT_CHECK;
}

/** Global thresholds with an entry's overrides applied. */
export function resolveThresholds(base: ThresholdSettings, over: ThresholdOverrides = {}): ThresholdSettings {
  return {
    warningDays: over.warningDays ?? base.warningDays,
    criticalDays: over.criticalDays ?? base.criticalDays,
    ...((over.warningRatio ?? base.warningRatio) !== undefined
      ? { warningRatio: over.warningRatio ?? base.warningRatio }
      : {}),
    ...((over.criticalRatio ?? base.criticalRatio) !== undefined
      ? { criticalRatio: over.criticalRatio ?? base.criticalRatio }
      : {}),
  };
}

// ---- small parsers -------------------------------------------------------------------------

const isSet = (v: unknown): boolean => v !== undefined && v !== null;

function parseDays(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`must be a number of days, not ${describeType(v)}`);
  if (v <= 0 || v > MAX_THRESHOLD_DAYS)
    throw new Error(`must be greater than 0 and at most ${MAX_THRESHOLD_DAYS}`);
  return v;
}

/** 1 is allowed: min(days, 1 × lifetime) is the day rule alone, the way to turn the fraction off. */
function parseThresholdRatio(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`must be a number, not ${describeType(v)}`);
  if (v <= 0 || v > 1) throw new Error('must be greater than 0 and at most 1 (a fraction of the lifetime)');
  return v;
}

function parseName(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '')
    throw new Error(`must be a non-empty string, not ${describeType(v)}`);
  if (/[\0\r\n]/.test(v)) throw new Error('must not contain line breaks or NUL characters');
  return v.trim();
}

function opt<T>(
  m: Record<string, unknown>,
  key: string,
  base: string,
  parse: (v: unknown) => T,
  issues: IssueList,
): T | undefined {
  if (!isSet(m[key])) return undefined;
  try {
    return parse(m[key]);
  } catch (e) {
    issues.add(childPath(base, key), (e as Error).message);
    return undefined;
  }
}

function parseNames(m: Record<string, unknown>, base: string, issues: IssueList): string[] | undefined {
  const raw = m.names;
  if (!isSet(raw)) return undefined;
  const p = childPath(base, 'names');
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.add(p, `must be a non-empty list of DNS names, not ${describeType(raw)}`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((n, i) => {
    try {
      out.push(parseCertificateDomain(n));
    } catch (e) {
      issues.add(childPath(p, i), (e as Error).message);
    }
  });
  return out.length === raw.length ? out : undefined;
}

/** The four threshold keys of a mapping, only those set. */
function parseOverrides(m: Record<string, unknown>, base: string, issues: IssueList): ThresholdOverrides {
  const warningDays = opt(m, 'warningDays', base, parseDays, issues);
  const criticalDays = opt(m, 'criticalDays', base, parseDays, issues);
  const warningRatio = opt(m, 'warningRatio', base, parseThresholdRatio, issues);
  const criticalRatio = opt(m, 'criticalRatio', base, parseThresholdRatio, issues);
  return {
    ...(warningDays !== undefined ? { warningDays } : {}),
    ...(criticalDays !== undefined ? { criticalDays } : {}),
    ...(warningRatio !== undefined ? { warningRatio } : {}),
    ...(criticalRatio !== undefined ? { criticalRatio } : {}),
  };
}

/**
 * A warning day count below the critical one would never be seen: the certificate jumps from
 * OK to CRITICAL. Ratios are not compared: each is capped by its day count, so a smaller
 * warning ratio can still warn first (and criticalRatio 1 is how the fraction rule is turned
 * off). Checked only where the entry sets a threshold, so one bad global value is reported once.
 */
function checkOrder(t: ThresholdSettings, over: ThresholdOverrides, base: string, issues: IssueList): void {
  if (Object.keys(over).length === 0) return;
  if (t.warningDays < t.criticalDays) {
    issues.add(
      childPath(base, over.warningDays !== undefined ? 'warningDays' : 'criticalDays'),
      `warningDays (${t.warningDays}) is less than criticalDays (${t.criticalDays}): the warning would never show`,
    );
  }
}

// ---- sections ------------------------------------------------------------------------------

/** The global `check:` section; undefined when the file has none. */
export function parseCheckSection(raw: unknown, issues: IssueList): CheckSettings | undefined {
  if (!isSet(raw)) return undefined;
  if (!isPlainObject(raw)) {
    issues.add('check', `must be a mapping (a section), not ${describeType(raw)}`);
    return undefined;
  }
  unknownKeys(raw, CHECK_KEYS, 'check', issues);
  const over = parseOverrides(raw, 'check', issues);
  const thresholds = resolveThresholds(DEFAULT_CHECK.thresholds, over);
  checkOrder(thresholds, over, 'check', issues);
  return {
    thresholds,
    connectTimeoutMs:
      opt(raw, 'connectTimeout', 'check', parseDuration, issues) ?? DEFAULT_CHECK.connectTimeoutMs,
    handshakeTimeoutMs:
      opt(raw, 'handshakeTimeout', 'check', parseDuration, issues) ?? DEFAULT_CHECK.handshakeTimeoutMs,
    concurrency:
      opt(raw, 'concurrency', 'check', (v) => parseInteger(v, 1, MAX_CHECK_CONCURRENCY), issues) ??
      DEFAULT_CHECK.concurrency,
  };
}

function parseWatchedFile(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): WatchedFile | undefined {
  if (typeof raw === 'string') {
    try {
      return { path: parseAbsolutePath(raw), checkChain: true, thresholds: {} };
    } catch (e) {
      issues.add(base, (e as Error).message);
      return undefined;
    }
  }
  if (!isPlainObject(raw)) {
    issues.add(base, `must be an absolute path (or glob) or a mapping with path, not ${describeType(raw)}`);
    return undefined;
  }
  unknownKeys(raw, FILE_KEYS, base, issues);
  if (!isSet(raw.path)) issues.add(childPath(base, 'path'), 'required: an absolute path or glob pattern');
  const file = opt(raw, 'path', base, parseAbsolutePath, issues);
  const name = opt(raw, 'name', base, parseName, issues);
  const key = opt(raw, 'key', base, parseAbsolutePath, issues);
  const checkChain = opt(raw, 'checkChain', base, parseBoolean, issues) ?? true;
  const names = parseNames(raw, base, issues);
  const thresholds = parseOverrides(raw, base, issues);
  checkOrder(resolveThresholds(global, thresholds), thresholds, base, issues);
  if (file === undefined || issues.hasAt(base)) return undefined;
  return {
    path: file,
    ...(name !== undefined ? { name } : {}),
    ...(key !== undefined ? { key } : {}),
    checkChain,
    ...(names ? { names } : {}),
    thresholds,
  };
}

/**
 * Host, port, SNI name, connect address, CA bundle and STARTTLS go through the deploy parser
 * (the same rules as `certificates[].endpoints`, including the "host:port" shorthand); the
 * keys only a watched endpoint has are parsed here.
 */
function parseWatchedEndpoint(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): WatchedEndpoint | undefined {
  const extra: Record<string, unknown> = {};
  let forDeploy: unknown = raw;
  if (isPlainObject(raw)) {
    unknownKeys(raw, WATCH_ENDPOINT_KEYS, base, issues);
    forDeploy = Object.fromEntries(Object.entries(raw).filter(([k]) => ENDPOINT_KEYS.includes(k)));
    for (const [k, v] of Object.entries(raw)) if (!ENDPOINT_KEYS.includes(k)) extra[k] = v;
  } else if (typeof raw !== 'string') {
    issues.add(base, `must be "host:port" or a mapping with host, not ${describeType(raw)}`);
    return undefined;
  }
  const parsed = parseCertificateDeploy({ endpoints: [forDeploy] }, '');
  // The deploy parser names the entry `endpoints[0]`; put the issue where it is in this file.
  for (const i of parsed.issues) issues.add(base + i.path.slice('endpoints[0]'.length), i.message);
  const endpoint = parsed.value.endpoints[0];

  const name = opt(extra, 'name', base, parseName, issues);
  const names = parseNames(extra, base, issues);
  const thresholds = parseOverrides(extra, base, issues);
  checkOrder(resolveThresholds(global, thresholds), thresholds, base, issues);
  if (!endpoint || issues.hasAt(base)) return undefined;
  return {
    ...endpoint,
    ...(name !== undefined ? { name } : {}),
    ...(names ? { names } : {}),
    thresholds,
  };
}

function list(raw: unknown, p: string, issues: IssueList): unknown[] {
  if (!isSet(raw)) return [];
  if (!Array.isArray(raw)) {
    issues.add(p, `must be a list, not ${describeType(raw)}`);
    return [];
  }
  return raw;
}

/** The `watch:` section; undefined when the file has none. */
export function parseWatchSection(
  raw: unknown,
  global: ThresholdSettings,
  issues: IssueList,
): WatchSettings | undefined {
  if (!isSet(raw)) return undefined;
  if (!isPlainObject(raw)) {
    issues.add('watch', `must be a mapping with files and/or endpoints, not ${describeType(raw)}`);
    return undefined;
  }
  unknownKeys(raw, WATCH_KEYS, 'watch', issues);
  const files = list(raw.files, 'watch.files', issues)
    .map((f, i) => parseWatchedFile(f, childPath('watch.files', i), global, issues))
    .filter((f): f is WatchedFile => f !== undefined);
  const endpoints = list(raw.endpoints, 'watch.endpoints', issues)
    .map((e, i) => parseWatchedEndpoint(e, childPath('watch.endpoints', i), global, issues))
    .filter((e): e is WatchedEndpoint => e !== undefined);
  return { files, endpoints };
}

/** `certificates[i].check`: threshold overrides for one managed certificate. */
export function parseCertificateCheck(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): ThresholdOverrides | undefined {
  const p = childPath(base, 'check');
  if (!isSet(raw)) return undefined;
  if (!isPlainObject(raw)) {
    issues.add(p, `must be a mapping of ${THRESHOLD_KEYS.join(', ')}; not ${describeType(raw)}`);
    return undefined;
  }
  unknownKeys(raw, THRESHOLD_KEYS, p, issues);
  const over = parseOverrides(raw, p, issues);
  checkOrder(resolveThresholds(global, over), over, p, issues);
  return over;
}
