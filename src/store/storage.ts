import { CertpilotError } from '../core/errors';

/**
 * The storage seam: a key-value store and a lock service that know nothing about certificates.
 * The certificate store, the scheduling state, the deploy state and the challenge journal are
 * written against these interfaces only; the file backend (src/store/file-storage.ts) is what
 * runs today, and a fleet backend (etcd) must be able to implement the same contracts.
 *
 * The contracts use MUST/SHOULD/MAY as in RFC 2119. test/store/conformance.ts checks them; a
 * backend is only a backend once it passes that suite.
 *
 * Keys
 *   - A key is a relative name of '/'-separated segments, e.g. "certs/www/versions/1/cert.pem".
 *   - Every segment MUST match KEY_SEGMENT: it starts with a letter, digit or '_' (never '.',
 *     which backends reserve for their own temp entries, and never "." or ".."), so a key can
 *     never escape the backend's root. Empty segments (leading, trailing or double '/') are
 *     invalid. Methods MUST reject an invalid key with STORE_IO before doing any I/O.
 *   - Keys form a tree: "a/b" is a child of the prefix "a". A key MAY at once hold a value and be
 *     a prefix only if the backend allows it; the file backend does not (a file is not a
 *     directory), so callers never rely on it.
 *
 * Errors: every failure is a CertpilotError. I/O failures are STORE_IO (retryable when the
 * condition may clear, e.g. ENOSPC), naming the key's location and the system error, never the
 * value. An aborted signal yields ABORTED (or TIMEOUT for a deadline) from core/errors.
 */

/** One segment of a key. See the module comment for why a leading '.' is not allowed. */
export const KEY_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._@+-]*$/;

/** Mode for values that are secrets (private keys, account keys, state): the default of put. */
export const SECRET_MODE = 0o600;
/** Mode for public values (certificates) that other services must read. */
export const PUBLIC_MODE = 0o644;

export interface CallOptions {
  /**
   * Every method MUST honour the signal: one that has already fired fails the call before any
   * change is made; one that fires during the call SHOULD end it early, and MUST NOT leave a
   * partly written value visible (a put either happened completely or not at all).
   */
  signal?: AbortSignal;
}

export interface PutOptions extends CallOptions {
  /**
   * Permission bits for backends that have them (file: the file's mode). Default SECRET_MODE:
   * forgetting to pass a mode MUST NOT make a secret readable by others. Backends without
   * permissions MAY ignore it. Containers a backend creates (directories) are 0700.
   */
  mode?: number;
  /**
   * A fenced write: the put MUST take effect only while this lock is held. A backend with
   * server-side fencing (etcd: a transaction comparing the lock key's revision) makes it
   * atomic with the write; the file backend checks the lock just before the rename, which is
   * as strong as a local lock file can be (a takeover needs the owner to be dead or its lease
   * expired). A lost lock fails with LOCKED and details.lost = true, and nothing is written.
   */
  lock?: LockHandle;
}

export interface KeyStat {
  key: string;
  /** Bytes of the value. */
  size: number;
  /** Last change of the value. */
  modified: Date;
}

export interface ListOptions extends CallOptions {
  /**
   * false (default): the direct children of the prefix (keys and sub-prefixes), as names
   * relative to it. true: every key below the prefix, relative to it.
   */
  recursive?: boolean;
}

export interface Storage {
  /**
   * Stores `value` under `key`, creating missing parents.
   * - MUST be atomic: a concurrent or later get sees the complete old value or the complete
   *   new one, never a mix or an empty value; after a crash or power loss the key holds one of
   *   the two.
   * - MUST be durable when it resolves (fsync or quorum write).
   * - Concurrent puts to one key MUST leave exactly one of the values, whole.
   * - With `lock`: see PutOptions.lock.
   */
  put(key: string, value: string | Uint8Array, opts?: PutOptions): Promise<void>;

  /**
   * The value of `key`, or null when it does not exist. MUST NOT return a partly written value.
   * Something other than a value in its place (a directory on the file backend) MUST be an
   * error, not null: the value is unknown, not absent.
   */
  get(key: string, opts?: CallOptions): Promise<Buffer | null>;

  /** Size and modification time of `key`, or null when it does not exist. */
  stat(key: string, opts?: CallOptions): Promise<KeyStat | null>;

  /**
   * Names under `prefix` ("" is the root), sorted. An absent prefix lists as []. MUST NOT list
   * the backend's own temp entries, and MUST NOT list a key whose put has not completed.
   */
  list(prefix: string, opts?: ListOptions): Promise<string[]>;

  /**
   * Deletes `key` and, when it is a prefix, every key under it (as certmagic's Delete does), so
   * a certificate version is removed in one call. Deleting an absent key MUST succeed. With
   * `lock`, fenced as for put.
   */
  delete(key: string, opts?: CallOptions & { lock?: LockHandle }): Promise<void>;

  /**
   * Where `key` lives, for messages and for programs that read it directly (the file backend:
   * an absolute path that nginx can be given). MUST be stable for a given key.
   */
  locate(key: string): string;

  /** The key at a location returned by `locate`, or null when it is not one of this backend's. */
  keyAt(location: string): string | null;

  /**
   * Removes debris a crashed writer left under `prefix` (the file backend: temp files). The
   * caller MUST hold the lock that covers the prefix. Backends whose writes leave none MAY make
   * it a no-op.
   */
  sweep(prefix: string, opts?: CallOptions): Promise<void>;
}

/**
 * Optional capability: pointer keys, for the one value that makes a certificate version live.
 *
 * A pointer key names another key or prefix. Setting it MUST be atomic like put. A backend
 * that has this capability MUST also resolve pointers inside keys on get/stat/list, so that
 * "certs/www/current/cert.pem" reads through the pointer "certs/www/current"; that is what lets
 * a reader that resolves the pointer once see one whole version while a new one is swapped in.
 *
 * Why a capability and not plain data: on the file backend the pointer must be a symlink,
 * because nginx and every other server read <stateDir>/certs/<name>/fullchain.pem directly and
 * only a rename of a symlink switches all four files at once for them. A backend nobody reads
 * directly (etcd) has no such readers, stores the pointer as an ordinary key holding the target
 * key, and the certificate store falls back to that (see readPointer/writePointer below).
 */
export interface PointerStorage extends Storage {
  /** Makes `key` point at `target` (a key or prefix), atomically and durably. */
  setPointer(key: string, target: string, opts?: PutOptions): Promise<void>;
  /** The target of pointer `key`, or null when it does not exist. STORE_IO when `key` is not a pointer. */
  getPointer(key: string, opts?: CallOptions): Promise<string | null>;
}

/** Run-time detection of the pointer capability. */
export function supportsPointers(storage: Storage): storage is PointerStorage {
  const s = storage as Partial<PointerStorage>;
  return typeof s.setPointer === 'function' && typeof s.getPointer === 'function';
}

/** Reads a pointer, natively or (backends without the capability) as a key holding the target. */
export async function readPointer(storage: Storage, key: string, opts?: CallOptions): Promise<string | null> {
  if (supportsPointers(storage)) return storage.getPointer(key, opts);
  const value = await storage.get(key, opts);
  return value === null ? null : value.toString('utf8').trim();
}

/** Writes a pointer, natively or as a key holding the target. */
export async function writePointer(
  storage: Storage,
  key: string,
  target: string,
  opts?: PutOptions,
): Promise<void> {
  assertKey(target, true);
  if (supportsPointers(storage)) return storage.setPointer(key, target, opts);
  return storage.put(key, `${target}\n`, opts);
}

export interface LockOwner {
  pid: number;
  hostname: string;
  /** When the lock was taken (ISO 8601). */
  startedAt: string;
  /** Linux: the owner's start time in clock ticks since boot, to detect pid reuse. */
  procStart?: string;
  /** Random, identifies this acquisition. */
  nonce: string;
  /** Free text for messages, e.g. "daemon" or "renew". */
  purpose?: string;
  /** When the lease runs out unless renewed (ISO 8601); absent: held while the owner lives. */
  expiresAt?: string;
}

/**
 * A held lock.
 *
 * - `token` identifies this acquisition and is the fencing token: a backend that fences on the
 *   server compares it (etcd: the lock key's create revision, which only grows); passing the
 *   handle as PutOptions.lock is how a write is made conditional on it.
 * - `signal` MUST fire (with a LOCKED error as reason, details.lost = true) once the holder
 *   knows the lock is lost: the lease ran out without renewal, renew() or check() found it
 *   taken over or gone, or it was released. Work done under the lock SHOULD pass this signal
 *   (combined with its own) to every long call, so it stops instead of writing as a non-holder.
 */
export interface LockHandle {
  readonly name: string;
  readonly token: string;
  readonly owner: LockOwner;
  readonly signal: AbortSignal;
  /** Extends the lease by its length. MUST throw LOCKED (details.lost) and fire `signal` when lost. */
  renew(opts?: CallOptions): Promise<void>;
  /** Resolves when the lock is still held; otherwise fires `signal` and throws LOCKED (details.lost). */
  check(opts?: CallOptions): Promise<void>;
  /** Gives the lock up if still held, then fires `signal`. MUST be safe to call twice. */
  release(): Promise<void>;
}

export interface AcquireOptions extends CallOptions {
  /** false: resolve null at once when another holder has it. true: wait until it is free. */
  wait: boolean;
  /** With `wait`: give up after this long with LOCKED (default: wait until `signal`). */
  timeoutMs?: number;
  /**
   * Lease length. A lock whose lease ran out without renewal MAY be taken over by another
   * acquirer even when its holder is alive, and its holder's `signal` fires. Absent: the file
   * backend holds the lock while the owner process lives (a fleet backend MUST require a lease,
   * since it cannot see other hosts' processes).
   */
  leaseMs?: number;
  /** Renew the lease automatically (every third of it) until released or lost. */
  keepAlive?: boolean;
  purpose?: string;
  /** Called each time the lock is found held, before waiting (to log "waiting for ..."). */
  onBusy?: (holder: LockOwner | undefined) => void;
  /** Tests only: how often a waiting acquirer looks again where there is no event to wait on. */
  pollIntervalMs?: number;
}

/**
 * Mutual exclusion by name. At most one holder per name at any time, across processes (and,
 * for a fleet backend, hosts). Names follow KEY_SEGMENT.
 */
export interface Locker {
  /** Acquires `name`; null when `wait` is false and it is held. See AcquireOptions. */
  acquire(name: string, opts: AcquireOptions): Promise<LockHandle | null>;
  /** The current holder of `name`, or null (for status output and messages). */
  holder(name: string, opts?: CallOptions): Promise<LockOwner | null>;
}

/** The error of a lost lock: what LockHandle.signal fires with and fenced writes throw. */
export function lockLostError(name: string, why: string): CertpilotError {
  return new CertpilotError('LOCKED', `lock: "${name}" was lost (${why})`, {
    retryable: true,
    details: { lock: name, lost: true },
  });
}

/** Throws STORE_IO unless `key` is a valid key ("" only where `allowRoot`). */
export function assertKey(key: string, allowRoot = false): void {
  if (key === '' && allowRoot) return;
  if (typeof key !== 'string' || !key.split('/').every((s) => KEY_SEGMENT.test(s))) {
    throw new CertpilotError('STORE_IO', `store: invalid key "${String(key)}"`);
  }
}

/** Joins key segments with '/', skipping empty ones (so joinKey("", "a") is "a"). */
export function joinKey(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}
