import type { ConfigIssue } from '../core/errors';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { parseAbsolutePath, parseDuration, parseEmail, parseHttpUrl, parsePort } from '../config/formats';
import { readSecretFile } from '../config/secrets';
import { childPath, describeType, isPlainObject } from '../config/issues';

/**
 * Configuration of everything after `store.install`: hooks, built-in deployers, served-certificate
 * verification, rollback and alerts. A pure parser (no I/O) the config loader calls on the raw
 * document; the result extends AgentConfig / CertificateSpec. Every problem is reported with its
 * path, all at once, and unknown keys are errors (a misspelt `rollback` must not silently
 * leave rollback on).
 */

// ---- defaults, with the reason beside them ------------------------------------------------

/** A reload or a config test takes seconds; a minute means the hook is stuck, not slow. */
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
/** nginx reloads asynchronously and CDNs take a while: two minutes before calling it stale. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 120_000;
/** First retry soon (nginx usually swaps workers within a second), then back off. */
export const DEFAULT_VERIFY_INTERVAL_MS = 1_000;
export const DEFAULT_VERIFY_MAX_INTERVAL_MS = 15_000;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Three tries ride out a receiver restart without holding a run for long. */
export const DEFAULT_WEBHOOK_RETRIES = 2;
export const DEFAULT_SMTP_TIMEOUT_MS = 30_000;
/** Let's Encrypt's expiry mails (gone since 2025-06) warned at 7 days; keep that habit. */
export const DEFAULT_CRITICAL_DAYS = 7;
/**
 * nginx deployer without `test`/`reload`: empty = certpilot runs no nginx command itself (the
 * service user may not: NoNewPrivileges, no polkit) and asks the root-run
 * certpilot-reload-nginx.path to test and reload nginx (src/deploy/deployers.ts).
 */
export const DEFAULT_NGINX_TEST: readonly string[] = [];
export const DEFAULT_NGINX_RELOAD: readonly string[] = [];
export const DEFAULT_SIGNATURE_HEADER = 'X-Certpilot-Signature';

// ---- types ---------------------------------------------------------------------------------

/** A secret given inline or as a file read at use time (rotatable, never copied into logs). */
export type SecretRef = { readonly value: string } | { readonly file: string };

/** A program to run: argv without a shell, or a shell command only when asked for explicitly. */
export interface CommandSpec {
  /** argv form: argv[0] is looked up in PATH; no shell ever sees it. */
  readonly argv?: readonly string[];
  /** shell form: run by /bin/sh -c. Certificate data reaches it only through environment variables. */
  readonly shell?: string;
  readonly timeoutMs: number;
  readonly cwd?: string;
  /** Extra environment for this command. */
  readonly env: Readonly<Record<string, string>>;
}

export interface HookSet {
  readonly pre: readonly CommandSpec[];
  readonly deploy: readonly CommandSpec[];
  readonly post: readonly CommandSpec[];
}

export type DeployStep =
  | {
      readonly type: 'nginx';
      readonly name?: string;
      /** Run before the config test: e.g. copy files to a CDN origin. */
      readonly push: readonly CommandSpec[];
      readonly test: CommandSpec;
      readonly reload: CommandSpec;
    }
  | {
      readonly type: 'systemd';
      readonly name?: string;
      readonly unit: string;
      readonly action: 'reload' | 'restart';
      readonly systemctl: string;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'webhook';
      readonly name?: string;
      readonly url: string;
      readonly secret?: SecretRef;
      readonly signatureHeader: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly retries: number;
      readonly timeoutMs: number;
      /** Send the PEM certificate chain in the body (never the key). */
      readonly includeCertificate: boolean;
    }
  | { readonly type: 'command'; readonly name?: string; readonly command: CommandSpec };

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
  /** Address to connect to instead of resolving host: one origin behind a CDN or balancer. */
  readonly connectAddress?: string;
  /** PEM file of CA certificates (absolute path); only the fingerprint decides, trust is reported. */
  readonly caBundle?: string;
  /** Upgrade a plain connection first (SMTP STARTTLS: a mail server's certificate on port 25/587). */
  readonly starttls?: 'smtp';
}

export interface VerifySettings {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly maxIntervalMs: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
}

export type AlertKind = 'renewal-failed' | 'deploy-failed' | 'verify-failed' | 'rollback' | 'critical';
export const ALERT_KINDS: readonly AlertKind[] = [
  'renewal-failed',
  'deploy-failed',
  'verify-failed',
  'rollback',
  'critical',
];

export interface WebhookAlert {
  readonly url: string;
  readonly format: 'json' | 'slack';
  readonly secret?: SecretRef;
  readonly signatureHeader: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly retries: number;
  readonly timeoutMs: number;
}

export interface EmailAlert {
  readonly host: string;
  readonly port: number;
  /** implicit = TLS from the first byte (465); starttls = required upgrade (587); none = loopback relays only. */
  readonly tls: 'implicit' | 'starttls' | 'none';
  readonly username?: string;
  readonly password?: SecretRef;
  readonly from: string;
  readonly to: readonly string[];
  readonly timeoutMs: number;
  /** PEM file of CAs to trust for the SMTP server. */
  readonly caBundle?: string;
}

export interface NotifySettings {
  readonly on: readonly AlertKind[];
  readonly criticalDays: number;
  readonly webhooks: readonly WebhookAlert[];
  readonly email?: EmailAlert;
}

/** Global part, extends AgentConfig. */
export interface DeploySettings {
  readonly hooks: HookSet;
  readonly notify: NotifySettings;
  readonly verify: VerifySettings;
}

/** Per certificate, extends CertificateSpec. */
export interface CertificateDeploySpec {
  readonly endpoints: readonly Endpoint[];
  readonly hooks: HookSet;
  readonly deploy: readonly DeployStep[];
  /** Default: true when endpoints are declared (nothing to verify a rollback against otherwise). */
  readonly rollback: boolean;
}

export type DeployAwareSpec = CertificateSpec & Partial<CertificateDeploySpec>;
export type DeployAwareConfig = Omit<AgentConfig, 'certificates'> &
  Partial<DeploySettings> & { readonly certificates: readonly DeployAwareSpec[] };

export interface ParsedDeployConfig {
  readonly settings: DeploySettings;
  /** By certificate name as written in the raw document. */
  readonly certificates: Readonly<Record<string, CertificateDeploySpec>>;
}

export const EMPTY_HOOKS: HookSet = { pre: [], deploy: [], post: [] };
export const DEFAULT_VERIFY: VerifySettings = {
  timeoutMs: DEFAULT_VERIFY_TIMEOUT_MS,
  intervalMs: DEFAULT_VERIFY_INTERVAL_MS,
  maxIntervalMs: DEFAULT_VERIFY_MAX_INTERVAL_MS,
  connectTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
};
export const DEFAULT_NOTIFY: NotifySettings = {
  on: ALERT_KINDS,
  criticalDays: DEFAULT_CRITICAL_DAYS,
  webhooks: [],
};

/** The global settings with defaults filled in, whether or not the loader set them. */
export function deploySettingsOf(config: DeployAwareConfig | AgentConfig): DeploySettings {
  const c = config as DeployAwareConfig;
  return {
    hooks: c.hooks ?? EMPTY_HOOKS,
    notify: c.notify ?? DEFAULT_NOTIFY,
    verify: c.verify ?? DEFAULT_VERIFY,
  };
}

export function certDeployOf(spec: DeployAwareSpec | CertificateSpec): CertificateDeploySpec {
  const s = spec as DeployAwareSpec;
  const endpoints = s.endpoints ?? [];
  return {
    endpoints,
    hooks: s.hooks ?? EMPTY_HOOKS,
    deploy: s.deploy ?? [],
    rollback: s.rollback ?? endpoints.length > 0,
  };
}

/** Merges a parse result into a loaded config (by certificate name). */
export function withDeployConfig(config: AgentConfig, parsed: ParsedDeployConfig): DeployAwareConfig {
  return {
    ...config,
    ...parsed.settings,
    certificates: config.certificates.map((spec) => ({ ...spec, ...(parsed.certificates[spec.name] ?? {}) })),
  };
}

// ---- parser --------------------------------------------------------------------------------

class Issues {
  readonly list: ConfigIssue[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

type Parse<T> = (value: unknown) => T;

function keys(raw: Record<string, unknown>, allowed: readonly string[], base: string, issues: Issues): void {
  for (const k of Object.keys(raw)) {
    if (!allowed.includes(k)) issues.add(childPath(base, k), `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

/** Runs a format parser; a thrown message becomes an issue at `path`. */
function field<T>(raw: unknown, path: string, parse: Parse<T>, issues: Issues): T | undefined {
  try {
    return parse(raw);
  } catch (e) {
    issues.add(path, (e as Error).message);
    return undefined;
  }
}

function opt<T>(
  obj: Record<string, unknown>,
  key: string,
  base: string,
  parse: Parse<T>,
  issues: Issues,
): T | undefined {
  const v = obj[key];
  return v === undefined || v === null ? undefined : field(v, childPath(base, key), parse, issues);
}

function mapping(raw: unknown, path: string, issues: Issues): Record<string, unknown> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isPlainObject(raw)) {
    issues.add(path, `must be a mapping, not ${describeType(raw)}`);
    return undefined;
  }
  return raw;
}

function list(raw: unknown, path: string, issues: Issues): unknown[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    issues.add(path, `must be a list, not ${describeType(raw)}`);
    return [];
  }
  return raw;
}

const parseString: Parse<string> = (v) => {
  if (typeof v !== 'string') throw new Error(`must be a string, not ${describeType(v)}`);
  if (v.trim() === '') throw new Error('must not be empty');
  if (v.includes('\0')) throw new Error('must not contain NUL characters');
  return v;
};

const parseBool: Parse<boolean> = (v) => {
  if (typeof v !== 'boolean') throw new Error(`must be true or false, not ${describeType(v)}`);
  return v;
};

const parseRetries: Parse<number> = (v) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 10) {
    throw new Error('must be an integer from 0 to 10');
  }
  return v;
};

const parseDays: Parse<number> = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 365) {
    throw new Error('must be a number of days greater than 0 and at most 365');
  }
  return v;
};

/** HTTP header names are RFC 9110 tokens; anything else would let a value smuggle a header. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function stringMap(
  raw: unknown,
  path: string,
  issues: Issues,
  what: 'env' | 'header',
): Record<string, string> {
  const m = mapping(raw, path, issues);
  const out: Record<string, string> = {};
  if (!m) return out;
  for (const [k, v] of Object.entries(m)) {
    const p = childPath(path, k);
    if (what === 'env' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      issues.add(p, 'environment variable names are letters, digits and "_", not starting with a digit');
    } else if (what === 'env' && k.startsWith('CERTPILOT_')) {
      issues.add(p, 'CERTPILOT_* variables are set by certpilot and cannot be overridden');
    } else if (what === 'header' && !HEADER_NAME.test(k)) {
      issues.add(p, 'not a valid HTTP header name');
    } else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      issues.add(p, `must be a string, not ${describeType(v)}`);
    } else if (/[\r\n\0]/.test(String(v))) {
      issues.add(p, 'must not contain line breaks or NUL characters');
    } else {
      out[k] = String(v);
    }
  }
  return out;
}

function argvOf(raw: unknown, path: string, issues: Issues): string[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.add(path, `must be a non-empty list of arguments (argv), not ${describeType(raw)}`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((a, i) => {
    if (typeof a === 'number') out.push(String(a));
    else if (typeof a !== 'string')
      issues.add(childPath(path, i), `must be a string, not ${describeType(a)}`);
    else if (a.includes('\0')) issues.add(childPath(path, i), 'must not contain NUL characters');
    else out.push(a);
  });
  if (out[0] === '') issues.add(childPath(path, 0), 'program must not be empty');
  return out.length === raw.length ? out : undefined;
}

const COMMAND_KEYS = ['command', 'shell', 'timeout', 'cwd', 'env'];

/**
 * A command is either a plain argv list (`[nginx, -s, reload]`) or a mapping
 * `{command: [argv...], timeout, cwd, env}`, or `{shell: true, command: "string"}`.
 */
function parseCommand(
  raw: unknown,
  path: string,
  issues: Issues,
  defaultTimeoutMs: number,
): CommandSpec | undefined {
  if (Array.isArray(raw)) {
    const argv = argvOf(raw, path, issues);
    return argv ? { argv, timeoutMs: defaultTimeoutMs, env: {} } : undefined;
  }
  if (typeof raw === 'string') {
    issues.add(
      path,
      'must be an argv list such as [nginx, -s, reload]; a string runs only as {shell: true, command: "..."}',
    );
    return undefined;
  }
  const m = mapping(raw, path, issues);
  if (!m) {
    if (raw === undefined || raw === null) issues.add(path, 'required: an argv list or {command: [...]}');
    return undefined;
  }
  keys(m, COMMAND_KEYS, path, issues);
  const before = issues.list.length;
  const shell = opt(m, 'shell', path, parseBool, issues) ?? false;
  const timeoutMs = opt(m, 'timeout', path, parseDuration, issues) ?? defaultTimeoutMs;
  const cwd = opt(m, 'cwd', path, parseAbsolutePath, issues);
  const env = stringMap(m.env, childPath(path, 'env'), issues, 'env');
  const cp = childPath(path, 'command');
  let argv: string[] | undefined;
  let shellCommand: string | undefined;
  if (shell) {
    if (typeof m.command !== 'string' || m.command.trim() === '') {
      issues.add(cp, 'with shell: true, command must be one non-empty string for /bin/sh -c');
    } else shellCommand = m.command;
  } else if (typeof m.command === 'string') {
    issues.add(cp, 'must be an argv list; a string is run by a shell only with shell: true');
  } else {
    argv = argvOf(m.command, cp, issues);
  }
  if (issues.list.length > before) return undefined;
  return {
    ...(argv ? { argv } : {}),
    ...(shellCommand !== undefined ? { shell: shellCommand } : {}),
    timeoutMs,
    ...(cwd !== undefined ? { cwd } : {}),
    env,
  };
}

function parseCommands(raw: unknown, path: string, issues: Issues): CommandSpec[] {
  return list(raw, path, issues)
    .map((c, i) => parseCommand(c, childPath(path, i), issues, DEFAULT_HOOK_TIMEOUT_MS))
    .filter((c): c is CommandSpec => c !== undefined);
}

function parseHooks(raw: unknown, path: string, issues: Issues): HookSet {
  const m = mapping(raw, path, issues);
  if (!m) return EMPTY_HOOKS;
  keys(m, ['pre', 'deploy', 'post'], path, issues);
  return {
    pre: parseCommands(m.pre, childPath(path, 'pre'), issues),
    deploy: parseCommands(m.deploy, childPath(path, 'deploy'), issues),
    post: parseCommands(m.post, childPath(path, 'post'), issues),
  };
}

/** `secret: "..."` or `secret_file: /path` (not both). */
function parseSecret(
  m: Record<string, unknown>,
  key: string,
  base: string,
  issues: Issues,
): SecretRef | undefined {
  const inline = m[key];
  const file = m[`${key}_file`];
  if (inline !== undefined && file !== undefined) {
    issues.add(childPath(base, key), `set ${key} or ${key}_file, not both`);
    return undefined;
  }
  if (file !== undefined) {
    const f = field(file, childPath(base, `${key}_file`), parseAbsolutePath, issues);
    return f === undefined ? undefined : { file: f };
  }
  if (inline !== undefined) {
    // The message must not echo the value: it is a secret even when it is malformed.
    if (typeof inline !== 'string' || inline === '') {
      issues.add(childPath(base, key), 'must be a non-empty string');
      return undefined;
    }
    return { value: inline };
  }
  return undefined;
}

const parseUnit: Parse<string> = (v) => {
  const s = parseString(v);
  // systemd unit names: no slashes, no leading dash (it would read as an option).
  if (!/^[A-Za-z0-9:_.\\@-]+$/.test(s) || s.startsWith('-'))
    throw new Error(`${JSON.stringify(s)} is not a unit name`);
  return s;
};

const STEP_KEYS: Record<DeployStep['type'], readonly string[]> = {
  nginx: ['type', 'name', 'push', 'test', 'reload', 'timeout'],
  systemd: ['type', 'name', 'unit', 'action', 'systemctl', 'timeout'],
  webhook: [
    'type',
    'name',
    'url',
    'secret',
    'secret_file',
    'signatureHeader',
    'headers',
    'retries',
    'timeout',
    'includeCertificate',
  ],
  command: ['type', 'name', ...COMMAND_KEYS],
};

function parseStep(raw: unknown, path: string, issues: Issues): DeployStep | undefined {
  const m = mapping(raw, path, issues);
  if (!m) {
    if (raw === undefined || raw === null) issues.add(path, 'must be a mapping with a type');
    return undefined;
  }
  const type = m.type;
  if (typeof type !== 'string' || !(type in STEP_KEYS)) {
    issues.add(childPath(path, 'type'), `must be one of ${Object.keys(STEP_KEYS).join(', ')}`);
    return undefined;
  }
  const t = type as DeployStep['type'];
  keys(m, STEP_KEYS[t], path, issues);
  const before = issues.list.length;
  const name = opt(m, 'name', path, parseString, issues);
  const named = name !== undefined ? { name } : {};
  const timeoutMs = opt(m, 'timeout', path, parseDuration, issues) ?? DEFAULT_HOOK_TIMEOUT_MS;
  let step: DeployStep | undefined;
  switch (t) {
    case 'nginx': {
      const test =
        m.test === undefined
          ? { argv: DEFAULT_NGINX_TEST, timeoutMs, env: {} }
          : parseCommand(m.test, childPath(path, 'test'), issues, timeoutMs);
      const reload =
        m.reload === undefined
          ? { argv: DEFAULT_NGINX_RELOAD, timeoutMs, env: {} }
          : parseCommand(m.reload, childPath(path, 'reload'), issues, timeoutMs);
      const push = list(m.push, childPath(path, 'push'), issues)
        .map((c, i) => parseCommand(c, childPath(childPath(path, 'push'), i), issues, timeoutMs))
        .filter((c): c is CommandSpec => c !== undefined);
      if (test && reload) step = { type: 'nginx', ...named, push, test, reload };
      break;
    }
    case 'systemd': {
      const unit = field(m.unit, childPath(path, 'unit'), parseUnit, issues);
      const action = m.action ?? 'reload';
      if (action !== 'reload' && action !== 'restart')
        issues.add(childPath(path, 'action'), 'must be reload or restart');
      const systemctl = opt(m, 'systemctl', path, parseString, issues) ?? 'systemctl';
      if (unit !== undefined)
        step = {
          type: 'systemd',
          ...named,
          unit,
          action: action as 'reload' | 'restart',
          systemctl,
          timeoutMs,
        };
      break;
    }
    case 'webhook': {
      const url = field(m.url, childPath(path, 'url'), parseHttpUrl, issues);
      const secret = parseSecret(m, 'secret', path, issues);
      const signatureHeader =
        opt(m, 'signatureHeader', path, parseString, issues) ?? DEFAULT_SIGNATURE_HEADER;
      if (!HEADER_NAME.test(signatureHeader))
        issues.add(childPath(path, 'signatureHeader'), 'not a valid HTTP header name');
      const headers = stringMap(m.headers, childPath(path, 'headers'), issues, 'header');
      const retries = opt(m, 'retries', path, parseRetries, issues) ?? DEFAULT_WEBHOOK_RETRIES;
      const includeCertificate = opt(m, 'includeCertificate', path, parseBool, issues) ?? false;
      if (url !== undefined)
        step = {
          type: 'webhook',
          ...named,
          url,
          ...(secret ? { secret } : {}),
          signatureHeader,
          headers,
          retries,
          timeoutMs: opt(m, 'timeout', path, parseDuration, issues) ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
          includeCertificate,
        };
      break;
    }
    case 'command': {
      const { type: _t, name: _n, ...rest } = m;
      const command = parseCommand(rest, path, issues, DEFAULT_HOOK_TIMEOUT_MS);
      if (command) step = { type: 'command', ...named, command };
      break;
    }
  }
  return issues.list.length > before ? undefined : step;
}

const parseHost: Parse<string> = (v) => {
  const s = parseString(v).trim().toLowerCase();
  if (!/^[a-z0-9.:[\]_-]+$/.test(s)) throw new Error(`${JSON.stringify(s)} is not a host name or address`);
  return s.replace(/^\[(.*)\]$/, '$1');
};

function parseEndpoint(raw: unknown, path: string, issues: Issues): Endpoint | undefined {
  // Shorthand "host:port" or "host" (port 443).
  if (typeof raw === 'string') {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(raw.trim());
    if (!m) {
      issues.add(path, `${JSON.stringify(raw)} must be "host" or "host:port"`);
      return undefined;
    }
    const host = field(m[1], path, parseHost, issues);
    const port = m[2] === undefined ? 443 : field(Number(m[2]), path, parsePort, issues);
    return host !== undefined && port !== undefined ? { host, port } : undefined;
  }
  const o = mapping(raw, path, issues);
  if (!o) return undefined;
  keys(o, ['host', 'port', 'servername', 'connectAddress', 'caBundle', 'starttls'], path, issues);
  const before = issues.list.length;
  let starttls: 'smtp' | undefined;
  if (o.starttls !== undefined && o.starttls !== null) {
    if (o.starttls === 'smtp') starttls = 'smtp';
    else issues.add(childPath(path, 'starttls'), 'must be "smtp" (the only STARTTLS protocol supported)');
  }
  const host = field(o.host, childPath(path, 'host'), parseHost, issues);
  // SMTP's STARTTLS port is 25; everything else defaults to HTTPS.
  const port = opt(o, 'port', path, parsePort, issues) ?? (starttls === 'smtp' ? 25 : 443);
  const servername = opt(o, 'servername', path, parseHost, issues);
  const connectAddress = opt(o, 'connectAddress', path, parseHost, issues);
  const caBundle = opt(o, 'caBundle', path, parseAbsolutePath, issues);
  if (issues.list.length > before || host === undefined) return undefined;
  return {
    host,
    port,
    ...(servername !== undefined ? { servername } : {}),
    ...(connectAddress !== undefined ? { connectAddress } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(starttls ? { starttls } : {}),
  };
}

function parseVerify(raw: unknown, path: string, issues: Issues): VerifySettings {
  const m = mapping(raw, path, issues);
  if (!m) return DEFAULT_VERIFY;
  keys(m, ['timeout', 'interval', 'maxInterval', 'connectTimeout', 'handshakeTimeout'], path, issues);
  const d = (k: string, fallback: number): number => opt(m, k, path, parseDuration, issues) ?? fallback;
  const v = {
    timeoutMs: d('timeout', DEFAULT_VERIFY.timeoutMs),
    intervalMs: d('interval', DEFAULT_VERIFY.intervalMs),
    maxIntervalMs: d('maxInterval', DEFAULT_VERIFY.maxIntervalMs),
    connectTimeoutMs: d('connectTimeout', DEFAULT_VERIFY.connectTimeoutMs),
    handshakeTimeoutMs: d('handshakeTimeout', DEFAULT_VERIFY.handshakeTimeoutMs),
  };
  if (v.maxIntervalMs < v.intervalMs)
    issues.add(childPath(path, 'maxInterval'), 'must not be less than interval');
  return v;
}

function parseWebhookAlert(raw: unknown, path: string, issues: Issues): WebhookAlert | undefined {
  const m = mapping(raw, path, issues);
  if (!m) return undefined;
  keys(
    m,
    ['url', 'format', 'secret', 'secret_file', 'signatureHeader', 'headers', 'retries', 'timeout'],
    path,
    issues,
  );
  const before = issues.list.length;
  const url = field(m.url, childPath(path, 'url'), parseHttpUrl, issues);
  const format = m.format ?? 'json';
  if (format !== 'json' && format !== 'slack') issues.add(childPath(path, 'format'), 'must be json or slack');
  const secret = parseSecret(m, 'secret', path, issues);
  const signatureHeader = opt(m, 'signatureHeader', path, parseString, issues) ?? DEFAULT_SIGNATURE_HEADER;
  const headers = stringMap(m.headers, childPath(path, 'headers'), issues, 'header');
  const retries = opt(m, 'retries', path, parseRetries, issues) ?? DEFAULT_WEBHOOK_RETRIES;
  const timeoutMs = opt(m, 'timeout', path, parseDuration, issues) ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  if (issues.list.length > before || url === undefined) return undefined;
  return {
    url,
    format: format as 'json' | 'slack',
    ...(secret ? { secret } : {}),
    signatureHeader,
    headers,
    retries,
    timeoutMs,
  };
}

function parseEmailAlert(raw: unknown, path: string, issues: Issues): EmailAlert | undefined {
  const m = mapping(raw, path, issues);
  if (!m) return undefined;
  keys(
    m,
    ['host', 'port', 'tls', 'username', 'password', 'password_file', 'from', 'to', 'timeout', 'caBundle'],
    path,
    issues,
  );
  const before = issues.list.length;
  const host = field(m.host, childPath(path, 'host'), parseHost, issues);
  const tls = m.tls ?? 'starttls';
  if (tls !== 'implicit' && tls !== 'starttls' && tls !== 'none') {
    issues.add(childPath(path, 'tls'), 'must be implicit, starttls or none');
  }
  const port = opt(m, 'port', path, parsePort, issues) ?? (tls === 'implicit' ? 465 : 587);
  const username = opt(m, 'username', path, parseString, issues);
  const password = parseSecret(m, 'password', path, issues);
  if (password && username === undefined)
    issues.add(childPath(path, 'username'), 'required when a password is set');
  const from = field(m.from, childPath(path, 'from'), parseEmail, issues);
  const toRaw = typeof m.to === 'string' ? [m.to] : m.to;
  const to = list(toRaw, childPath(path, 'to'), issues)
    .map((a, i) => field(a, childPath(childPath(path, 'to'), i), parseEmail, issues))
    .filter((a): a is string => a !== undefined);
  if (to.length === 0 && !issues.list.some((i) => i.path.startsWith(childPath(path, 'to')))) {
    issues.add(childPath(path, 'to'), 'required: at least one recipient');
  }
  const timeoutMs = opt(m, 'timeout', path, parseDuration, issues) ?? DEFAULT_SMTP_TIMEOUT_MS;
  const caBundle = opt(m, 'caBundle', path, parseAbsolutePath, issues);
  if (issues.list.length > before || host === undefined || from === undefined) return undefined;
  return {
    host,
    port,
    tls: tls as EmailAlert['tls'],
    ...(username !== undefined ? { username } : {}),
    ...(password ? { password } : {}),
    from,
    to,
    timeoutMs,
    ...(caBundle !== undefined ? { caBundle } : {}),
  };
}

function parseNotify(raw: unknown, path: string, issues: Issues): NotifySettings {
  const m = mapping(raw, path, issues);
  if (!m) return DEFAULT_NOTIFY;
  keys(m, ['on', 'criticalDays', 'webhooks', 'email'], path, issues);
  let on: AlertKind[] = [...ALERT_KINDS];
  if (m.on !== undefined) {
    on = [];
    list(m.on, childPath(path, 'on'), issues).forEach((k, i) => {
      if (typeof k === 'string' && (ALERT_KINDS as readonly string[]).includes(k)) on.push(k as AlertKind);
      else issues.add(childPath(childPath(path, 'on'), i), `must be one of ${ALERT_KINDS.join(', ')}`);
    });
  }
  const webhooks = list(m.webhooks, childPath(path, 'webhooks'), issues)
    .map((w, i) => parseWebhookAlert(w, childPath(childPath(path, 'webhooks'), i), issues))
    .filter((w): w is WebhookAlert => w !== undefined);
  const email = parseEmailAlert(m.email, childPath(path, 'email'), issues);
  return {
    on,
    criticalDays: opt(m, 'criticalDays', path, parseDays, issues) ?? DEFAULT_CRITICAL_DAYS,
    webhooks,
    ...(email ? { email } : {}),
  };
}

/** The per-certificate keys of one raw certificate mapping (`certificates[i]`). */
export function parseCertificateDeploy(
  raw: Record<string, unknown>,
  path: string,
): { value: CertificateDeploySpec; issues: ConfigIssue[] } {
  const issues = new Issues();
  return { value: certificateDeploy(raw, path, issues), issues: issues.list };
}

function certificateDeploy(raw: Record<string, unknown>, path: string, iss: Issues): CertificateDeploySpec {
  const endpoints = list(raw.endpoints, childPath(path, 'endpoints'), iss)
    .map((e, i) => parseEndpoint(e, childPath(childPath(path, 'endpoints'), i), iss))
    .filter((e): e is Endpoint => e !== undefined);
  const hooks = parseHooks(raw.hooks, childPath(path, 'hooks'), iss);
  const deploy = list(raw.deploy, childPath(path, 'deploy'), iss)
    .map((s, i) => parseStep(s, childPath(childPath(path, 'deploy'), i), iss))
    .filter((s): s is DeployStep => s !== undefined);
  const rollbackRaw = opt(raw, 'rollback', path, parseBool, iss);
  if (rollbackRaw === true && endpoints.length === 0) {
    // Without endpoints nothing can confirm the restored certificate is served again.
    iss.add(childPath(path, 'rollback'), 'needs endpoints to verify the restored certificate against');
  }
  return { endpoints, hooks, deploy, rollback: rollbackRaw ?? endpoints.length > 0 };
}

/** Keys this module owns: the loader must let them through its own unknown-key checks. */
export const DEPLOY_ROOT_KEYS = ['hooks', 'notify', 'verify'] as const;
export const DEPLOY_CERTIFICATE_KEYS = ['endpoints', 'hooks', 'deploy', 'rollback'] as const;

/**
 * Parses the deploy-related parts of the whole raw config document: root `hooks`, `notify`,
 * `verify` and each `certificates[i]`'s `endpoints`, `hooks`, `deploy`, `rollback`. Other keys
 * are the loader's business and are ignored here. `path` prefixes every issue path ('' for
 * the document root).
 */
export function parseDeployConfig(
  raw: unknown,
  path: string,
): { value: ParsedDeployConfig; issues: ConfigIssue[] } {
  const issues = new Issues();
  const root = isPlainObject(raw) ? raw : {};
  const settings: DeploySettings = {
    hooks: parseHooks(root.hooks, childPath(path, 'hooks'), issues),
    notify: parseNotify(root.notify, childPath(path, 'notify'), issues),
    verify: parseVerify(root.verify, childPath(path, 'verify'), issues),
  };
  const certificates: Record<string, CertificateDeploySpec> = {};
  const certs = Array.isArray(root.certificates) ? root.certificates : [];
  certs.forEach((c: unknown, i) => {
    if (!isPlainObject(c)) return; // the loader reports it
    const spec = certificateDeploy(c, childPath(childPath(path, 'certificates'), i), issues);
    if (typeof c.name === 'string') certificates[c.name] = spec;
  });
  return { value: { settings, certificates }, issues: issues.list };
}

/** Reads a secret at use time; the message names the file, never the content. */
export async function readSecret(ref: SecretRef): Promise<string> {
  if ('value' in ref) return ref.value;
  const r = await readSecretFile(ref.file);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** Early check for the loader: every secret file is readable and private. */
export async function checkDeploySecrets(value: ParsedDeployConfig, path = ''): Promise<ConfigIssue[]> {
  const out: ConfigIssue[] = [];
  const check = async (ref: SecretRef | undefined, p: string): Promise<void> => {
    if (!ref || 'value' in ref) return;
    const r = await readSecretFile(ref.file);
    if (!r.ok) out.push({ path: p, message: r.message });
  };
  const n = childPath(path, 'notify');
  await Promise.all(
    value.settings.notify.webhooks.map((w, i) =>
      check(w.secret, childPath(childPath(childPath(n, 'webhooks'), i), 'secret_file')),
    ),
  );
  await check(value.settings.notify.email?.password, childPath(childPath(n, 'email'), 'password_file'));
  for (const [name, spec] of Object.entries(value.certificates)) {
    await Promise.all(
      spec.deploy.map((s, i) =>
        s.type === 'webhook'
          ? check(s.secret, `certificates["${name}"].deploy[${i}].secret_file`)
          : undefined,
      ),
    );
  }
  return out;
}
