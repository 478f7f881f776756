import convict from 'convict';
import {
  DEFAULT_ACME_DIRECTORY,
  DEFAULT_ARCHIVE_DEPTH,
  DEFAULT_CHECK_INTERVAL,
  DEFAULT_CONCURRENCY,
  DEFAULT_DAEMON_LISTEN,
  DEFAULT_KEY_TYPE,
  DEFAULT_MAX_ORDERS_PER_WEEK,
  DEFAULT_NAMESERVER_PORT,
  DEFAULT_QUERY_TIMEOUT,
  DEFAULT_RENEW_RATIO,
  DEFAULT_REQUEST_TIMEOUT,
  DEFAULT_SHORT_LIFETIME_DAYS,
  DEFAULT_SHORT_LIFETIME_RATIO,
  DEFAULT_STATE_DIR,
} from './defaults';
import {
  coerceBoolean,
  coerceDuration,
  coerceInteger,
  coerceList,
  coerceNumber,
  ListProblems,
  parseAbsolutePath,
  parseAcmeDirectory,
  parseBoolean,
  parseCredentialUrl,
  parseDuration,
  parseEmail,
  parseInteger,
  parseKeyType,
  parseListen,
  parseNonEmptyString,
  parseRatio,
  parseResolverList,
} from './formats';
import { childPath, isPlainObject, describeType, type IssueList } from './issues';
import type { KeyType, PropagationPolicy } from './types';

/**
 * The convict schema owns the fixed, scalar part of the file (acme, storage, defaults, daemon,
 * dns): each leaf's documentation, default, environment variable and secrecy, and the merge of
 * defaults, file and environment (with strict coercion of environment strings). Convict does
 * not validate: `readLeaves` runs each leaf's parser (FORMATS) on the merged value and records
 * problems with their paths, so no code reads convict's error text. The two open-ended leaves
 * (`certificates`, `dns.providers`) are declared here for their docs and defaults and parsed
 * element by element by the section parsers (see docs/decisions.md, section 6).
 */

/** No CA answers in under a second reliably; a smaller value is "30" meant as seconds. */
const MIN_REQUEST_TIMEOUT_MS = 1_000;
/** Even a local nameserver needs some milliseconds; below this every query would time out. */
const MIN_QUERY_TIMEOUT_MS = 100;
/** Archive depth cap: more versions than this is a backup system, not a rollback. */
export const MAX_ARCHIVE_DEPTH = 100;
/** Short-lifetime threshold cap: a year; longer "short" lifetimes make no sense. */
const MAX_SHORT_LIFETIME_DAYS = 365;
/** More parallel orders than this only trips CA and DNS API rate limits. */
export const MAX_CONCURRENCY = 64;
/** A loop that orders the same names 50 times a week has long burnt the CA's limit. */
const MAX_ORDERS_PER_WEEK = 50;

/** Environment variables read by the schema (provider options declare their own). */
export const ENV = {
  acmeDirectory: 'CERTPILOT_ACME_DIRECTORY',
  acmeEmail: 'CERTPILOT_ACME_EMAIL',
  termsAgreed: 'CERTPILOT_ACME_TERMS_AGREED',
  eabKeyId: 'CERTPILOT_EAB_KEY_ID',
  eabHmacKey: 'CERTPILOT_EAB_HMAC_KEY',
  eabHmacKeyFile: 'CERTPILOT_EAB_HMAC_KEY_FILE',
  caBundle: 'CERTPILOT_CA_BUNDLE',
  stateDir: 'CERTPILOT_STATE_DIR',
  keyType: 'CERTPILOT_KEY_TYPE',
  concurrency: 'CERTPILOT_CONCURRENCY',
  resolvers: 'CERTPILOT_DNS_RESOLVERS',
  nameserverPort: 'CERTPILOT_DNS_NAMESERVER_PORT',
} as const;

/** HMAC keys from CAs are base64url (RFC 8555 §7.3.4); some CAs print standard base64. */
export const HMAC_KEY = /^[A-Za-z0-9+/_-]+=*$/;

function parseHmacKey(value: unknown): string {
  // Never quote the value: it is a secret.
  if (typeof value !== 'string') throw new Error(`must be a string, not ${describeType(value)}`);
  if (!HMAC_KEY.test(value.trim())) throw new Error('must be the base64url HMAC key the CA issued');
  return value.trim();
}

/** Schema keys our formats read besides `format`: bounds of integers and durations, choices. */
type SchemaItem = { min?: number; max?: number; minMs?: number; choices?: readonly string[] };

function parseChoice(value: unknown, item: SchemaItem): string {
  const choices = item.choices ?? [];
  if (typeof value !== 'string' || !choices.includes(value))
    throw new Error(`must be one of ${choices.join(', ')}, not ${describeType(value)}`);
  return value;
}

function parseBoundedDuration(value: unknown, item: SchemaItem): number {
  const ms = parseDuration(value);
  if (item.minMs !== undefined && ms < item.minMs) {
    throw new Error(
      `must be at least ${item.minMs} ms (a bare number means milliseconds; write "30s" for seconds)`,
    );
  }
  return ms;
}

interface LeafFormat {
  /** Validates and normalises the merged value; throws with the message shown after the path. */
  readonly parse: (value: unknown, item: SchemaItem) => unknown;
  /** Turns an environment string into what `parse` expects (strictly: "12abc" stays a string). */
  readonly coerce?: (value: string) => unknown;
}

/**
 * Our named convict formats. Named (not inline functions) because convict applies a coercion
 * to environment strings only through a named format; its built-in ones are lenient ("12abc"
 * -> 12, "0" -> true).
 */
export const FORMATS: Readonly<Record<string, LeafFormat>> = {
  'certpilot-acme-directory': { parse: parseAcmeDirectory },
  'certpilot-email': { parse: parseEmail },
  'certpilot-boolean': { parse: parseBoolean, coerce: coerceBoolean },
  'certpilot-string': { parse: (v) => parseNonEmptyString(v).trim() },
  'certpilot-hmac-key': { parse: parseHmacKey },
  'certpilot-absolute-path': { parse: parseAbsolutePath },
  'certpilot-duration': { parse: parseBoundedDuration, coerce: coerceDuration },
  // A schedule that may be switched off: `0`, `"0"` or `off` (a duration is never zero).
  'certpilot-duration-or-off': {
    parse: (v, s) => (v === 0 || v === '0' || v === 'off' || v === false ? 0 : parseBoundedDuration(v, s)),
    coerce: (v) => (v.trim() === 'off' ? 'off' : coerceDuration(v)),
  },
  'certpilot-int': {
    parse: (v, s) => parseInteger(v, s.min ?? 0, s.max ?? Number.MAX_SAFE_INTEGER),
    coerce: coerceInteger,
  },
  'certpilot-ratio': { parse: parseRatio, coerce: coerceNumber },
  'certpilot-key-type': { parse: parseKeyType },
  'certpilot-resolvers': { parse: parseResolverList, coerce: coerceList },
  'certpilot-listen': { parse: parseListen },
  'certpilot-credential-url': { parse: parseCredentialUrl },
  'certpilot-choice': { parse: parseChoice },
  'certpilot-list': {
    parse: (v) => {
      if (!Array.isArray(v)) throw new Error(`must be a list, not ${describeType(v)}`);
      return v;
    },
  },
};

/** `format: Object` leaves (convict assigns them whole): open maps parsed by their section. */
function parseMapping(value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) throw new Error(`must be a mapping, not ${describeType(value)}`);
  return value;
}

/** Registered once per process: convict keeps formats in a module-global table. */
let formatsRegistered = false;

export function registerFormats(): void {
  if (formatsRegistered) return;
  formatsRegistered = true;
  for (const [name, f] of Object.entries(FORMATS)) {
    // Convict insists on a validator; the loader never calls convict's validate().
    convict.addFormat({
      name,
      validate: (v: unknown, item: convict.SchemaObj) => void f.parse(v, item as SchemaItem),
      coerce: f.coerce,
    });
  }
}

/** The schema: a data literal, handed to convict as is (convict copies what it keeps). */
const SCHEMA = {
  acme: {
    directory: {
      doc: 'ACME directory: a preset (letsencrypt, letsencrypt-staging, zerossl, google, buypass) or an https:// URL.',
      format: 'certpilot-acme-directory',
      default: DEFAULT_ACME_DIRECTORY,
      env: ENV.acmeDirectory,
    },
    email: {
      doc: 'Contact address for the ACME account (expiry and policy mail from the CA).',
      format: 'certpilot-email',
      default: null,
      nullable: true,
      env: ENV.acmeEmail,
    },
    termsAgreed: {
      doc: "Set to true to agree to the CA's terms of service; accounts cannot be created otherwise.",
      format: 'certpilot-boolean',
      default: false,
      env: ENV.termsAgreed,
    },
    eab: {
      keyId: {
        doc: 'External Account Binding key id from the CA (ZeroSSL, Google, ...).',
        format: 'certpilot-string',
        default: null,
        nullable: true,
        env: ENV.eabKeyId,
      },
      hmacKey: {
        doc: 'External Account Binding HMAC key (secret).',
        format: 'certpilot-hmac-key',
        default: null,
        nullable: true,
        sensitive: true,
        env: ENV.eabHmacKey,
      },
      hmacKey_file: {
        doc: 'File holding the EAB HMAC key (absolute path, mode 0600 or stricter).',
        format: 'certpilot-absolute-path',
        default: null,
        nullable: true,
        env: ENV.eabHmacKeyFile,
      },
    },
    preferredChain: {
      doc: 'Issuer common name of the chain to prefer when the CA offers alternates (e.g. "ISRG Root X1"); the CA\'s default chain when none matches.',
      format: 'certpilot-string',
      default: null,
      nullable: true,
    },
    caaIdentities: {
      doc: "Issuer domains of the CA as CAA records name it (e.g. letsencrypt.org), for `check --readiness` when the CA's directory publishes no caaIdentities.",
      format: 'certpilot-list',
      default: [] as string[],
    },
    caBundle: {
      doc: 'PEM file of extra CA certificates to trust for the ACME server (absolute path).',
      format: 'certpilot-absolute-path',
      default: null,
      nullable: true,
      env: ENV.caBundle,
    },
    requestTimeout: {
      doc: 'Timeout of one HTTP request to the CA: milliseconds or "30s", "2m".',
      format: 'certpilot-duration',
      minMs: MIN_REQUEST_TIMEOUT_MS,
      default: DEFAULT_REQUEST_TIMEOUT,
    },
    fallback: {
      doc: 'Further CAs, in order, for an order the primary keeps failing in one run (5xx, timeouts, rate limits) where CAA allows them; each entry as in `acme.fallback[]` below.',
      format: 'certpilot-list',
      default: [] as unknown[],
    },
  },
  storage: {
    stateDir: {
      doc: 'Directory for accounts, certificates, archive and locks (absolute).',
      format: 'certpilot-absolute-path',
      default: DEFAULT_STATE_DIR,
      env: ENV.stateDir,
    },
    archiveDepth: {
      doc: 'How many previous versions of each certificate to keep.',
      format: 'certpilot-int',
      min: 0,
      max: MAX_ARCHIVE_DEPTH,
      default: DEFAULT_ARCHIVE_DEPTH,
    },
    backend: {
      doc: 'Where state lives: "file" (storage.stateDir) or "etcd" (storage.etcd, shared by a fleet).',
      format: 'certpilot-string',
      default: 'file',
    },
    etcd: {
      doc: 'The etcd backend: { endpoints, prefix, caFile, certFile, keyFile, user, password_file, encryptionKeys, requestTimeout, retryFor, lockLease }; parsed in storage.ts.',
      // `Object` so convict assigns it whole; its options are parsed in storage.ts.
      format: Object,
      default: {} as Record<string, unknown>,
    },
  },
  defaults: {
    keyType: {
      doc: 'Key type for certificates that do not set one: ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096.',
      format: 'certpilot-key-type',
      default: DEFAULT_KEY_TYPE,
      env: ENV.keyType,
    },
    renewal: {
      ratio: {
        doc: 'Renew when this fraction of the lifetime is left.',
        format: 'certpilot-ratio',
        default: DEFAULT_RENEW_RATIO,
      },
      shortLifetimeRatio: {
        doc: 'For short-lived certificates, renew when this fraction is left.',
        format: 'certpilot-ratio',
        default: DEFAULT_SHORT_LIFETIME_RATIO,
      },
      shortLifetimeDays: {
        doc: 'Lifetimes under this many days count as short.',
        format: 'certpilot-int',
        min: 1,
        max: MAX_SHORT_LIFETIME_DAYS,
        default: DEFAULT_SHORT_LIFETIME_DAYS,
      },
      maxOrdersPerWeek: {
        doc: 'Never order the same exact set of names more often than this in 7 days (alert instead).',
        format: 'certpilot-int',
        min: 1,
        max: MAX_ORDERS_PER_WEEK,
        default: DEFAULT_MAX_ORDERS_PER_WEEK,
      },
    },
    concurrency: {
      doc: 'How many orders may run at once.',
      format: 'certpilot-int',
      min: 1,
      max: MAX_CONCURRENCY,
      default: DEFAULT_CONCURRENCY,
      env: ENV.concurrency,
    },
  },
  daemon: {
    checkInterval: {
      doc: 'How often `certpilot run` inspects and plans (it also wakes for the next planned renewal).',
      format: 'certpilot-duration',
      default: DEFAULT_CHECK_INTERVAL,
    },
    listen: {
      doc: 'host:port for /metrics and /healthz of `certpilot run`; empty disables the HTTP server.',
      format: 'certpilot-listen',
      default: DEFAULT_DAEMON_LISTEN,
      env: 'CERTPILOT_DAEMON_LISTEN',
    },
    allowRemote: {
      doc: 'Allow daemon.listen on an address other than loopback. /metrics and /healthz have no authentication: put a firewall or an authenticating proxy in front.',
      format: 'certpilot-boolean',
      default: false,
    },
    heartbeat: {
      doc: "URL requested (GET) after every successful check cycle of `certpilot run`: a dead man's switch (healthchecks-style); may hold a token (treated as a secret); http:// only to this host.",
      format: 'certpilot-credential-url',
      default: null,
      nullable: true,
      sensitive: true,
    },
    heartbeatTimeout: {
      doc: 'Timeout of one heartbeat request.',
      format: 'certpilot-duration',
      default: '10s',
    },
    silentAfter: {
      doc: '`certpilot check` reports renewer-silent when the state directory shows no successful `certpilot run` cycle or `certpilot renew` for longer than this.',
      format: 'certpilot-duration',
      default: '36h',
    },
    endpointInterval: {
      doc: '`certpilot run` inspects what `certpilot check` inspects for /metrics and expiry reminders: stored certificates and watched files every check cycle, endpoints this often (at the first check cycle after it is due), jittered by up to 10%, and at once after a renewal or a configuration change.',
      format: 'certpilot-duration',
      default: '1h',
    },
    redeployBackoff: {
      doc: '`certpilot run` deploys a certificate again when an endpoint serves an older version; after a failed redeploy it waits this long, doubling after each further failure up to daemon.endpointInterval (an alert after 3 failures in a row).',
      format: 'certpilot-duration',
      default: '5m',
    },
    readinessInterval: {
      doc: '`certpilot run` runs the renewal-readiness canary (`certpilot check --readiness`) this often, jittered by up to 10%, and alerts once per failing check; the next run time is kept in the state directory across restarts; `0` or `off` disables it.',
      format: 'certpilot-duration-or-off',
      default: '24h',
    },
  },
  // Read only when the file has a `fleet:` section (src/config/fleet.ts).
  fleet: {
    nodeName: {
      doc: "This node's name in the fleet's shared deploy records (letters, digits, . _ -); default: the host name.",
      format: 'certpilot-string',
      default: null,
      nullable: true,
    },
    rollout: {
      doc: 'How a new version reaches the nodes: "all" (every node deploys it as soon as it sees it) or "canary" (fleet.canary first; the others only after it verified).',
      format: 'certpilot-string',
      default: 'all',
    },
    canary: {
      doc: 'Node name of the canary (rollout: canary); default: the first node name in sorted order.',
      format: 'certpilot-string',
      default: null,
      nullable: true,
    },
    stagger: {
      doc: 'With rollout: canary, the k-th other node (sorted by name) deploys k × stagger after the canary verified.',
      format: 'certpilot-duration',
      default: '30s',
    },
    pollInterval: {
      doc: "How often a fleet node reads the store's current versions and the fleet's deploy records (two etcd requests when nothing changed).",
      format: 'certpilot-duration',
      default: '10s',
    },
  },
  dns: {
    resolvers: {
      doc: 'Recursive resolvers ("ip", "ip:port", "[v6]:port"). When set, every host name certpilot connects to (CA, DNS provider APIs and servers, webhooks, SMTP, heartbeat, endpoints, storage.etcd.endpoints) is resolved through them, never the system resolver (/etc/hosts is not read; localhost is loopback); empty = the system resolvers.',
      format: 'certpilot-resolvers',
      default: [] as string[],
      env: ENV.resolvers,
    },
    nameserverPort: {
      doc: 'Port on which authoritative nameservers are queried for propagation.',
      format: 'certpilot-int',
      min: 1,
      max: 65535,
      default: DEFAULT_NAMESERVER_PORT,
      env: ENV.nameserverPort,
    },
    queryTimeout: {
      doc: 'Timeout of one DNS query.',
      format: 'certpilot-duration',
      minMs: MIN_QUERY_TIMEOUT_MS,
      default: DEFAULT_QUERY_TIMEOUT,
    },
    // The propagation policy; trade-offs in docs/configuration.md ("Propagation policy").
    propagation: {
      mode: {
        doc: '"authoritative": ask every address of every authoritative nameserver until all serve the records; "wait": check nothing, wait dns.propagation.wait (hosts without DNS egress; a slow provider then fails validation).',
        format: 'certpilot-choice',
        choices: ['authoritative', 'wait'],
        default: 'authoritative',
      },
      unreachable: {
        doc: 'A nameserver address this host cannot reach (timeout, refused, no route): "fail" keeps waiting until the propagation timeout; "skip" ignores it with a warning once another address confirmed every record (a secondary there may still lag).',
        format: 'certpilot-choice',
        choices: ['fail', 'skip'],
        default: 'fail',
      },
      ipv6: {
        doc: 'Ask nameservers over IPv6: "on" always; "off" never (a nameserver with only IPv6 addresses goes unchecked); "auto" only when this host has a global IPv6 address.',
        format: 'certpilot-choice',
        choices: ['on', 'off', 'auto'],
        default: 'on',
      },
      wait: {
        doc: 'The fixed wait of mode "wait", after the records are written.',
        format: 'certpilot-duration',
        default: '60s',
      },
    },
    providers: {
      doc: 'DNS provider instances by name: { <name>: { type, zones, ttl, ..., provider options } }.',
      // `Object` (not a named format) so convict assigns each instance whole instead of
      // merging into it; instances are parsed in providers.ts.
      format: Object,
      default: {} as Record<string, unknown>,
    },
  },
  certificates: {
    doc: 'Certificates to keep renewed; parsed element by element in certificates.ts.',
    format: 'certpilot-list',
    default: [] as unknown[],
  },
};

export function buildSchema(): typeof SCHEMA {
  registerFormats();
  return SCHEMA;
}

export type ConfigSchema = ReturnType<typeof buildSchema>;

/** One leaf of the schema, flattened: its dotted path and declaration. */
export interface SchemaLeaf {
  readonly path: string;
  readonly doc: string;
  readonly default: unknown;
  readonly env?: string;
  readonly sensitive: boolean;
  /** null is "not set" (no default). */
  readonly nullable: boolean;
  /** Validates and normalises the merged value (FORMATS, or a mapping for `format: Object`). */
  readonly parse: (value: unknown) => unknown;
  /** The FORMATS name, or "mapping" for `format: Object` (the reference names the type from it). */
  readonly format: string;
  /** Bounds the format checks (integers: min/max; durations: minMs). */
  readonly bounds: SchemaItem;
}

function leafParser(node: Record<string, unknown>): (value: unknown) => unknown {
  const format = typeof node.format === 'string' ? FORMATS[node.format] : undefined;
  if (format) return (v) => format.parse(v, node as SchemaItem);
  if (node.format === Object) return parseMapping;
  throw new Error(`schema leaf without a certpilot format: ${String(node.format)}`);
}

function isLeaf(node: unknown): node is Record<string, unknown> & { default: unknown } {
  return isPlainObject(node) && 'default' in node;
}

/** Every leaf of the schema (docs tests and the shape pre-check use it). */
export function schemaLeaves(schema: object = buildSchema()): readonly SchemaLeaf[] {
  const out: SchemaLeaf[] = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [key, child] of Object.entries(node)) {
      const p = prefix ? `${prefix}.${key}` : key;
      if (isLeaf(child)) {
        out.push({
          path: p,
          doc: String(child.doc ?? ''),
          default: child.default,
          env: typeof child.env === 'string' ? child.env : undefined,
          sensitive: child.sensitive === true,
          nullable: child.nullable === true,
          parse: leafParser(child),
          format: typeof child.format === 'string' ? child.format : 'mapping',
          bounds: { min: child.min as number, max: child.max as number, minMs: child.minMs as number },
        });
      } else if (isPlainObject(child)) {
        walk(child, p);
      }
    }
  };
  walk(schema as Record<string, unknown>, '');
  return out;
}

/** The schema tree as nested sets of keys: true = leaf, object = section. */
export type SchemaShape = { readonly [key: string]: true | SchemaShape };

export function schemaShape(schema: object = buildSchema()): SchemaShape {
  const walk = (node: Record<string, unknown>): SchemaShape => {
    const out: Record<string, true | SchemaShape> = {};
    for (const [key, child] of Object.entries(node))
      out[key] = isLeaf(child) ? true : walk(child as Record<string, unknown>);
    return out;
  };
  return walk(schema as Record<string, unknown>);
}

/** What each leaf's parser returns (FORMATS), by path: the types the section parsers read. */
export interface LeafTypes {
  'acme.directory': string;
  'acme.email': string;
  'acme.termsAgreed': boolean;
  'acme.eab.keyId': string;
  'acme.eab.hmacKey': string;
  'acme.eab.hmacKey_file': string;
  'acme.caBundle': string;
  'acme.preferredChain': string;
  'acme.caaIdentities': unknown[];
  'acme.requestTimeout': number;
  'acme.fallback': unknown[];
  'storage.stateDir': string;
  'storage.archiveDepth': number;
  'storage.backend': string;
  'storage.etcd': Record<string, unknown>;
  'defaults.keyType': KeyType;
  'defaults.renewal.ratio': number;
  'defaults.renewal.shortLifetimeRatio': number;
  'defaults.renewal.shortLifetimeDays': number;
  'defaults.renewal.maxOrdersPerWeek': number;
  'defaults.concurrency': number;
  'daemon.checkInterval': number;
  'daemon.listen': { host: string; port: number } | undefined;
  'daemon.allowRemote': boolean;
  'daemon.heartbeat': string;
  'daemon.heartbeatTimeout': number;
  'daemon.silentAfter': number;
  'daemon.endpointInterval': number;
  'daemon.readinessInterval': number;
  'fleet.nodeName': string;
  'fleet.rollout': string;
  'fleet.canary': string;
  'fleet.stagger': number;
  'fleet.pollInterval': number;
  'daemon.redeployBackoff': number;
  'dns.resolvers': string[];
  'dns.nameserverPort': number;
  'dns.queryTimeout': number;
  'dns.propagation.mode': PropagationPolicy['mode'];
  'dns.propagation.unreachable': PropagationPolicy['unreachable'];
  'dns.propagation.ipv6': PropagationPolicy['ipv6'];
  'dns.propagation.wait': number;
  'dns.providers': Record<string, unknown>;
  certificates: unknown[];
}

/** The merged values of the schema's leaves: normalised, or undefined when not set or invalid. */
export interface LeafValues {
  get<K extends keyof LeafTypes>(path: K): LeafTypes[K] | undefined;
}

/**
 * Runs every leaf's parser on the value convict merged (default, file, environment). A problem
 * is recorded at the leaf's path, with the environment variable named when one is set (the
 * value then came from it, not from the file). Leaves that already have a problem (the shape
 * check dropped them) are skipped: convict holds their default, which says nothing.
 */
export function readLeaves(
  get: (path: string) => unknown,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
  leaves: readonly SchemaLeaf[] = schemaLeaves(),
): LeafValues {
  // Keyed by the schema's own paths; LeafTypes states what each one's format returns.
  const values = new Map<string, unknown>();
  for (const leaf of leaves) {
    if (issues.hasAt(leaf.path)) continue;
    const raw = get(leaf.path);
    if (raw === null && leaf.nullable) continue;
    try {
      values.set(leaf.path, leaf.parse(raw));
    } catch (e) {
      const fromEnv = leaf.env !== undefined && env[leaf.env] !== undefined ? ` (from $${leaf.env})` : '';
      if (e instanceof ListProblems)
        for (const p of e.problems) issues.add(childPath(leaf.path, p.index), `${p.message}${fromEnv}`);
      else issues.add(leaf.path, `${(e as Error).message}${fromEnv}`);
    }
  }
  return values as LeafValues;
}
