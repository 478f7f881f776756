import { isPlainObject, childPath, describeType, type IssueList } from './issues';
import { parseAbsolutePath, parseCredentialUrl, parseDuration, parseNonEmptyString } from './formats';
import type { LeafValues } from './schema';
import type { EtcdSettings, StorageSettings } from './types';

/** The `storage:` section: schema leaves, plus the `storage.etcd` mapping parsed here. */
export function parseStorage(values: LeafValues, issues?: IssueList): StorageSettings {
  const backend = values.get('storage.backend') ?? 'file';
  const base = {
    stateDir: values.get('storage.stateDir') ?? '',
    archiveDepth: values.get('storage.archiveDepth') ?? 0,
  };
  if (backend !== 'file' && backend !== 'etcd') {
    issues?.add('storage.backend', `must be "file" or "etcd", not ${JSON.stringify(backend)}`);
    return base;
  }
  // The default is left out, so a file-backed configuration reads as it always did.
  if (backend === 'file') return base;
  const etcd = parseEtcd(values.get('storage.etcd') ?? {}, 'storage.etcd', issues);
  return { ...base, backend, ...(etcd ? { etcd } : {}) };
}

/** Option of `storage.etcd` -> one-line description (for messages and the configuration reference). */
export const ETCD_OPTIONS: Readonly<Record<string, string>> = {
  endpoints: 'Client URLs of the etcd members: https://, or http:// to this host only.',
  prefix:
    'Prefix of every key certpilot writes (default "/certpilot/"); fleets sharing a cluster use their own.',
  caFile: 'PEM file of the CA that signed the members’ certificates (absolute path).',
  certFile: 'Client certificate (PEM) for members that require one (--client-cert-auth); needs keyFile.',
  keyFile: 'Private key of certFile (absolute path, mode 0600 or stricter).',
  user: 'etcd user (when the cluster has auth enabled); needs password_file.',
  password_file: 'File holding the etcd user’s password (absolute path, mode 0600 or stricter).',
  encryptionKeys:
    'Keys sealing secrets (AES-256-GCM): [{ id, file }], file = 32 random bytes as base64 (openssl rand -base64 32), mode 0600. The first seals new values; all open old ones.',
  requestTimeout: 'Longest wait for one member before trying the next (default 5s).',
  retryFor: 'How long one operation keeps trying the members before failing as unavailable (default 15s).',
  lockLease:
    'Lease of a certificate lock (default 15s, at least 2s): a holder that dies or is cut off loses the lock this long after its last keep-alive.',
};

const DEFAULT_PREFIX = '/certpilot/';
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_RETRY_FOR_MS = 15_000;
const DEFAULT_LOCK_LEASE_MS = 15_000;
/** etcd refuses leases shorter than about 3/2 of its election timeout; 2 s is the least it grants. */
const MIN_LOCK_LEASE_MS = 2_000;
const KEY_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

function parseEtcd(raw: unknown, at: string, issues?: IssueList): EtcdSettings | undefined {
  if (!isPlainObject(raw)) {
    issues?.add(at, `must be a mapping, not ${describeType(raw)}`);
    return undefined;
  }
  const bad = (key: string, message: string): undefined => {
    issues?.add(childPath(at, key), message);
    return undefined;
  };
  const field = <T>(key: string, parse: (v: unknown) => T): T | undefined => {
    if (raw[key] === undefined || raw[key] === null) return undefined;
    try {
      return parse(raw[key]);
    } catch (e) {
      return bad(key, (e as Error).message);
    }
  };
  for (const key of Object.keys(raw)) if (!(key in ETCD_OPTIONS)) bad(key, 'unknown option');
  const endpoints = field('endpoints', (v) => {
    if (!Array.isArray(v) || v.length === 0) throw new Error('must be a non-empty list of URLs');
    return v.map((e) => parseCredentialUrl(e).replace(/\/+$/, ''));
  });
  if (raw.endpoints === undefined) bad('endpoints', 'is required with storage.backend: etcd');
  const prefix = field('prefix', (v) => {
    const s = parseNonEmptyString(v).trim();
    if (!s.startsWith('/') || /\s/.test(s)) throw new Error('must start with "/" and contain no spaces');
    return s.endsWith('/') ? s : `${s}/`;
  });
  const files = Object.fromEntries(
    ['caFile', 'certFile', 'keyFile', 'password_file'].map((k) => [k, field(k, parseAbsolutePath)]),
  );
  const user = field('user', (v) => parseNonEmptyString(v).trim());
  if ((files.certFile === undefined) !== (files.keyFile === undefined))
    bad('keyFile', 'certFile and keyFile go together');
  if ((user === undefined) !== (files.password_file === undefined))
    bad('password_file', 'user and password_file go together');
  const encryptionKeys = field('encryptionKeys', parseEncryptionKeys) ?? [];
  if (raw.encryptionKeys === undefined)
    bad('encryptionKeys', 'is required: private keys are sealed before they are written to etcd');
  const requestTimeoutMs = field('requestTimeout', parseDuration) ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const retryForMs = field('retryFor', parseDuration) ?? DEFAULT_RETRY_FOR_MS;
  const lockLeaseMs =
    field('lockLease', (v) => {
      const ms = parseDuration(v);
      if (ms < MIN_LOCK_LEASE_MS) throw new Error('must be at least 2s (etcd grants no shorter lease)');
      return ms;
    }) ?? DEFAULT_LOCK_LEASE_MS;
  if (!endpoints) return undefined;
  return {
    endpoints,
    prefix: prefix ?? DEFAULT_PREFIX,
    ...(files.caFile ? { caFile: files.caFile } : {}),
    ...(files.certFile && files.keyFile ? { certFile: files.certFile, keyFile: files.keyFile } : {}),
    ...(user && files.password_file ? { user, passwordFile: files.password_file } : {}),
    encryptionKeys,
    requestTimeoutMs,
    retryForMs,
    lockLeaseMs,
  };
}

function parseEncryptionKeys(v: unknown): { id: string; file: string }[] {
  if (!Array.isArray(v) || v.length === 0) throw new Error('must be a non-empty list of { id, file }');
  const seen = new Set<string>();
  return v.map((entry: unknown, i) => {
    if (!isPlainObject(entry) || typeof entry.id !== 'string' || typeof entry.file !== 'string')
      throw new Error(`[${i}] must be { id, file }`);
    if (!KEY_ID.test(entry.id)) throw new Error(`[${i}].id must be a short name (letters, digits, . _ -)`);
    if (seen.has(entry.id)) throw new Error(`[${i}].id "${entry.id}" appears twice`);
    seen.add(entry.id);
    return { id: entry.id, file: parseAbsolutePath(entry.file) };
  });
}
