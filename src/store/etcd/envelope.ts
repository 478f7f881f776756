import crypto from 'node:crypto';
import { CertpilotError } from '../../core/errors';

/**
 * How a value is stored in etcd: a small header, then the value, in clear or sealed with
 * AES-256-GCM.
 *
 *   "CPV1" | flags (1 byte: 0 clear, 1 AES-256-GCM) | modified (6 bytes, ms since 1970, BE)
 *   clear:  | value
 *   sealed: | key id length (1) | key id (UTF-8) | iv (12) | tag (16) | ciphertext
 *
 * Why a header: etcd keeps no modification time (stat needs one), and a sealed value must name
 * the key that sealed it so keys can be rotated: new writes use the current key, old values
 * stay readable with any key still configured. The additional authenticated data is the
 * storage key plus the header, so a sealed value copied under another key, or with its header
 * edited, fails to open instead of being read as the other key's value.
 *
 * Values without the header (written by hand with etcdctl) read as clear values with an
 * unknown (epoch) modification time.
 */

const MAGIC = Buffer.from('CPV1', 'ascii');
const CLEAR = 0;
const AES_256_GCM = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;
/** Key ids are short names: they are stored beside every sealed value. */
export const KEY_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

export interface DataKey {
  readonly id: string;
  readonly key: Buffer;
}

/** The data keys of this node: `current` seals new values; all of them open old ones. */
export interface Keyring {
  readonly current?: DataKey;
  readonly byId: ReadonlyMap<string, DataKey>;
}

export function makeKeyring(keys: readonly DataKey[]): Keyring {
  for (const k of keys) {
    if (!KEY_ID.test(k.id)) throw new CertpilotError('STORE_IO', `etcd: invalid encryption key id "${k.id}"`);
    if (k.key.length !== DATA_KEY_BYTES)
      throw new CertpilotError('STORE_IO', `etcd: encryption key "${k.id}" is not ${DATA_KEY_BYTES} bytes`);
  }
  return { ...(keys[0] ? { current: keys[0] } : {}), byId: new Map(keys.map((k) => [k.id, k])) };
}

/** A data key from a key file's text: 32 bytes as base64 (`openssl rand -base64 32`) or 64 hex digits. */
export function parseDataKey(id: string, text: string): DataKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== DATA_KEY_BYTES || (!/^[0-9a-fA-F]{64}$/.test(t) && key.toString('base64') !== t)) {
    throw new CertpilotError(
      'STORE_IO',
      `etcd: encryption key "${id}" must be 32 random bytes as base64 (openssl rand -base64 32) or 64 hex digits`,
    );
  }
  return { id, key };
}

export interface Opened {
  value: Buffer;
  modified: Date;
  /** Bytes of the value, known without opening it (GCM ciphertext is as long as the text). */
  size: number;
  sealedWith?: string;
}

function header(flags: number, modified: number): Buffer {
  const h = Buffer.alloc(MAGIC.length + 7);
  MAGIC.copy(h, 0);
  h[MAGIC.length] = flags;
  h.writeUIntBE(Math.max(0, Math.floor(modified)), MAGIC.length + 1, 6);
  return h;
}

/** The stored form of `value` under `storageKey`: sealed with `key` when given, else clear. */
export function seal(storageKey: string, value: Buffer, modified: number, key?: DataKey): Buffer {
  if (!key) return Buffer.concat([header(CLEAR, modified), value]);
  const id = Buffer.from(key.id, 'utf8');
  const iv = crypto.randomBytes(IV_BYTES);
  const head = Buffer.concat([header(AES_256_GCM, modified), Buffer.from([id.length]), id, iv]);
  const cipher = crypto.createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(Buffer.concat([Buffer.from(storageKey, 'utf8'), head]));
  const body = Buffer.concat([cipher.update(value), cipher.final()]);
  return Buffer.concat([head, cipher.getAuthTag(), body]);
}

/** Parses the header; `open` then decrypts. Exposed apart so stat needs no key. */
function parse(stored: Buffer): {
  flags: number;
  modified: Date;
  head: Buffer;
  keyId?: string;
  tag?: Buffer;
  body: Buffer;
} {
  if (stored.length < MAGIC.length + 7 || !stored.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { flags: CLEAR, modified: new Date(0), head: Buffer.alloc(0), body: stored };
  }
  const flags = stored[MAGIC.length]!;
  const modified = new Date(stored.readUIntBE(MAGIC.length + 1, 6));
  let at = MAGIC.length + 7;
  if (flags === CLEAR) return { flags, modified, head: stored.subarray(0, at), body: stored.subarray(at) };
  if (flags !== AES_256_GCM) throw new CertpilotError('STORE_IO', `etcd: unknown value format ${flags}`);
  const idLen = stored[at]!;
  const keyId = stored.subarray(at + 1, at + 1 + idLen).toString('utf8');
  at += 1 + idLen + IV_BYTES;
  const head = stored.subarray(0, at);
  const tag = stored.subarray(at, at + TAG_BYTES);
  if (tag.length !== TAG_BYTES) throw new CertpilotError('STORE_IO', 'etcd: truncated sealed value');
  return { flags, modified, head, keyId, tag, body: stored.subarray(at + TAG_BYTES) };
}

/** Size and modification time of a stored value, without opening it. */
export function describe(stored: Buffer): { size: number; modified: Date } {
  const p = parse(stored);
  return { size: p.body.length, modified: p.modified };
}

/** True when a stored value is sealed (a secret), known without opening it. */
export function isSealed(stored: Buffer): boolean {
  return parse(stored).flags !== CLEAR;
}

/**
 * The value stored under `storageKey`. A sealed value whose key this node does not have, or
 * that fails authentication, is STORE_IO naming the key id (never key material or the value).
 */
export function open(storageKey: string, stored: Buffer, keyring: Keyring): Opened {
  const p = parse(stored);
  if (p.flags === CLEAR) return { value: p.body, modified: p.modified, size: p.body.length };
  const key = keyring.byId.get(p.keyId!);
  if (!key) {
    throw new CertpilotError(
      'STORE_IO',
      `store: "${storageKey}" is encrypted with key "${p.keyId}", which this node does not have (storage.etcd.encryptionKeys)`,
      { details: { key: storageKey, keyId: p.keyId, encrypted: true } },
    );
  }
  try {
    const decipher = crypto.createDecipheriv(
      'aes-256-gcm',
      key.key,
      p.head.subarray(p.head.length - IV_BYTES),
    );
    decipher.setAAD(Buffer.concat([Buffer.from(storageKey, 'utf8'), p.head]));
    decipher.setAuthTag(p.tag!);
    const value = Buffer.concat([decipher.update(p.body), decipher.final()]);
    return { value, modified: p.modified, size: value.length, sealedWith: key.id };
  } catch (err) {
    throw new CertpilotError(
      'STORE_IO',
      `store: "${storageKey}" does not open with key "${key.id}" (wrong key material, or the value was altered)`,
      { cause: err, details: { key: storageKey, keyId: key.id, encrypted: true } },
    );
  }
}
