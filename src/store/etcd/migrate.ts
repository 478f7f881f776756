import { lstat } from 'node:fs/promises';
import { throwIfAborted } from '../../core/abort';
import { CertpilotError } from '../../core/errors';
import type { FileStorage } from '../file-storage';
import {
  PUBLIC_MODE,
  SECRET_MODE,
  readPointer,
  supportsPointers,
  writePointer,
  type LockHandle,
  type Locker,
  type Storage,
} from '../storage';
import type { EtcdStorage } from './storage';

/**
 * `certpilot storage migrate`: copies what the certificate store, the scheduling state and the
 * challenge journal keep (the keys under MIGRATED_PREFIXES) from one backend to another, file
 * to etcd or back. The source is only read.
 *
 * - The unit is a certificate: its versions, archive, state and journal, under its lock on both
 *   sides (a running renew or daemon makes it "busy", not half copied). A certificate whose
 *   destination already holds other content (another host migrated it, or the fleet renewed
 *   it) is a conflict and is not copied at all: overwriting would replace the fleet's live
 *   version with this host's.
 * - Idempotent: a key the destination already holds with the same content is left alone, so a
 *   second run copies nothing and an interrupted run is finished by the next.
 * - Values keep their secrecy: a file's mode on the file side, sealed or clear on the etcd
 *   side, decide the mode written (so private keys and state are sealed in etcd, 0600 on disk).
 * - `certs/<name>/current` (the live version) is a pointer: a symlink on disk, a key holding the
 *   target in etcd. It is written last, after the version it names, and read back like every
 *   other key before the certificate counts as copied. The file backend's stable links
 *   (`certs/<name>/fullchain.pem` -> `current/fullchain.pem`) exist only for programs that read
 *   the files: they are not copied to etcd and are made again when copying to files.
 * - Not copied: the ACME account (kept per host, see docs/fleet.md), deploy state (what this
 *   host deployed) and the CA directory cache.
 */
export const MIGRATED_PREFIXES = ['certs', 'archive', 'state', 'journal'] as const;

/** One side of a migration: a backend and what it can tell about a key beyond its value. */
export interface MigrationSide {
  readonly storage: Storage;
  readonly locker?: Locker;
  /** A pointer (with its target), a value (with the mode it must keep), or 'skip'. */
  kindOf(key: string): Promise<KeyKind>;
}

export type KeyKind = { pointer: string } | { mode: number } | 'skip';

const CURRENT = /^certs\/[^/]+\/current$/;
const STABLE_FILES = ['privkey.pem', 'cert.pem', 'chain.pem', 'fullchain.pem'];

/** The file backend as a side: symlinks are pointers, the mode is the file's. */
export function fileSide(storage: FileStorage, locker?: Locker): MigrationSide {
  return {
    storage,
    ...(locker ? { locker } : {}),
    async kindOf(key) {
      const st = await lstat(storage.locate(key));
      if (!st.isSymbolicLink()) return { mode: st.mode & 0o777 };
      if (!CURRENT.test(key)) return 'skip';
      const target = await storage.getPointer(key);
      return target === null ? 'skip' : { pointer: target };
    },
  };
}

/** The etcd backend as a side: `current` keys are pointers, sealed values are secrets. */
export function etcdSide(storage: EtcdStorage, locker?: Locker): MigrationSide {
  return {
    storage,
    ...(locker ? { locker } : {}),
    async kindOf(key) {
      if (CURRENT.test(key)) {
        const target = await readPointer(storage, key);
        return target === null ? 'skip' : { pointer: target };
      }
      const sealed = await storage.sealed(key);
      if (sealed === null) return 'skip';
      return { mode: sealed ? SECRET_MODE : PUBLIC_MODE };
    },
  };
}

export interface CertificateMigration {
  name: string;
  status: 'copied' | 'unchanged' | 'would-copy' | 'conflict' | 'busy';
  /** Keys written (or, in a dry run, to be written). */
  keys: string[];
  /** Why a conflict or busy certificate was not copied. */
  reason?: string;
}

export interface MigrateOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** The certificate a migrated key belongs to. */
function certificateOf(key: string): string {
  const [prefix, second = ''] = key.split('/');
  // state/<name>.json, and what a damaged one was moved aside to (state/<name>.json.<suffix>).
  return prefix === 'state' || prefix === 'journal' ? second.split('.json')[0]! : second;
}

/** Every migrated key of the source, grouped by certificate, names sorted. */
async function keysByCertificate(from: Storage, signal?: AbortSignal): Promise<Map<string, string[]>> {
  const groups = new Map<string, string[]>();
  for (const prefix of MIGRATED_PREFIXES) {
    for (const rel of await from.list(prefix, { recursive: true, ...(signal ? { signal } : {}) })) {
      const key = `${prefix}/${rel}`;
      const name = certificateOf(key);
      groups.set(name, [...(groups.get(name) ?? []), key]);
    }
  }
  return new Map([...groups].sort(([a], [b]) => a.localeCompare(b)));
}

interface Planned {
  key: string;
  kind: Exclude<KeyKind, 'skip'>;
  value?: Buffer;
}

/** Copies every certificate of `from` to `to` (see the module comment). */
export async function migrateStore(
  from: MigrationSide,
  to: MigrationSide,
  opts: MigrateOptions = {},
): Promise<CertificateMigration[]> {
  const results: CertificateMigration[] = [];
  for (const [name, keys] of await keysByCertificate(from.storage, opts.signal)) {
    throwIfAborted(opts.signal, 'storage migrate');
    // A dry run only reads: taking a lock would be a write.
    const one = (lock?: LockHandle): Promise<CertificateMigration> =>
      migrateOne(from, to, name, keys, lock, opts);
    results.push(opts.dryRun ? await one() : await underLocks(from, to, name, opts, one));
  }
  return results;
}

/** Runs `fn` holding `name`'s lock on both sides (where a side has a locker); busy when either is held. */
async function underLocks(
  from: MigrationSide,
  to: MigrationSide,
  name: string,
  opts: MigrateOptions,
  fn: (toLock?: LockHandle) => Promise<CertificateMigration>,
): Promise<CertificateMigration> {
  const held: LockHandle[] = [];
  const take = async (locker?: Locker): Promise<LockHandle | undefined | null> => {
    if (!locker) return undefined;
    const lock = await locker.acquire(name, {
      wait: false,
      purpose: 'migrate',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (lock) held.push(lock);
    return lock;
  };
  const busy: CertificateMigration = {
    name,
    status: 'busy',
    keys: [],
    reason: 'a running certpilot holds its lock',
  };
  try {
    if ((await take(from.locker)) === null) return busy;
    const toLock = await take(to.locker);
    if (toLock === null) return busy;
    return await fn(toLock);
  } finally {
    for (const lock of held) await lock.release();
  }
}

async function migrateOne(
  from: MigrationSide,
  to: MigrationSide,
  name: string,
  keys: readonly string[],
  lock: LockHandle | undefined,
  opts: MigrateOptions,
): Promise<CertificateMigration> {
  const todo: Planned[] = [];
  for (const key of keys) {
    const kind = await from.kindOf(key);
    if (kind === 'skip') continue;
    if ('pointer' in kind) {
      const there = await readPointer(to.storage, key);
      if (there === kind.pointer) continue;
      if (there !== null) return conflict(name, key);
      todo.push({ key, kind });
      continue;
    }
    const value = await from.storage.get(key);
    if (value === null) continue;
    const there = await to.storage.get(key);
    if (there !== null && there.equals(value)) continue;
    if (there !== null) return conflict(name, key);
    todo.push({ key, kind, value });
  }
  // Pointers last: `current` never names a version that is not there yet.
  todo.sort((a, b) => Number('pointer' in a.kind) - Number('pointer' in b.kind));
  const written = todo.map((t) => t.key);
  if (todo.length === 0) return { name, status: 'unchanged', keys: [] };
  if (opts.dryRun) return { name, status: 'would-copy', keys: written };
  const write = { ...(lock ? { lock } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  for (const t of todo) {
    if ('pointer' in t.kind) await writePointer(to.storage, t.key, t.kind.pointer, write);
    else await to.storage.put(t.key, t.value!, { ...write, mode: t.kind.mode });
    await verify(to.storage, t);
  }
  await linkStableFiles(to.storage, todo, write);
  return { name, status: 'copied', keys: written };
}

function conflict(name: string, key: string): CertificateMigration {
  return {
    name,
    status: 'conflict',
    keys: [],
    reason: `the destination already holds other content at ${key}`,
  };
}

/** Reads a written key back: the copy counts only once the destination returns the same. */
async function verify(storage: Storage, t: Planned): Promise<void> {
  const same =
    'pointer' in t.kind
      ? (await readPointer(storage, t.key)) === t.kind.pointer
      : (await storage.get(t.key))?.equals(t.value!) === true;
  if (!same)
    throw new CertpilotError(
      'STORE_IO',
      `storage migrate: ${t.key} reads back different from what was written`,
    );
}

/** On a backend with pointers, the stable links into `current` that programs read. */
async function linkStableFiles(
  storage: Storage,
  written: readonly Planned[],
  opts: { lock?: LockHandle; signal?: AbortSignal },
): Promise<void> {
  if (!supportsPointers(storage)) return;
  for (const t of written) {
    if (!('pointer' in t.kind)) continue;
    const dir = t.key.slice(0, -'/current'.length);
    for (const file of STABLE_FILES) {
      if ((await storage.stat(`${t.kind.pointer}/${file}`)) === null) continue;
      await storage.setPointer(`${dir}/${file}`, `${t.key}/${file}`, opts);
    }
  }
}
