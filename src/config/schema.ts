import convict from 'convict';
import {
  coerceBoolean,
  coerceDuration,
  coerceInteger,
  coerceList,
  coerceNumber,
  parseAbsolutePath,
  parseAcmeDirectory,
  parseBoolean,
  parseDuration,
  parseEmail,
  parseInteger,
  parseKeyType,
  parseNonEmptyString,
  parseRatio,
  parseResolverList,
} from './formats';
import { isPlainObject, describeType } from './issues';

/**
 * The convict schema is the single source of truth for the fixed sections of the file (acme,
 * storage, defaults, dns): their documentation, defaults, environment variables and which
 * values are secret. Lists of objects (certificates) and the open-ended `dns.providers` map are
 * typed here and checked element by element in certificates.ts / providers.ts, because convict
 * validates only leaves.
 */

// Defaults, with the reason for each.
/** Production Let's Encrypt: the CA most users mean; staging must be asked for explicitly. */
export const DEFAULT_ACME_DIRECTORY = 'letsencrypt';
/** One ACME request; Let's Encrypt answers in well under a second, 30s rides out a slow spell. */
export const DEFAULT_REQUEST_TIMEOUT = '30s';
/** FHS location for state that persists across reboots. */
export const DEFAULT_STATE_DIR = '/var/lib/certpilot';
/** Five previous versions are enough to roll back a bad deploy and cost a few kilobytes. */
export const DEFAULT_ARCHIVE_DEPTH = 5;
/** Let's Encrypt's own recommendation: ECDSA P-256 is small, fast and universally supported. */
export const DEFAULT_KEY_TYPE = 'ec-p256';
/** Renew with a third of the lifetime left: day 60 of 90, as Let's Encrypt recommends. */
export const RENEW_WINDOW_RATIO = 1 / 3;
/** Short-lived certificates (6-day profile) renew at half their lifetime to leave retry room. */
export const SHORT_LIFETIME_RATIO = 1 / 2;
/** Lifetimes below 10 days count as short (Let's Encrypt's short-lived profile is ~6 days). */
export const SHORT_LIFETIME_DAYS = 10;
/** Let's Encrypt allows 5 certificates per exact set of names per week; stop at 3 to leave room for a human. */
export const DEFAULT_MAX_ORDERS_PER_WEEK = 3;
/** Caddy and Let's Encrypt's advice: look often (ARI changes), cheap when nothing is due. */
export const DEFAULT_CHECK_INTERVAL = '10m';
/** Metrics and health on loopback only by default: nothing is exposed without a decision. */
export const DEFAULT_DAEMON_LISTEN = '127.0.0.1:9612';
/** Four orders at once keeps well inside Let's Encrypt's 300 new orders per 3 hours. */
export const DEFAULT_CONCURRENCY = 4;
/** More parallel orders than this only trips CA and DNS API rate limits. */
export const MAX_CONCURRENCY = 64;
/** Authoritative DNS listens on 53; tests point this at BIND on a high port. */
export const DEFAULT_NAMESERVER_PORT = 53;
/** One DNS query; a healthy nameserver answers in milliseconds, 5s covers a retry over TCP. */
export const DEFAULT_QUERY_TIMEOUT = '5s';
/** No CA answers in under a second reliably; a smaller value is "30" meant as seconds. */
const MIN_REQUEST_TIMEOUT_MS = 1_000;
/** Even a local nameserver needs some milliseconds; below this every query would time out. */
const MIN_QUERY_TIMEOUT_MS = 100;
/** Archive depth cap: more versions than this is a backup system, not a rollback. */
export const MAX_ARCHIVE_DEPTH = 100;
/** Short-lifetime threshold cap: a year; longer "short" lifetimes make no sense. */
const MAX_SHORT_LIFETIME_DAYS = 365;

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
function validateHmacKey(value: unknown): void {
  // Never quote the value: it is a secret.
  if (typeof value !== 'string') throw new Error(`must be a string, not ${describeType(value)}`);
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(value.trim()))
    throw new Error('must be the base64url HMAC key the CA issued');
}

type SchemaItem = { min?: number; max?: number; minMs?: number };
type Validator = (value: unknown, schemaItem: SchemaItem) => void;

/**
 * Our named convict formats. Named (not inline functions) because convict applies a coercion
 * to environment strings only through a named format; its built-in ones are the traps listed
 * in NOTES.md ("12abc" -> 12, "0" -> true).
 */
export const FORMATS: Readonly<Record<string, { validate: Validator; coerce?: (value: string) => unknown }>> =
  {
    'certpilot-acme-directory': { validate: (v) => void parseAcmeDirectory(v) },
    'certpilot-email': { validate: (v) => void parseEmail(v) },
    'certpilot-boolean': { validate: (v) => void parseBoolean(v), coerce: coerceBoolean },
    'certpilot-string': { validate: (v) => void parseNonEmptyString(v) },
    'certpilot-hmac-key': { validate: validateHmacKey },
    'certpilot-absolute-path': { validate: (v) => void parseAbsolutePath(v) },
    'certpilot-duration': {
      validate: (v, s) => {
        const ms = parseDuration(v);
        if (s.minMs !== undefined && ms < s.minMs) {
          throw new Error(
            `must be at least ${s.minMs} ms (a bare number means milliseconds; write "30s" for seconds)`,
          );
        }
      },
      coerce: coerceDuration,
    },
    'certpilot-int': {
      validate: (v, s) => void parseInteger(v, s.min ?? 0, s.max ?? Number.MAX_SAFE_INTEGER),
      coerce: coerceInteger,
    },
    'certpilot-ratio': { validate: (v) => void parseRatio(v), coerce: coerceNumber },
    'certpilot-key-type': { validate: (v) => void parseKeyType(v) },
    'certpilot-resolvers': { validate: (v) => void parseResolverList(v), coerce: coerceList },
    'certpilot-list': {
      validate: (v) => {
        if (!Array.isArray(v)) throw new Error(`must be a list, not ${describeType(v)}`);
      },
    },
  };

/** Registered once per process: convict keeps formats in a module-global table. */
let formatsRegistered = false;

export function registerFormats(): void {
  if (formatsRegistered) return;
  formatsRegistered = true;
  for (const [name, f] of Object.entries(FORMATS)) {
    convict.addFormat({
      name,
      validate: (v: unknown, item: convict.SchemaObj) => f.validate(v, item as SchemaItem),
      coerce: f.coerce,
    });
  }
}

export function buildSchema() {
  registerFormats();
  return {
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
          default: RENEW_WINDOW_RATIO,
        },
        shortLifetimeRatio: {
          doc: 'For short-lived certificates, renew when this fraction is left.',
          format: 'certpilot-ratio',
          default: SHORT_LIFETIME_RATIO,
        },
        shortLifetimeDays: {
          doc: 'Lifetimes under this many days count as short.',
          format: 'certpilot-int',
          min: 1,
          max: MAX_SHORT_LIFETIME_DAYS,
          default: SHORT_LIFETIME_DAYS,
        },
        maxOrdersPerWeek: {
          doc: 'Never order the same exact set of names more often than this in 7 days (alert instead).',
          format: 'certpilot-int',
          min: 1,
          max: 50,
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
        format: String,
        default: DEFAULT_DAEMON_LISTEN,
        env: 'CERTPILOT_DAEMON_LISTEN',
      },
    },
    dns: {
      resolvers: {
        doc: 'Recursive resolvers ("ip", "ip:port", "[v6]:port"); empty = the system resolvers.',
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
      providers: {
        doc: 'DNS provider instances by name: { <name>: { type, zones, ttl, ..., provider options } }.',
        // `Object` (not a named format) so convict assigns each instance whole instead of
        // merging into it; instances are validated in providers.ts.
        format: Object,
        default: {} as Record<string, unknown>,
      },
    },
    certificates: {
      doc: 'Certificates to keep renewed; validated element by element in certificates.ts.',
      format: 'certpilot-list',
      default: [] as unknown[],
    },
  };
}

export type ConfigSchema = ReturnType<typeof buildSchema>;

/** One leaf of the schema, flattened: its dotted path and declaration. */
export interface SchemaLeaf {
  readonly path: string;
  readonly doc: string;
  readonly default: unknown;
  readonly env?: string;
  readonly sensitive: boolean;
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
