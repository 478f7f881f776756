import { throwIfAborted } from '../../core/abort';
import { CertpilotError } from '../../core/errors';
import {
  KEY_SEGMENT,
  assertKey,
  lockLostError,
  type CallOptions,
  type KeyStat,
  type ListOptions,
  type LockHandle,
  type PutOptions,
  type Storage,
} from '../storage';
import {
  b64,
  prefixEnd,
  type Compare,
  type EtcdClient,
  type RangeResponse,
  type RequestOp,
  type TxnResponse,
} from './client';
import { describe, isSealed, open, seal, type Keyring } from './envelope';
import { fenceOf } from './locker';

/**
 * The etcd backend of Storage (contracts in ../storage.ts). A key is the etcd key
 * `<prefix><key>`; a prefix is every etcd key below `<prefix><key>/`.
 *
 * - Every put is one etcd write (a transaction when fenced): atomic and, once answered,
 *   committed by a quorum. No temp entries exist, so sweep has nothing to do.
 * - delete of a prefix is one transaction deleting the key and its range: readers see all of
 *   it or none of it gone.
 * - Secrets: a put whose mode grants nothing to group and others (the default, SECRET_MODE:
 *   private keys, account keys, state) is sealed with AES-256-GCM before it leaves the
 *   process (./envelope.ts); public values (certificates, PUBLIC_MODE) are stored in clear.
 *   Without an encryption key configured, a secret put fails: nothing secret is ever written
 *   to the cluster in clear.
 * - Fencing (PutOptions.lock) with a lock of EtcdLocker is on the server: the write is a
 *   transaction that compares the lock key's create_revision with the handle's token, so it
 *   happens only while that acquisition still holds the lock.
 * - No pointer capability: nothing reads etcd directly, so `current` is a plain key holding
 *   the target (readPointer/writePointer in ../storage.ts).
 * - Lock keys live under `<prefix>.locks/`; '.' starts no key segment, so list never shows them.
 */
export class EtcdStorage implements Storage {
  private readonly lockPrefix: string;
  private readonly loadKeyring: () => Promise<Keyring>;
  private keyring?: Promise<Keyring>;

  /** `keyring` may be a loader: key files are read on first use, and again after a failure. */
  constructor(
    private readonly client: EtcdClient,
    /** Ends with '/'. */
    readonly prefix: string,
    keyring: Keyring | (() => Promise<Keyring>),
  ) {
    this.lockPrefix = `${prefix}.locks/`;
    this.loadKeyring = typeof keyring === 'function' ? keyring : () => Promise.resolve(keyring);
  }

  private keys(): Promise<Keyring> {
    const pending = (this.keyring ??= this.loadKeyring());
    pending.catch(() => {
      if (this.keyring === pending) this.keyring = undefined;
    });
    return pending;
  }

  locate(key: string): string {
    assertKey(key, true);
    return `etcd:${this.prefix}${key}`;
  }

  keyAt(location: string): string | null {
    const head = `etcd:${this.prefix}`;
    if (!location.startsWith(head)) return null;
    const key = location.slice(head.length);
    if (key === '') return '';
    return key.split('/').every((s) => KEY_SEGMENT.test(s)) ? key : null;
  }

  async put(key: string, value: string | Uint8Array, opts: PutOptions = {}): Promise<void> {
    assertKey(key);
    throwIfAborted(opts.signal, 'store');
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    const secret = ((opts.mode ?? 0o600) & 0o077) === 0;
    const keyring = await this.keys();
    if (secret && !keyring.current) {
      throw new CertpilotError(
        'STORE_IO',
        `store: cannot store secret "${key}" in etcd: no encryption key (storage.etcd.encryptionKeys)`,
      );
    }
    const stored = seal(key, data, Date.now(), secret ? keyring.current : undefined);
    const op: RequestOp = { request_put: { key: b64(this.prefix + key), value: stored.toString('base64') } };
    await this.write(key, [op], opts);
  }

  async get(key: string, opts: CallOptions = {}): Promise<Buffer | null> {
    const stored = await this.fetch(key, opts);
    return stored === null ? null : open(key, stored, await this.keys()).value;
  }

  async stat(key: string, opts: CallOptions = {}): Promise<KeyStat | null> {
    const stored = await this.fetch(key, opts);
    return stored === null ? null : { key, ...describe(stored) };
  }

  /**
   * Whether `key` holds a secret (stored sealed), or null when it does not exist: what a copy
   * to another backend needs to give the value its mode back (`storage migrate`).
   */
  async sealed(key: string, opts: CallOptions = {}): Promise<boolean | null> {
    const stored = await this.fetch(key, opts);
    return stored === null ? null : isSealed(stored);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<string[]> {
    assertKey(prefix, true);
    throwIfAborted(opts.signal, 'store');
    const from = prefix === '' ? this.prefix : `${this.prefix}${prefix}/`;
    const res = await this.client.call<RangeResponse>(
      '/v3/kv/range',
      { key: b64(from), range_end: b64(prefixEnd(from)), keys_only: true },
      opts.signal,
    );
    const names = new Set<string>();
    for (const kv of res.kvs ?? []) {
      const rel = Buffer.from(kv.key, 'base64').toString('utf8').slice(from.length);
      const parts = rel.split('/');
      // Lock keys and anything written by hand that no key could name are not keys.
      if (!parts.every((s) => KEY_SEGMENT.test(s))) continue;
      names.add(opts.recursive ? rel : parts[0]!);
    }
    return [...names].sort();
  }

  async delete(key: string, opts: CallOptions & { lock?: LockHandle } = {}): Promise<void> {
    assertKey(key);
    throwIfAborted(opts.signal, 'store');
    const below = `${this.prefix}${key}/`;
    await this.write(
      key,
      [
        { request_delete_range: { key: b64(this.prefix + key) } },
        { request_delete_range: { key: b64(below), range_end: b64(prefixEnd(below)) } },
      ],
      opts,
    );
  }

  async sweep(prefix: string, opts: CallOptions = {}): Promise<void> {
    assertKey(prefix, true);
    throwIfAborted(opts.signal, 'store');
  }

  private async fetch(key: string, opts: CallOptions): Promise<Buffer | null> {
    assertKey(key);
    throwIfAborted(opts.signal, 'store');
    const res = await this.client.call<RangeResponse>(
      '/v3/kv/range',
      { key: b64(this.prefix + key) },
      opts.signal,
    );
    const kv = res.kvs?.[0];
    return kv ? Buffer.from(kv.value ?? '', 'base64') : null;
  }

  /** `ops` in one transaction, conditional on `opts.lock` when given (see the class comment). */
  private async write(
    key: string,
    ops: RequestOp[],
    opts: CallOptions & { lock?: LockHandle },
  ): Promise<void> {
    const compare: Compare[] = [];
    const lock = opts.lock;
    if (lock) {
      if (lock.signal.aborted) throw lock.signal.reason as Error;
      const fence = fenceOf(lock, this.lockPrefix);
      if (fence) {
        compare.push({
          key: b64(fence.key),
          target: 'CREATE',
          result: 'EQUAL',
          create_revision: fence.createRevision,
        });
      } else {
        // Not a lock of this cluster: as strong as that lock's own check can be.
        await lock.check({ signal: opts.signal });
      }
    }
    throwIfAborted(opts.signal, 'store');
    const res = await this.client.call<TxnResponse>('/v3/kv/txn', { compare, success: ops }, opts.signal);
    if (res.succeeded) return;
    // The lock key is gone or belongs to a newer acquisition: tell the handle, write nothing.
    await lock?.check({ signal: opts.signal });
    throw lockLostError(lock?.name ?? key, 'taken over or removed');
  }
}
