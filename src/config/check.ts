import { duration, integer, mapping, optional, type ValueParser } from './combinators';
import { DEFAULT_CHECK, resolveThresholds } from './access';
import { describeType, childPath, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import type { CheckSettings, ThresholdOverrides, ThresholdSettings } from './types';

/**
 * The `check:` section (global thresholds, probe timeouts and concurrency of `certpilot
 * check`) and the threshold keys that `certificates[].check`, `watch.files[]` and
 * `watch.endpoints[]` may override. Nothing here requires an ACME account or a DNS provider.
 */

export const THRESHOLD_KEYS = ['warningDays', 'criticalDays', 'warningRatio', 'criticalRatio'] as const;
export const CHECK_KEYS = [...THRESHOLD_KEYS, 'connectTimeout', 'handshakeTimeout', 'concurrency'];

/** Each threshold is the smaller of the day count and the fraction of the lifetime. */
export const THRESHOLD_KEY_DOCS: KeyDocs = {
  warningDays: { type: 'days (> 0)', default: '`21`', doc: 'WARNING below this many days left.' },
  criticalDays: {
    type: 'days (> 0)',
    default: '`7`',
    doc: 'CRITICAL below this many days left; not more than `warningDays`.',
  },
  warningRatio: {
    type: 'fraction (0, 1]',
    default: '`0.25`',
    doc: '... or below this share of the lifetime, whichever is smaller; `1` turns it off.',
  },
  criticalRatio: { type: 'fraction (0, 1]', default: '`0.1`', doc: 'The same for CRITICAL.' },
};

export const CHECK_KEY_DOCS: KeyDocs = {
  ...THRESHOLD_KEY_DOCS,
  connectTimeout: {
    type: 'duration',
    default: '`5s`',
    doc: 'TCP connect timeout per endpoint (`--connect-timeout`).',
  },
  handshakeTimeout: {
    type: 'duration',
    default: '`10s`',
    doc: 'TLS handshake, and the SMTP dialogue before STARTTLS (`--handshake-timeout`).',
  },
  concurrency: {
    type: 'integer 1..512',
    default: '`64`',
    doc: 'Endpoints probed at once (`--concurrency`).',
  },
};

/** Ten years: longer than any certificate a public CA issues; more is a typo. */
const MAX_THRESHOLD_DAYS = 3650;
/** More probes in flight than this look like a port scan and run into descriptor limits. */
export const MAX_CHECK_CONCURRENCY = 512;

const parseDays: ValueParser<number> = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`must be a number of days, not ${describeType(v)}`);
  if (v <= 0 || v > MAX_THRESHOLD_DAYS)
    throw new Error(`must be greater than 0 and at most ${MAX_THRESHOLD_DAYS}`);
  return v;
};

/** 1 is allowed: min(days, 1 × lifetime) is the day rule alone, the way to turn the fraction off. */
const parseThresholdRatio: ValueParser<number> = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`must be a number, not ${describeType(v)}`);
  if (v <= 0 || v > 1) throw new Error('must be greater than 0 and at most 1 (a fraction of the lifetime)');
  return v;
};

/** The four threshold keys of a mapping, only those set. */
export function parseOverrides(
  m: Record<string, unknown>,
  base: string,
  issues: IssueList,
): ThresholdOverrides {
  const warningDays = optional(m, 'warningDays', base, issues, parseDays);
  const criticalDays = optional(m, 'criticalDays', base, issues, parseDays);
  const warningRatio = optional(m, 'warningRatio', base, issues, parseThresholdRatio);
  const criticalRatio = optional(m, 'criticalRatio', base, issues, parseThresholdRatio);
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
export function checkOrder(
  t: ThresholdSettings,
  over: ThresholdOverrides,
  base: string,
  issues: IssueList,
): void {
  if (Object.keys(over).length === 0) return;
  if (t.warningDays < t.criticalDays) {
    issues.add(
      childPath(base, over.warningDays !== undefined ? 'warningDays' : 'criticalDays'),
      `warningDays (${t.warningDays}) is less than criticalDays (${t.criticalDays}): the warning would never show`,
    );
  }
}

/** Overrides of an entry, checked against the global thresholds they apply to. */
export function parseEntryThresholds(
  m: Record<string, unknown>,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): ThresholdOverrides {
  const over = parseOverrides(m, base, issues);
  checkOrder(resolveThresholds(global, over), over, base, issues);
  return over;
}

/** The global `check:` section; undefined when the file has none. */
export function parseCheckSection(raw: unknown, issues: IssueList): CheckSettings | undefined {
  const m = mapping(raw, 'check', issues, { keys: CHECK_KEYS, what: 'a mapping (a section)' });
  if (!m) return undefined;
  const over = parseOverrides(m, 'check', issues);
  const thresholds = resolveThresholds(DEFAULT_CHECK.thresholds, over);
  checkOrder(thresholds, over, 'check', issues);
  const opt = <T>(key: string, parse: ValueParser<T>): T | undefined =>
    optional(m, key, 'check', issues, parse);
  return {
    thresholds,
    connectTimeoutMs: opt('connectTimeout', duration) ?? DEFAULT_CHECK.connectTimeoutMs,
    handshakeTimeoutMs: opt('handshakeTimeout', duration) ?? DEFAULT_CHECK.handshakeTimeoutMs,
    concurrency: opt('concurrency', integer(1, MAX_CHECK_CONCURRENCY)) ?? DEFAULT_CHECK.concurrency,
  };
}

/** `certificates[i].check`: threshold overrides for one managed certificate. */
export function parseCertificateCheck(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): ThresholdOverrides | undefined {
  const p = childPath(base, 'check');
  const m = mapping(raw, p, issues, {
    keys: THRESHOLD_KEYS,
    what: `a mapping of ${THRESHOLD_KEYS.join(', ')}`,
  });
  return m ? parseEntryThresholds(m, p, global, issues) : undefined;
}
