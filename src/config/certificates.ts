import path from 'node:path';
import { CERTIFICATE_NAME_RULE, isCertificateName } from '../core/names';
import { parseCertificateCheck } from './check';
import {
  absolutePath,
  bool,
  isSet,
  listOf,
  mapping,
  oneOf,
  optional,
  required,
  valueAt,
  type ValueParser,
} from './combinators';
import { DEFAULT_CERT_MODE, DEFAULT_KEY_MODE, DEFAULT_REUSE_KEY, DEFAULT_THRESHOLDS } from './defaults';
import { certificateDeploy, DEPLOY_CERTIFICATE_KEYS } from './deploy';
import {
  MAX_DOMAINS_PER_CERTIFICATE,
  normaliseName,
  parseCertificateDomain,
  parseKeyType,
  parseMode,
  parseOwner,
} from './formats';
import { childPath, describeType, isPlainObject, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import { readSecretFileAt } from './secrets';
import type {
  CertificateSpec,
  DnsProviderInstance,
  FileOutput,
  KeyType,
  OutputFormat,
  ProfileMode,
  ThresholdSettings,
} from './types';

/**
 * `certificates`: convict declares the list (doc, default); every element is parsed here,
 * with paths like `certificates[2].dns.provider`. Endpoints, hooks, deploy and rollback are
 * parsed by deploy.ts, `check` by check.ts, into the same CertificateSpec.
 */

export const CERTIFICATE_KEYS = [
  'name',
  'domains',
  'keyType',
  'reuseKey',
  'profile',
  'profileMode',
  'profileLifetime',
  'dns',
  'outputs',
  'check',
  ...DEPLOY_CERTIFICATE_KEYS,
];
export const CERT_DNS_KEYS = ['provider', 'domains'];
const OUTPUT_FILE_KEYS = ['cert', 'chain', 'fullchain', 'key'] as const;
/** The keys of an output in another format (one file at `path`). */
const FORMAT_KEYS = ['path', 'format', 'content', 'password_file', 'friendlyName'] as const;
export const OUTPUT_KEYS = [...OUTPUT_FILE_KEYS, 'owner', 'group', 'mode', 'keyMode', ...FORMAT_KEYS];
const OUTPUT_FORMATS: readonly OutputFormat[] = ['pkcs12', 'pem-bundle', 'der'];
/** The lengths keytool and OpenSSL take; a friendly name is a label, not a document. */
const FRIENDLY_NAME = /^[\x20-\x7e]{1,64}$/;

/** The keys of a `certificates[]` entry (endpoints, hooks, deploy, rollback: deploy.ts). */
export const CERTIFICATE_KEY_DOCS: KeyDocs = {
  name: {
    type: 'string',
    default: 'required',
    doc: 'Unique; names the directory under `stateDir`: `[a-z0-9][a-z0-9._-]{0,63}`, no `..`.',
  },
  domains: {
    type: 'list of DNS names',
    default: 'required',
    doc: 'The first is the common name; `*.example.com` wildcards; at most 100; no IP addresses.',
  },
  keyType: { type: 'key type', default: '`defaults.keyType`', doc: 'As for `defaults.keyType`.' },
  reuseKey: { type: 'boolean', default: '`false`', doc: 'Keep the private key across renewals.' },
  profile: {
    type: 'string',
    doc: 'ACME profile to order (`classic`, `tlsserver`, `shortlived`); changing it renews the certificate.',
  },
  profileMode: {
    type: '`required` or `preferred`',
    default: '`required`',
    doc: 'When the CA does not offer `profile`: `required` fails before ordering, `preferred` orders without it (with a warning).',
  },
  profileLifetime: {
    type: 'lifetime (`160h`, `45d`)',
    default: "Let's Encrypt's value for its profile names",
    doc: 'What `profile` promises; a certificate issued with another lifetime is reported (renew warning, `check` finding).',
  },
  dns: { type: 'mapping', doc: 'Which provider instance writes the challenge records (below).' },
  outputs: { type: 'list of outputs', default: '`[]`', doc: 'Where to install the certificate (below).' },
  check: {
    type: 'thresholds',
    doc: '`warningDays`, `criticalDays`, `warningRatio`, `criticalRatio` for `certpilot check`.',
  },
};

export const CERT_DNS_KEY_DOCS: KeyDocs = {
  provider: {
    type: 'instance name',
    default: 'the only instance',
    doc: 'Provider instance for the names; when exactly one instance is configured, that one.',
  },
  domains: {
    type: 'mapping name -> instance',
    default: '`{}`',
    doc: 'Per-name instance, overriding `provider`; each key is one of `domains`.',
  },
};

export const OUTPUT_KEY_DOCS: KeyDocs = {
  cert: { type: 'absolute path', doc: 'The leaf certificate (PEM).' },
  chain: { type: 'absolute path', doc: 'The intermediates (PEM).' },
  fullchain: { type: 'absolute path', doc: 'Leaf and intermediates.' },
  key: {
    type: 'absolute path',
    doc: 'The private key. At least one of the four file keys is required, unless `path` and `format` are given.',
  },
  owner: { type: 'user name or uid', doc: 'Owner of the files, applied when running as root.' },
  group: { type: 'group name or gid', doc: 'Group of the files, applied when running as root.' },
  mode: {
    type: 'octal mode',
    default: '`0644`; `0600` for a `format` file holding the key',
    doc: 'Mode of `cert`, `chain` and `fullchain`, or of the `format` file at `path`.',
  },
  keyMode: { type: 'octal mode', default: '`0600`', doc: 'Mode of `key`.' },
  path: {
    type: 'absolute path',
    doc: 'The one file of a `format` output (instead of `cert`, `chain`, `fullchain`, `key`).',
  },
  format: {
    type: '`pkcs12`, `pem-bundle` or `der`',
    doc: 'What `path` holds: PKCS#12 (key, leaf, chain), one PEM of full chain and key (HAProxy), or DER.',
  },
  content: { type: '`cert` or `key`', default: '`cert`', doc: '`der` only: the leaf, or the key as PKCS#8.' },
  password_file: {
    type: 'absolute path',
    doc: '`pkcs12` only, required: secret file (0600) holding the password, printable ASCII.',
  },
  friendlyName: {
    type: 'string',
    default: 'the certificate name',
    doc: '`pkcs12` only: the friendly name of the key and leaf (keytool shows it as the alias).',
  },
};
/** RFC 8555 profile names are short tokens (Let's Encrypt: classic, tlsserver, shortlived). */
const PROFILE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

export interface CertificateContext {
  readonly defaultKeyType: KeyType;
  /** Every configured provider instance name (including broken ones). */
  readonly providerNames: readonly string[];
  /** Instances that validated; used for the zone check. */
  readonly providers: Readonly<Record<string, DnsProviderInstance>>;
  /** Global check thresholds, to validate a certificate's overrides against (default: built in). */
  readonly thresholds?: ThresholdSettings;
}

const parseCertificateName: ValueParser<string> = (raw) => {
  if (typeof raw !== 'string') throw new Error(`must be a string, not ${describeType(raw)}`);
  if (raw.includes('..') || raw.includes('/') || raw.includes('\\'))
    throw new Error(
      `${JSON.stringify(raw)} must not contain "/", "\\" or ".." (it names a directory under stateDir)`,
    );
  if (!isCertificateName(raw)) {
    throw new Error(`${JSON.stringify(raw)} must be file-name safe: ${CERTIFICATE_NAME_RULE}`);
  }
  return raw;
};

const parseProfile: ValueParser<string> = (v) => {
  if (typeof v === 'string' && PROFILE_NAME.test(v)) return v;
  throw new Error('must be a profile name such as "tlsserver" or "shortlived"');
};

const PROFILE_MODES: readonly ProfileMode[] = ['required', 'preferred'];
const HOUR_MS = 3_600_000;
/** Longer than any publicly trusted certificate may live (398 days), with room for private CAs. */
const MAX_PROFILE_LIFETIME_DAYS = 3650;

/** A lifetime in hours or days ("160h", "45d"): durations elsewhere stop at 24 days. */
const parseProfileLifetime: ValueParser<number> = (v) => {
  const m = typeof v === 'string' ? /^(\d{1,6})(h|d)$/.exec(v.trim()) : null;
  if (!m) throw new Error('must be a lifetime in hours or days, such as "160h" or "45d"');
  const ms = Number(m[1]) * (m[2] === 'd' ? 24 : 1) * HOUR_MS;
  if (ms < HOUR_MS || ms > MAX_PROFILE_LIFETIME_DAYS * 24 * HOUR_MS)
    throw new Error(`must be between 1h and ${MAX_PROFILE_LIFETIME_DAYS}d`);
  return ms;
};

/** `profile`, `profileMode` and `profileLifetime`; the last two mean nothing without the first. */
function parseCertificateProfile(
  m: Record<string, unknown>,
  base: string,
  issues: IssueList,
): Pick<CertificateSpec, 'profile' | 'profileMode' | 'profileLifetimeMs'> {
  const profile = optional(m, 'profile', base, issues, parseProfile);
  const mode = optional(m, 'profileMode', base, issues, oneOf(PROFILE_MODES));
  const lifetime = optional(m, 'profileLifetime', base, issues, parseProfileLifetime);
  for (const key of ['profileMode', 'profileLifetime'])
    if (isSet(m[key]) && !isSet(m.profile))
      issues.add(childPath(base, key), 'applies only with `profile` (the profile to order)');
  if (profile === undefined) return {};
  return {
    profile,
    profileMode: mode ?? 'required',
    ...(lifetime !== undefined ? { profileLifetimeMs: lifetime } : {}),
  };
}

function unknownInstance(name: string, ctx: CertificateContext): string {
  const known = ctx.providerNames.length
    ? ctx.providerNames.join(', ')
    : 'none configured under dns.providers';
  return `unknown provider instance ${JSON.stringify(name)} (configured: ${known})`;
}

/** A reference to a configured DNS provider instance. */
function instanceName(ctx: CertificateContext): ValueParser<string> {
  return (v) => {
    if (typeof v !== 'string') throw new Error(`must be a provider instance name, not ${describeType(v)}`);
    if (!ctx.providerNames.includes(v)) throw new Error(unknownInstance(v, ctx));
    return v;
  };
}

function parseDomains(raw: unknown, base: string, issues: IssueList): string[] {
  const p = childPath(base, 'domains');
  if (!isSet(raw)) {
    issues.add(p, 'required: a list of at least one DNS name');
    return [];
  }
  if (Array.isArray(raw) && raw.length === 0) {
    issues.add(p, 'must list at least one DNS name');
    return [];
  }
  const out: string[] = [];
  for (const name of listOf(
    raw,
    p,
    issues,
    (d, dp) => valueAt(d, dp, issues, parseCertificateDomain),
    'a list of DNS names',
  ))
    if (!out.includes(name)) out.push(name);
  if (out.length > MAX_DOMAINS_PER_CERTIFICATE)
    issues.add(
      p,
      `lists ${out.length} names; CAs accept at most ${MAX_DOMAINS_PER_CERTIFICATE} per certificate`,
    );
  return out;
}

function parseOutput(raw: unknown, base: string, issues: IssueList): FileOutput | undefined {
  const what = `a mapping of ${OUTPUT_KEYS.join(', ')}`;
  const m = mapping(raw, base, issues, { keys: OUTPUT_KEYS, what, missing: true });
  if (!m) return undefined;
  const owner = optional(m, 'owner', base, issues, parseOwner);
  const group = optional(m, 'group', base, issues, parseOwner);
  const who = { ...(owner !== undefined ? { owner } : {}), ...(group !== undefined ? { group } : {}) };
  if (isSet(m.format) || isSet(m.path)) return parseFormatOutput(m, base, issues, who);
  const files: Partial<Record<(typeof OUTPUT_FILE_KEYS)[number], string>> = {};
  for (const key of OUTPUT_FILE_KEYS) {
    const file = optional(m, key, base, issues, absolutePath);
    if (file !== undefined) files[key] = file;
  }
  if (!OUTPUT_FILE_KEYS.some((k) => isSet(m[k])))
    issues.add(
      base,
      `writes nothing: set at least one of ${OUTPUT_FILE_KEYS.join(', ')}, or path and format`,
    );
  for (const key of FORMAT_KEYS)
    if (isSet(m[key])) issues.add(childPath(base, key), 'applies to an output with `path` and `format` only');
  const certMode = optional(m, 'mode', base, issues, parseMode) ?? DEFAULT_CERT_MODE;
  const keyMode = optional(m, 'keyMode', base, issues, parseMode) ?? DEFAULT_KEY_MODE;
  return { ...files, ...who, certMode, keyMode };
}

/** `{ path, format, ... }`: one file in another format; the PEM file keys do not mix in. */
function parseFormatOutput(
  m: Record<string, unknown>,
  base: string,
  issues: IssueList,
  who: { owner?: string; group?: string },
): FileOutput | undefined {
  const file = required(m, 'path', base, issues, absolutePath, 'required with `format`: an absolute path');
  const format = required(
    m,
    'format',
    base,
    issues,
    oneOf(OUTPUT_FORMATS),
    `required with \`path\`: one of ${OUTPUT_FORMATS.join(', ')}`,
  );
  for (const key of [...OUTPUT_FILE_KEYS, 'keyMode'])
    if (isSet(m[key])) issues.add(childPath(base, key), 'does not mix with `path` and `format`; give `mode`');
  const only = (key: string, fmt: OutputFormat): void => {
    if (isSet(m[key]) && format !== undefined && format !== fmt)
      issues.add(childPath(base, key), `applies to format ${fmt} only`);
  };
  only('content', 'der');
  only('password_file', 'pkcs12');
  only('friendlyName', 'pkcs12');
  const content = optional(m, 'content', base, issues, oneOf(['cert', 'key'] as const));
  const passwordFile = optional(m, 'password_file', base, issues, absolutePath);
  if (format === 'pkcs12' && !isSet(m.password_file))
    issues.add(childPath(base, 'password_file'), 'required for pkcs12: a secret file holding the password');
  const friendlyName = optional(m, 'friendlyName', base, issues, (v) => {
    if (typeof v === 'string' && FRIENDLY_NAME.test(v)) return v;
    throw new Error('must be 1 to 64 printable ASCII characters');
  });
  if (file === undefined || format === undefined) return undefined;
  const holdsKey = format !== 'der' || content === 'key';
  const mode =
    optional(m, 'mode', base, issues, parseMode) ?? (holdsKey ? DEFAULT_KEY_MODE : DEFAULT_CERT_MODE);
  return {
    path: file,
    format,
    ...(format === 'der' ? { content: content ?? 'cert' } : {}),
    ...(format === 'pkcs12' && passwordFile !== undefined ? { passwordFile } : {}),
    ...(format === 'pkcs12' && friendlyName !== undefined ? { friendlyName } : {}),
    ...who,
    certMode: mode,
    keyMode: DEFAULT_KEY_MODE,
  };
}

interface CertDns {
  provider?: string;
  domains: Record<string, string>;
}

/** `certificates[i].dns.domains`: per-domain provider instances, keyed by one of the certificate's names. */
function parseDomainProviders(
  raw: unknown,
  dp: string,
  domains: readonly string[],
  ctx: CertificateContext,
  issues: IssueList,
): Record<string, string> {
  const out: Record<string, string> = {};
  const m = mapping(raw, dp, issues, { what: 'a mapping of domain names to provider instances' });
  for (const [domain, instance] of Object.entries(m ?? {})) {
    const kp = childPath(dp, domain);
    const name = normaliseName(domain);
    if (!domains.includes(name)) {
      issues.add(kp, `${JSON.stringify(domain)} is not one of this certificate's domains`);
      continue;
    }
    const valid = valueAt(instance, kp, issues, instanceName(ctx));
    // Defined, not assigned: a domain key can never reach the prototype.
    if (valid !== undefined)
      Object.defineProperty(out, name, { value: valid, enumerable: true, writable: true });
  }
  return out;
}

function parseCertDns(
  raw: unknown,
  domains: readonly string[],
  base: string,
  ctx: CertificateContext,
  issues: IssueList,
): CertDns {
  const p = childPath(base, 'dns');
  const m = mapping(raw, p, issues, { keys: CERT_DNS_KEYS, what: 'a mapping with provider and/or domains' });
  if (!m) return { domains: {} };
  const provider = optional(m, 'provider', p, issues, instanceName(ctx));
  const byDomain = isSet(m.domains)
    ? parseDomainProviders(m.domains, childPath(p, 'domains'), domains, ctx, issues)
    : {};
  return { ...(provider !== undefined ? { provider } : {}), domains: byDomain };
}

/**
 * The certificate's default provider instance: `dns.provider`, or the only instance when
 * exactly one is configured. A name left without a provider, or outside its instance's zones,
 * concerns this certificate alone: it is not a load problem but a certificate problem
 * (problems.ts), so renew fails this certificate and renews the others.
 */
function defaultProvider(
  raw: Record<string, unknown>,
  dns: CertDns,
  ctx: CertificateContext,
): string | undefined {
  // With exactly one instance configured there is nothing to choose: use it.
  const fallback = ctx.providerNames.length === 1 ? ctx.providerNames[0] : undefined;
  return dns.provider ?? (isPlainObject(raw.dns) && isSet(raw.dns.provider) ? undefined : fallback);
}

function parseCertificate(
  raw: unknown,
  base: string,
  ctx: CertificateContext,
  issues: IssueList,
): CertificateSpec | undefined {
  const m = mapping(raw, base, issues, {
    keys: CERTIFICATE_KEYS,
    what: 'a mapping with name and domains',
    missing: true,
  });
  if (!m) return undefined;
  const name = required(
    m,
    'name',
    base,
    issues,
    parseCertificateName,
    'required: a short file-name safe name such as "www-example-com"',
  );
  const domains = parseDomains(m.domains, base, issues);
  const keyType = optional(m, 'keyType', base, issues, parseKeyType) ?? ctx.defaultKeyType;
  const reuseKey = optional(m, 'reuseKey', base, issues, bool) ?? DEFAULT_REUSE_KEY;
  const profile = parseCertificateProfile(m, base, issues);
  const dns = parseCertDns(m.dns, domains, base, ctx, issues);
  const outputs = listOf(
    m.outputs,
    childPath(base, 'outputs'),
    issues,
    (o, p) => parseOutput(o, p, issues),
    'a list of outputs',
  );
  const thresholds = parseCertificateCheck(m.check, base, ctx.thresholds ?? DEFAULT_THRESHOLDS, issues);
  const dnsProvider = defaultProvider(m, dns, ctx);
  const deploy = certificateDeploy(m, base, issues);
  if (name === undefined || issues.hasAt(base)) return undefined;
  return {
    name,
    domains,
    keyType,
    reuseKey,
    ...profile,
    ...(dnsProvider !== undefined ? { dnsProvider } : {}),
    domainProviders: dns.domains,
    outputs,
    ...(thresholds ? { thresholds } : {}),
    ...deploy,
  };
}

/** Output files written by two outputs would overwrite each other on every renewal. */
function checkOutputCollisions(raw: readonly unknown[], issues: IssueList): void {
  const seen = new Map<string, string>();
  raw.forEach((cert, ci) => {
    if (!isPlainObject(cert) || !Array.isArray(cert.outputs)) return;
    cert.outputs.forEach((o: unknown, oi) => {
      if (!isPlainObject(o)) return;
      for (const key of [...OUTPUT_FILE_KEYS, 'path']) {
        const v = o[key];
        if (typeof v !== 'string' || !path.isAbsolute(v)) continue;
        const file = path.normalize(v);
        const here = childPath(childPath(childPath(childPath('certificates', ci), 'outputs'), oi), key);
        const first = seen.get(file);
        if (first) issues.add(here, `${file} is also written by ${first}`);
        else seen.set(file, here);
      }
    });
  });
}

/** Two certificates of one name would share a directory under stateDir. */
function checkDuplicateNames(raw: readonly unknown[], issues: IssueList): void {
  const names = new Map<string, number>();
  raw.forEach((c, i) => {
    if (!isPlainObject(c) || typeof c.name !== 'string') return;
    const first = names.get(c.name);
    if (first === undefined) names.set(c.name, i);
    else
      issues.add(
        childPath(childPath('certificates', i), 'name'),
        `duplicate name ${JSON.stringify(c.name)} (also certificates[${first}])`,
      );
  });
}

export function parseCertificates(
  raw: unknown,
  ctx: CertificateContext,
  issues: IssueList,
): CertificateSpec[] {
  if (!Array.isArray(raw)) return []; // the schema pass reported it
  const specs = listOf(raw, 'certificates', issues, (c, p) => parseCertificate(c, p, ctx, issues));
  checkDuplicateNames(raw, issues);
  checkOutputCollisions(raw, issues);
  return specs;
}

/**
 * Early check for the loader: every pkcs12 output's password file is readable, private and a
 * usable password (it is read again at each install, so a rotated password is picked up).
 */
export async function checkOutputSecretFiles(rawCertificates: unknown, issues: IssueList): Promise<void> {
  if (!Array.isArray(rawCertificates)) return;
  for (const [ci, cert] of rawCertificates.entries()) {
    if (!isPlainObject(cert) || !Array.isArray(cert.outputs)) continue;
    for (const [oi, o] of cert.outputs.entries()) {
      if (!isPlainObject(o) || o.format !== 'pkcs12') continue;
      const file = o.password_file;
      if (typeof file !== 'string' || !path.isAbsolute(file)) continue; // the parser reported it
      const at = childPath(
        childPath(childPath(childPath('certificates', ci), 'outputs'), oi),
        'password_file',
      );
      const password = await readSecretFileAt(file, at, issues);
      if (password !== undefined && !/^[\x20-\x7e]{1,1024}$/.test(password))
        issues.add(
          at,
          `${file} must hold 1 to 1024 printable ASCII characters (what every PKCS#12 reader derives alike)`,
        );
    }
  }
}
