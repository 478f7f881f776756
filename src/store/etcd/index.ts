import { readFile } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { readSecretFile } from '../../config/secrets';
import type { EtcdSettings } from '../../config/types';
import { CertpilotError } from '../../core/errors';
import { EtcdClient, type EtcdTls } from './client';
import { makeKeyring, parseDataKey, type Keyring } from './envelope';
import { EtcdLocker } from './locker';
import { EtcdStorage } from './storage';

export { EtcdClient } from './client';
export { EtcdLocker } from './locker';
export { EtcdStorage } from './storage';

/** The etcd backend of one process: storage and locker over one client. */
export interface EtcdBackend {
  readonly storage: EtcdStorage;
  readonly locker: EtcdLocker;
  readonly client: EtcdClient;
  /** Closes the connections (held locks should be released first). */
  close(): void;
}

/**
 * The backend from `storage.etcd`; `opts.lookup` resolves the endpoints' host names (the
 * composition root passes dns.resolvers' lookup). Synchronous: secret files (TLS key, password, data keys)
 * are read on first use, with the same checks as every secret file (absolute, 0600, not
 * empty), so a wrong file is an error of the first operation that names the file and never
 * its content.
 */
export function createEtcdBackend(
  settings: EtcdSettings,
  opts: { lookup?: LookupFunction } = {},
): EtcdBackend {
  const client = new EtcdClient({
    endpoints: settings.endpoints,
    requestTimeoutMs: settings.requestTimeoutMs,
    retryForMs: settings.retryForMs,
    credentials: () => loadCredentials(settings),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
  });
  const storage = new EtcdStorage(client, settings.prefix, () => loadKeyring(settings));
  const locker = new EtcdLocker(client, settings.prefix, settings.lockLeaseMs);
  return { storage, locker, client, close: () => client.close() };
}

async function secret(file: string, what: string): Promise<string> {
  const r = await readSecretFile(file);
  if (!r.ok) throw new CertpilotError('STORE_IO', `etcd: ${what}: ${r.message}`);
  return r.value;
}

async function publicFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CertpilotError('STORE_IO', `etcd: ${what}: cannot read ${file} (${code})`, { cause: err });
  }
}

async function loadCredentials(
  s: EtcdSettings,
): Promise<{ tls?: EtcdTls; auth?: { user: string; password: string } }> {
  const tls: EtcdTls = {};
  if (s.caFile) tls.ca = await publicFile(s.caFile, 'caFile');
  if (s.certFile && s.keyFile) {
    tls.cert = await publicFile(s.certFile, 'certFile');
    tls.key = `${await secret(s.keyFile, 'keyFile')}\n`;
  }
  const auth =
    s.user && s.passwordFile
      ? { user: s.user, password: await secret(s.passwordFile, 'password_file') }
      : undefined;
  return { tls, ...(auth ? { auth } : {}) };
}

async function loadKeyring(s: EtcdSettings): Promise<Keyring> {
  const keys = [];
  for (const k of s.encryptionKeys)
    keys.push(parseDataKey(k.id, await secret(k.file, `encryption key "${k.id}"`)));
  return makeKeyring(keys);
}
