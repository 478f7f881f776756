import net from 'node:net';
import path from 'node:path';
import { domainToASCII } from 'node:url';
import { KEY_TYPES, type KeyType } from './types';
import { describeType } from './issues';

/**
 * Parsers for individual configuration values. Each takes what the YAML/JSON parser (or the
 * environment) produced and returns the normalised value, or throws an Error whose message is
 * shown to the user after the value's path. Messages never quote a value that might be secret:
 * the callers decide whether a value is quoted.
 */

/** ACME directory presets; a name here is expanded to its URL by the loader. */
export const ACME_DIRECTORY_PRESETS: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  buypass: 'https://api.buypass.com/acme/directory',
};

/**
 * CAs that refuse new accounts without External Account Binding (RFC 8555 §7.3.4). Catching
 * this at load time beats a 'externalAccountRequired' problem in the middle of a renewal.
 */
export const EAB_REQUIRED_PRESETS: readonly string[] = ['zerossl', 'google'];

/** Node's timers overflow above 2^31-1 ms (about 24.8 days) and fire immediately instead. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** RFC 1035 §2.3.4: 63 octets per label, 255 on the wire, i.e. 253 characters as text. */
const MAX_LABEL_LENGTH = 63;
const MAX_NAME_LENGTH = 253;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

export class FormatError extends Error {}

/**
 * net.isIP without its IPv6 pattern for text that cannot be an address (no colon, not digits and
 * dots): V8 compiles that pattern on first use, tens of milliseconds that every certificate
 * name would otherwise cost a run.
 */
function ipVersionOf(s: string): number {
  return s.includes(':') || /^[\d.]+$/.test(s) ? net.isIP(s) : 0;
}

function fail(message: string): never {
  throw new FormatError(message);
}

// ---------------------------------------------------------------------------------------------
// Durations

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION_WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

/** A number of milliseconds, or a string such as "500ms", "30s", "2m", "1h", "1m30s". */
export function parseDuration(value: unknown): number {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) fail('must be a whole number of milliseconds or a string like "30s"');
    ms = value;
  } else if (typeof value === 'string') {
    const s = value.trim();
    // A bare number in a string is ambiguous ("30" seconds?); only the environment, where
    // everything is a string, gets it read as milliseconds (see coerceDuration).
    if (!DURATION_WHOLE.test(s))
      fail('must be a duration like "500ms", "30s", "2m" or "1h", or a number of milliseconds');
    ms = 0;
    for (const m of s.matchAll(DURATION_PART)) ms += Number(m[1]) * DURATION_UNIT_MS[m[2]];
    ms = Math.round(ms);
  } else {
    fail(`must be a duration like "30s" or a number of milliseconds, not ${describeType(value)}`);
  }
  if (ms <= 0) fail('must be greater than zero');
  if (ms > MAX_DURATION_MS) fail('must be at most 24 days (timers cannot wait longer)');
  return ms;
}

/** Environment values are strings; digits alone mean milliseconds there. */
export function coerceDuration(value: string): unknown {
  return /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
}

// ---------------------------------------------------------------------------------------------
// Numbers and booleans (strict: convict's own coercion turns "12abc" into 12 and "0" into true)

export function parseInteger(value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    fail(`must be an integer, not ${describeType(value)}`);
  if (value < min || value > max) fail(`must be between ${min} and ${max}`);
  return value;
}

export function coerceInteger(value: string): unknown {
  return /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
}

export function parseRatio(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    fail(`must be a number, not ${describeType(value)}`);
  if (value <= 0 || value >= 1) fail('must be greater than 0 and less than 1');
  return value;
}

export function coerceNumber(value: string): unknown {
  return /^\s*\d+(?:\.\d+)?\s*$/.test(value) ? Number(value) : value;
}

export function parseBoolean(value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`must be true or false, not ${describeType(value)}`);
  return value;
}

const TRUE_WORDS = ['true', 'yes', '1', 'on'];
const FALSE_WORDS = ['false', 'no', '0', 'off'];

/** Environment booleans; anything unrecognised stays a string and fails validation. */
export function coerceBoolean(value: string): unknown {
  const v = value.trim().toLowerCase();
  if (TRUE_WORDS.includes(v)) return true;
  if (FALSE_WORDS.includes(v)) return false;
  return value;
}

export function parsePort(value: unknown): number {
  return parseInteger(value, 1, 65535);
}

// ---------------------------------------------------------------------------------------------
// Strings, paths, e-mail

export function parseNonEmptyString(value: unknown): string {
  if (typeof value !== 'string') fail(`must be a string, not ${describeType(value)}`);
  if (value.trim() === '') fail('must not be empty');
  return value;
}

export function parseAbsolutePath(value: unknown): string {
  const s = parseNonEmptyString(value);
  if (!path.isAbsolute(s)) fail(`must be an absolute path, not ${JSON.stringify(s)}`);
  if (s.includes('\0')) fail('must not contain NUL characters');
  return path.normalize(s);
}

const EMAIL_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/;

export function parseEmail(value: unknown): string {
  const s = parseNonEmptyString(value).trim();
  if (/^mailto:/i.test(s)) fail('must be a plain address without "mailto:" (the ACME client adds it)');
  const at = s.lastIndexOf('@');
  const local = s.slice(0, at);
  const domain = s.slice(at + 1).toLowerCase();
  if (
    at <= 0 ||
    !EMAIL_LOCAL.test(local) ||
    local.length > 64 ||
    checkDnsName(domain, { minLabels: 2 }) !== undefined
  ) {
    fail(`must be an e-mail address like ops@example.com, not ${JSON.stringify(s)}`);
  }
  return `${local}@${domain}`;
}

// ---------------------------------------------------------------------------------------------
// DNS names, hosts, resolvers

/** Returns why `name` is not a valid LDH host name, or undefined when it is. */
export function checkDnsName(name: string, opts: { minLabels?: number } = {}): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0) return 'has an empty label (two dots in a row, or a leading dot)';
    if (label.length > MAX_LABEL_LENGTH) return `has a label longer than ${MAX_LABEL_LENGTH} characters`;
    if (!LDH_LABEL.test(label)) {
      return 'has a label that is not letters, digits and inner hyphens (LDH, RFC 1123)';
    }
  }
  if (labels.length < (opts.minLabels ?? 1)) return 'must be a fully-qualified name (at least two labels)';
  // An all-numeric last label is an IPv4 address in disguise (RFC 3696 §2).
  if (/^\d+$/.test(labels[labels.length - 1])) return 'has an all-numeric top-level label';
  return undefined;
}

/** Lower-cases, drops one trailing dot (FQDN notation) and trims. */
export function normaliseName(raw: string): string {
  const s = raw.trim().toLowerCase();
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/** Max names in one certificate: Let's Encrypt's limit, which other public CAs also stay within. */
export const MAX_DOMAINS_PER_CERTIFICATE = 100;

/**
 * A certificate identifier: an LDH name with at least two labels, optionally `*.` in front.
 * IP addresses are refused: DNS-01 can only prove control of names (RFC 8738 uses http-01/tls-alpn-01).
 */
export function parseCertificateDomain(value: unknown): string {
  if (typeof value !== 'string') fail(`must be a string, not ${describeType(value)}`);
  const raw = value.trim();
  if (ipVersionOf(raw.replace(/^\[|\]$/g, '')) !== 0) {
    fail(`${JSON.stringify(raw)} is an IP address; DNS-01 can validate only DNS names`);
  }
  const name = normaliseName(raw);
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = domainToASCII(name);
    fail(`${JSON.stringify(raw)} is not ASCII; write the punycode form${ascii ? ` (${ascii})` : ''}`);
  }
  let base = name;
  if (name.startsWith('*.')) {
    base = name.slice(2);
    if (base.includes('*'))
      fail(`${JSON.stringify(raw)}: only one wildcard label is allowed, and only at the start`);
  } else if (name.includes('*')) {
    fail(`${JSON.stringify(raw)}: a wildcard may only be the whole first label ("*.example.com")`);
  }
  const why = checkDnsName(base, { minLabels: 2 });
  if (why) fail(`${JSON.stringify(raw)} ${why}`);
  return name;
}

/** A zone suffix: a DNS name without wildcard, any number of labels. */
export function parseZone(value: unknown): string {
  if (typeof value !== 'string') fail(`must be a string, not ${describeType(value)}`);
  const name = normaliseName(value);
  if (name.includes('*')) fail(`${JSON.stringify(value)}: a zone cannot be a wildcard`);
  const why = checkDnsName(name);
  if (why) fail(`${JSON.stringify(value)} ${why}`);
  return name;
}

/** An IPv4/IPv6 literal or a host name (single labels such as "localhost" allowed). */
export function parseHost(value: unknown): string {
  const s = parseNonEmptyString(value).trim();
  if (ipVersionOf(s) !== 0) return s;
  if (s.startsWith('[')) fail(`${JSON.stringify(s)}: write IPv6 addresses without brackets`);
  const name = normaliseName(s);
  const why = checkDnsName(name);
  if (why) fail(`${JSON.stringify(s)} is neither an IP address nor a valid host name: it ${why}`);
  return name;
}

/**
 * A recursive resolver: "ip", "ip:port" or "[ipv6]:port". Only addresses: Node's
 * `Resolver.setServers` cannot take names (and resolving the resolver would need a resolver).
 */
export function parseResolver(value: unknown): string {
  const s = parseNonEmptyString(value).trim();
  const bad = (): never =>
    fail(`${JSON.stringify(s)} must be an IP address, optionally with ":port" (IPv6 as "[addr]:port")`);
  if (ipVersionOf(s) !== 0) return s;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  const v4 = /^([^:[\]]+):(\d+)$/.exec(s);
  const m = v6 ?? v4;
  if (!m) return bad();
  if (v6 ? net.isIPv6(m[1]) === false : net.isIPv4(m[1]) === false) return bad();
  if (m[2] !== undefined) {
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      fail(`${JSON.stringify(s)}: port must be 1-65535`);
  }
  return s;
}

/**
 * Problems with elements of a list leaf, by index: the loader reports each at its own path
 * (`dns.resolvers[1]: ...`), the notation of every other key.
 */
export class ListProblems extends FormatError {
  constructor(readonly problems: readonly { index: number; message: string }[]) {
    super(problems.map((p) => `[${p.index}] ${p.message}`).join('; '));
  }
}

export function parseResolverList(value: unknown): string[] {
  if (!Array.isArray(value)) fail(`must be a list of resolver addresses, not ${describeType(value)}`);
  const problems: { index: number; message: string }[] = [];
  const out: string[] = [];
  value.forEach((v, index) => {
    try {
      out.push(parseResolver(v));
    } catch (e) {
      problems.push({ index, message: (e as Error).message });
    }
  });
  if (problems.length) throw new ListProblems(problems);
  return out;
}

/** Environment lists are comma-separated; convict's own splitting keeps the spaces. */
export function coerceList(value: string): unknown {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

// ---------------------------------------------------------------------------------------------
// URLs

/** 127.0.0.0/8, ::1 (bracketed or not) and localhost: only processes on this host can connect. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return net.isIPv4(h) && h.startsWith('127.');
}

/**
 * An https URL, or http for a loopback test CA (Pebble) only: anything else would send the
 * account key's signatures and the certificate over the network in the clear.
 */
export function parseAcmeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(
      `${JSON.stringify(value)} is neither a preset (${Object.keys(ACME_DIRECTORY_PRESETS).join(', ')}) nor a URL`,
    );
  }
  if (url.username || url.password) fail('must not contain credentials');
  if (url.protocol === 'http:') {
    if (!isLoopbackHost(url.hostname)) {
      fail(
        `http:// is allowed only for a local test CA (127.0.0.0/8, ::1, localhost); use https:// for ${url.host}`,
      );
    }
  } else if (url.protocol !== 'https:') {
    fail(`scheme "${url.protocol.slice(0, -1)}" is not supported; use https://`);
  }
  // As written: URL normalisation would add a trailing slash that callers may then double.
  return value;
}

export function parseAcmeDirectory(value: unknown): string {
  const s = parseNonEmptyString(value).trim();
  const preset = ACME_DIRECTORY_PRESETS[s.toLowerCase()];
  return preset ?? parseAcmeUrl(s);
}

/** A provider option with format 'url': http or https (provider APIs on test benches are local). */
export function parseHttpUrl(value: unknown): string {
  const s = parseNonEmptyString(value).trim();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return fail(`${JSON.stringify(s)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    fail(`scheme "${url.protocol.slice(0, -1)}" is not supported`);
  return s;
}

/**
 * A URL that carries a credential (an API token, an HMAC secret, a Slack webhook's own path):
 * https, or http only to this host. Anything else would hand the credential to the network.
 */
export function parseCredentialUrl(value: unknown): string {
  const s = parseHttpUrl(value);
  const url = new URL(s);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    fail(
      `http:// to ${url.hostname} would send credentials in the clear: use https:// (http is for this host only)`,
    );
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Key types

const LE_KEY_TYPES = "Let's Encrypt accepts only RSA 2048/3072/4096 and ECDSA P-256/P-384";

export function parseKeyType(value: unknown): KeyType {
  if (typeof value !== 'string') fail(`must be a string, not ${describeType(value)}`);
  const v = value.trim().toLowerCase();
  if ((KEY_TYPES as readonly string[]).includes(v)) return v as KeyType;
  if (v === 'ed25519' || v === 'ed448' || v === 'ec-p521' || v === 'ecdsa-p521') {
    fail(`${v} is not supported: ${LE_KEY_TYPES}`);
  }
  const rsa = /^rsa-?(\d+)$/.exec(v);
  if (rsa && Number(rsa[1]) < 2048) fail(`${v} is too weak: CAs require at least 2048-bit RSA keys`);
  if (rsa) fail(`${v} is not supported: ${LE_KEY_TYPES}`);
  return fail(`${JSON.stringify(value)} is not a key type; use one of ${KEY_TYPES.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// File modes

const MAX_MODE = 0o777;

/**
 * An octal string ("0644", "644", "0o644") or a number. YAML files reach here with a string
 * even for unquoted `mode: 0644` (see load.ts), so only JSON supplies true numbers.
 */
export function parseMode(value: unknown): number {
  let mode: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) fail('must be an octal string like "0644"');
    mode = value;
  } else if (typeof value === 'string') {
    const m = /^(?:0o|0)?([0-7]{1,4})$/i.exec(value.trim());
    if (!m) fail(`${JSON.stringify(value)} is not an octal file mode like "0644"`);
    mode = parseInt(m[1], 8);
  } else {
    return fail(`must be an octal string like "0644", not ${describeType(value)}`);
  }
  if (mode > MAX_MODE) {
    fail(
      typeof value === 'number'
        ? `${value} is not a file mode (it is read as decimal); write it as an octal string such as "0644"`
        : 'setuid, setgid and sticky bits are not allowed on certificate files',
    );
  }
  return mode;
}

/** A user or group: a name or a numeric id (kept as a string; the store resolves it). */
export function parseOwner(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) fail('must be a name or a non-negative numeric id');
    return String(value);
  }
  const s = parseNonEmptyString(value).trim();
  if (!/^(?:\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/.test(s))
    fail(`${JSON.stringify(s)} is not a valid user or group name`);
  return s;
}

/**
 * `host:port` (IPv6 as `[::1]:9612`) for a listening socket; empty string = disabled. Only
 * literal addresses or `localhost`: binding to a name that resolves elsewhere is a surprise.
 */
export function parseListen(value: unknown): { host: string; port: number } | undefined {
  if (value === '' || value === null || value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error('must be "host:port" or "" to disable');
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(value.trim());
  if (!m) throw new Error(`must be "host:port" (IPv6 as "[::1]:9612"), not ${JSON.stringify(value)}`);
  const host = m[1] ?? m[2]!;
  if (!ipVersionOf(host) && host !== 'localhost')
    throw new Error(`${JSON.stringify(host)} is not an IP address`);
  return { host, port: parsePort(Number(m[3])) };
}
