import {
  duration,
  integer,
  listOf,
  mapping,
  numberIn,
  oneOf,
  optional,
  secretRef,
  text,
  valueAt,
} from './combinators';
import {
  DEFAULT_CRITICAL_DAYS,
  DEFAULT_NOTIFY,
  DEFAULT_SIGNATURE_HEADER,
  DEFAULT_SMTP_TIMEOUT_MS,
  DEFAULT_WEBHOOK_RETRIES,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
} from './defaults';
import { absolutePath, type ValueParser } from './combinators';
import { isLoopbackHost, parseCredentialUrl, parseEmail, parsePort } from './formats';
import { HEADER_NAME, stringMap } from './hooks';
import { parseEndpointHost } from './endpoints';
import { childPath, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import {
  ALERT_KINDS,
  type AlertKind,
  type DigestSchedule,
  type EmailAlert,
  type NotifySettings,
  type WebhookAlert,
} from './types';

/** `notify:`: which events alert, and through which webhooks and mail server. */

export const NOTIFY_KEYS = ['on', 'criticalDays', 'webhooks', 'email', 'digest'];
export const WEBHOOK_KEYS = [
  'url',
  'format',
  'secret',
  'secret_file',
  'signatureHeader',
  'headers',
  'retries',
  'timeout',
];
export const EMAIL_KEYS = [
  'host',
  'port',
  'tls',
  'username',
  'password',
  'password_file',
  'from',
  'to',
  'timeout',
  'caBundle',
];
export const NOTIFY_KEY_DOCS: KeyDocs = {
  on: {
    type: 'list of alert kinds',
    default: 'all',
    doc: `Which events alert: ${ALERT_KINDS.map((k) => `\`${k}\``).join(', ')}.`,
  },
  criticalDays: {
    type: 'days (> 0)',
    default: '`7`',
    doc: 'A `critical` alert when a certificate has less than this left.',
  },
  webhooks: { type: 'list', default: '`[]`', doc: 'HTTP receivers of alerts (below).' },
  email: { type: 'mapping', doc: 'An SMTP server to send alerts through (below).' },
  digest: {
    type: '`HH:MM` (UTC) \\| duration',
    default: 'off',
    doc: '`certpilot run`: one `digest` alert listing every finding that is not OK (last inventory and readiness run), daily at this UTC time or every interval; none when everything is OK.',
  },
};

const SECRET_DOC = { type: 'string, **secret**', doc: 'HMAC-SHA256 key signing the body; or `secret_file`.' };

export const WEBHOOK_KEY_DOCS: KeyDocs = {
  url: { type: 'https URL', default: 'required', doc: 'Receiver; `http://` only to this host.' },
  format: { type: '`json` \\| `slack`', default: '`json`', doc: 'Body format.' },
  secret: SECRET_DOC,
  secret_file: { type: 'absolute path', doc: 'File holding `secret` (mode 0600).' },
  signatureHeader: {
    type: 'header name',
    default: '`X-Certpilot-Signature`',
    doc: 'Header carrying the HMAC.',
  },
  headers: { type: 'mapping', default: '`{}`', doc: 'Extra HTTP headers.' },
  retries: { type: 'integer 0..10', default: '`2`', doc: 'Retries after a failed delivery.' },
  timeout: { type: 'duration', default: '`10s`', doc: 'Timeout of one delivery.' },
};

export const EMAIL_KEY_DOCS: KeyDocs = {
  host: { type: 'host name or IP', default: 'required', doc: 'SMTP server.' },
  port: { type: 'port', default: '`587` (`465` with implicit)', doc: 'SMTP port.' },
  tls: {
    type: '`starttls` \\| `implicit` \\| `none`',
    default: '`starttls`',
    doc: '`none` only for a relay on this host when a password is set.',
  },
  username: { type: 'string', doc: 'SMTP AUTH user; required with a password.' },
  password: { type: 'string, **secret**', doc: 'SMTP AUTH password; or `password_file`.' },
  password_file: { type: 'absolute path', doc: 'File holding `password` (mode 0600).' },
  from: { type: 'e-mail address', default: 'required', doc: 'Sender.' },
  to: {
    type: 'list of e-mail addresses',
    default: 'required',
    doc: 'Recipients (one may be a plain string).',
  },
  timeout: { type: 'duration', default: '`30s`', doc: 'Timeout of the SMTP dialogue.' },
  caBundle: {
    type: 'absolute path',
    default: 'system CAs',
    doc: 'PEM CA certificates to trust for the server.',
  },
};

/** Ports of SMTP submission: TLS from the first byte (RFC 8314), or STARTTLS. */
const IMPLICIT_TLS_PORT = 465;
const SUBMISSION_PORT = 587;
/** A year: a `critical` alert further out than that is a typo. */
const MAX_CRITICAL_DAYS = 365;

/** Retries of one webhook delivery: more than 10 holds a run for minutes. */
export const parseRetries = integer(0, 10, 'must be an integer from 0 to 10');
const parseCriticalDays = numberIn(
  0,
  MAX_CRITICAL_DAYS,
  () => `must be a number of days greater than 0 and at most ${MAX_CRITICAL_DAYS}`,
);
export const parseSignatureHeader: ValueParser<string> = (v) => {
  const s = text(v);
  if (!HEADER_NAME.test(s)) throw new Error('not a valid HTTP header name');
  return s;
};
const parseFormat = oneOf(['json', 'slack'] as const, 'must be json or slack');
const parseTls = oneOf(['implicit', 'starttls', 'none'] as const, 'must be implicit, starttls or none');
const parseAlertKind = oneOf(ALERT_KINDS, `must be one of ${ALERT_KINDS.join(', ')}`);

function parseWebhookAlert(raw: unknown, path: string, issues: IssueList): WebhookAlert | undefined {
  const m = mapping(raw, path, issues, { keys: WEBHOOK_KEYS });
  if (!m) return undefined;
  const before = issues.size;
  const url = valueAt(m.url, childPath(path, 'url'), issues, parseCredentialUrl);
  const format = valueAt(m.format ?? 'json', childPath(path, 'format'), issues, parseFormat);
  const secret = secretRef(m, 'secret', path, issues);
  const signatureHeader =
    optional(m, 'signatureHeader', path, issues, parseSignatureHeader) ?? DEFAULT_SIGNATURE_HEADER;
  const headers = stringMap(m.headers, childPath(path, 'headers'), issues, 'header');
  const retries = optional(m, 'retries', path, issues, parseRetries) ?? DEFAULT_WEBHOOK_RETRIES;
  const timeoutMs = optional(m, 'timeout', path, issues, duration) ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  if (issues.size > before || url === undefined || format === undefined) return undefined;
  return { url, format, ...(secret ? { secret } : {}), signatureHeader, headers, retries, timeoutMs };
}

function parseRecipients(raw: unknown, path: string, issues: IssueList): string[] {
  const p = childPath(path, 'to');
  // One recipient may be written without the list.
  const to = listOf(typeof raw === 'string' ? [raw] : raw, p, issues, (a, ap) =>
    valueAt(a, ap, issues, parseEmail),
  );
  if (to.length === 0 && !issues.hasAt(p)) issues.add(p, 'required: at least one recipient');
  return to;
}

function parseEmailAlert(raw: unknown, path: string, issues: IssueList): EmailAlert | undefined {
  const m = mapping(raw, path, issues, { keys: EMAIL_KEYS });
  if (!m) return undefined;
  const before = issues.size;
  const host = valueAt(m.host, childPath(path, 'host'), issues, parseEndpointHost);
  const tls = valueAt(m.tls ?? 'starttls', childPath(path, 'tls'), issues, parseTls);
  const port =
    optional(m, 'port', path, issues, parsePort) ??
    (tls === 'implicit' ? IMPLICIT_TLS_PORT : SUBMISSION_PORT);
  const username = optional(m, 'username', path, issues, text);
  const password = secretRef(m, 'password', path, issues);
  if (password && username === undefined)
    issues.add(childPath(path, 'username'), 'required when a password is set');
  // SMTP AUTH over a plain connection hands the password to anyone on the path.
  if (password && tls === 'none' && host !== undefined && !isLoopbackHost(host)) {
    issues.add(
      childPath(path, 'tls'),
      `none would send the password to ${host} in the clear: use starttls or implicit (none is for relays on this host)`,
    );
  }
  const from = valueAt(m.from, childPath(path, 'from'), issues, parseEmail);
  const to = parseRecipients(m.to, path, issues);
  const timeoutMs = optional(m, 'timeout', path, issues, duration) ?? DEFAULT_SMTP_TIMEOUT_MS;
  const caBundle = optional(m, 'caBundle', path, issues, absolutePath);
  if (issues.size > before || host === undefined || from === undefined || tls === undefined) return undefined;
  return {
    host,
    port,
    tls,
    ...(username !== undefined ? { username } : {}),
    ...(password ? { password } : {}),
    from,
    to,
    timeoutMs,
    ...(caBundle !== undefined ? { caBundle } : {}),
  };
}

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** `"08:00"`: daily at that UTC time; otherwise a duration between digests. */
export const parseDigest: ValueParser<DigestSchedule> = (v) => {
  const t = typeof v === 'string' ? TIME_OF_DAY.exec(v.trim()) : null;
  if (t) return { atMinuteOfDay: Number(t[1]) * 60 + Number(t[2]) };
  try {
    return { intervalMs: duration(v) };
  } catch {
    throw new Error('must be a UTC time of day like "08:00" or a duration like "24h"');
  }
};

export function parseNotify(raw: unknown, path: string, issues: IssueList): NotifySettings {
  const m = mapping(raw, path, issues, { keys: NOTIFY_KEYS });
  if (!m) return DEFAULT_NOTIFY;
  const onPath = childPath(path, 'on');
  const on: readonly AlertKind[] =
    m.on === undefined
      ? [...ALERT_KINDS]
      : listOf(m.on, onPath, issues, (k, p) => valueAt(k, p, issues, parseAlertKind));
  const webhooks = listOf(m.webhooks, childPath(path, 'webhooks'), issues, (w, p) =>
    parseWebhookAlert(w, p, issues),
  );
  const email = parseEmailAlert(m.email, childPath(path, 'email'), issues);
  const digest = optional(m, 'digest', path, issues, parseDigest);
  return {
    on,
    criticalDays: optional(m, 'criticalDays', path, issues, parseCriticalDays) ?? DEFAULT_CRITICAL_DAYS,
    webhooks,
    ...(email ? { email } : {}),
    ...(digest ? { digest } : {}),
  };
}
