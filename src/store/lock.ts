import crypto from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep, throwIfAborted } from '../core/abort';
import { CertpilotError, abortError } from '../core/errors';
import { isCertificateName } from '../core/names';
import { atomicWriteFile, ensureDir, fsyncDir } from './atomic';
import {
  lockLostError,
  type AcquireOptions,
  type CallOptions,
  type LockHandle,
  type LockOwner,
  type Locker,
} from './storage';

/**
 * One lock per certificate, so `certpilot renew` (from a timer or by hand) and the daemon never
 * order the same certificate at once: two orders for one name burn the CA's exact-set limit
 * (5 per 7 days at Let's Encrypt) and race each other's TXT records.
 *
 * A lock is the file `<stateDir>/locks/<name>.lock` holding JSON {pid, hostname, startedAt,
 * procStart, nonce, expiresAt?}. It is published with link(2) from a fully written temp file: link fails
 * with EEXIST when the name exists, so creation is atomic (like O_EXCL) AND a reader never sees
 * a half-written owner (with a plain O_EXCL create there is a moment where the file is empty).
 *
 * A lock whose owner is a dead process on this host (kill(pid, 0) -> ESRCH, or the pid now
 * belongs to a process that started later), or whose lease (expiresAt) ran out, is stale and is
 * taken over. Takers and lease renewals are serialised by a short-lived `<name>.lock.takeover`
 * file (also O_EXCL); under it the taker re-reads the lock, checks it is still the very file it
 * judged stale (same nonce and lease), and renames it aside. Without
 * that, two takers that both saw the stale lock could each remove "it", the second one removing
 * the first one's fresh lock. Locks of another host are never taken over: liveness cannot be
 * checked from here (a state directory shared over NFS is not supported; remove it by hand).
 */

/** How often a waiting acquirer looks again. The holder is another process, so there is no event to wait on. */
export const LOCK_POLL_INTERVAL_MS = 200;
/** A takeover takes a few file operations; a takeover file older than this was left by a crash. */
export const TAKEOVER_STALE_MS = 10_000;
/** Lock files that cannot be parsed are only treated as stale once this old (never mid-write, see above, but be safe). */
export const CORRUPT_LOCK_GRACE_MS = 10_000;

export type { LockOwner } from './storage';

/** A held lock of the file backend: a LockHandle plus the path of its file. */
export interface Lock extends LockHandle {
  readonly path: string;
}

/** acquireLock's options: those of Locker.acquire (src/store/storage.ts). */
export type AcquireLockOptions = AcquireOptions;

export function lockPath(stateDir: string, name: string): string {
  return path.join(stateDir, 'locks', `${name}.lock`);
}

function lockError(message: string, cause?: unknown, details?: Record<string, unknown>): CertpilotError {
  return new CertpilotError('LOCKED', `lock: ${message}`, { cause, retryable: true, details });
}

function errno(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Start time of a process from /proc (Linux); undefined elsewhere or when it is gone. */
async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 22 overall is index 19 after dropping pid and comm.
    return fields[19];
  } catch {
    return undefined;
  }
}

let ownStart: Promise<string | undefined> | undefined;

/** True when `owner` can be proven dead: same host and its pid is gone or reused. */
async function ownerIsDead(owner: LockOwner): Promise<boolean> {
  if (owner.hostname !== os.hostname()) return false;
  if (owner.pid === process.pid) {
    ownStart ??= procStartTime(process.pid);
    const mine = await ownStart;
    // Our own pid: alive unless the file came from an earlier process that had the same pid.
    return owner.procStart !== undefined && mine !== undefined && owner.procStart !== mine;
  }
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: alive but owned by another user. Only ESRCH proves death.
    return errno(err) === 'ESRCH';
  }
  if (owner.procStart === undefined) return false;
  const now = await procStartTime(owner.pid);
  return now !== undefined && now !== owner.procStart;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.nonce === 'string') {
      return v as LockOwner;
    }
  } catch {
    // fall through
  }
  return undefined;
}

type ReadResult =
  { kind: 'absent' } | { kind: 'owner'; owner: LockOwner } | { kind: 'corrupt'; ageMs: number };

async function readLock(file: string): Promise<ReadResult> {
  let text: string;
  let mtimeMs: number;
  try {
    const fh = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      text = await fh.readFile('utf8');
      mtimeMs = (await fh.stat()).mtimeMs;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (errno(err) === 'ENOENT') return { kind: 'absent' };
    throw lockError(`cannot read ${file}: ${(err as Error).message}`, err);
  }
  const owner = parseOwner(text);
  return owner ? { kind: 'owner', owner } : { kind: 'corrupt', ageMs: Date.now() - mtimeMs };
}

/** Writes `data` to a temp file and links it to `target`. Returns false when `target` exists. */
async function publishExclusive(target: string, data: string): Promise<boolean> {
  const temp = `${target}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const fh = await fs.open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.link(temp, target);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** Moves `file` out of the way if it still carries `nonce` (or is still the same corrupt file). */
async function removeIfUnchanged(file: string, expected: ReadResult): Promise<boolean> {
  const current = await readLock(file);
  if (expected.kind === 'owner' && !(current.kind === 'owner' && sameLease(current.owner, expected.owner)))
    return false;
  if (expected.kind === 'corrupt' && current.kind !== 'corrupt') return false;
  if (expected.kind === 'absent') return false;
  // Rename aside then unlink: the name becomes free in one atomic step.
  const aside = `${file}.stale-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
  await fs.rm(aside, { force: true });
  return true;
}

/**
 * Takes over a stale lock under the takeover mutex. Returns true when the stale file was
 * removed (the caller then races normally for the free name), false when someone else is
 * taking over or the lock changed meanwhile (the caller looks again).
 */
async function takeOver(file: string, judged: ReadResult): Promise<boolean> {
  return (await underTakeoverMutex(file, () => removeIfUnchanged(file, judged))) ?? false;
}

/**
 * Runs `fn` holding `<file>.takeover`; undefined (without running it) when another process
 * holds that mutex. Takeovers and lease renewals both rewrite or remove the lock file, so they
 * are serialised by it: a taker never removes a lock whose lease was renewed meanwhile.
 */
async function underTakeoverMutex<T>(file: string, fn: () => Promise<T>): Promise<T | undefined> {
  const mutex = `${file}.takeover`;
  const me = JSON.stringify({ pid: process.pid, hostname: os.hostname(), at: new Date().toISOString() });
  if (!(await publishExclusive(mutex, me))) {
    // Another taker holds it. A takeover lasts milliseconds; an old mutex was left by a crash.
    try {
      const st = await fs.stat(mutex);
      if (Date.now() - st.mtimeMs > TAKEOVER_STALE_MS) await fs.rm(mutex, { force: true });
    } catch {
      // gone already
    }
    return undefined;
  }
  try {
    return await fn();
  } finally {
    await fs.rm(mutex, { force: true });
  }
}

/** Same acquisition and same lease: a renewal changes expiresAt, so a judged-stale copy no longer matches. */
function sameLease(a: LockOwner, b: LockOwner): boolean {
  return a.nonce === b.nonce && a.expiresAt === b.expiresAt;
}

function leaseExpired(owner: LockOwner, now = Date.now()): boolean {
  return owner.expiresAt !== undefined && Date.parse(owner.expiresAt) <= now;
}

/** How long a lease renewal waits for a takeover in progress (milliseconds each) before giving up. */
const RENEW_MUTEX_ATTEMPTS = 50;
const RENEW_MUTEX_WAIT_MS = 10;

/**
 * The file backend of Locker (contracts in ./storage.ts): lock files under <root>/locks, owners
 * judged by pid and process start time as described above, plus optional leases. A lease is the
 * owner's `expiresAt`; once it has passed, the lock is stale like one of a dead process, even
 * when the holder lives (it hung, or its clock jumped): that is what lets a fleet backend and
 * this one share one meaning of a lease.
 */
export class FileLocker implements Locker {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async holder(name: string, opts: CallOptions = {}): Promise<LockOwner | null> {
    throwIfAborted(opts.signal, `lock: ${name}`);
    const r = await readLock(lockPath(this.root, name));
    return r.kind === 'owner' ? r.owner : null;
  }

  /**
   * Acquires lock `name`. Null when `wait` is false and a live process holds it; with `wait`,
   * resolves once it is free (or throws LOCKED after `timeoutMs`, or ABORTED/TIMEOUT when
   * `signal` fires).
   */
  async acquire(name: string, opts: AcquireOptions): Promise<Lock | null> {
    if (!isCertificateName(name)) throw lockError(`invalid lock name "${name}"`);
    const dir = path.join(this.root, 'locks');
    await ensureDir(dir);
    const file = lockPath(this.root, name);
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const interval = opts.pollIntervalMs ?? LOCK_POLL_INTERVAL_MS;

    for (;;) {
      if (opts.signal?.aborted) throw abortError(`lock: ${name}`, opts.signal);
      const owner = await newOwner(opts);
      if (await publishExclusive(file, JSON.stringify(owner) + '\n')) {
        await fsyncDir(dir);
        return makeLock(name, file, owner, opts);
      }

      const seen = await readLock(file);
      let holder: LockOwner | undefined;
      if (seen.kind === 'absent') continue; // released between our attempt and the read
      if (seen.kind === 'owner') {
        if (leaseExpired(seen.owner) || (await ownerIsDead(seen.owner))) {
          await takeOver(file, seen);
          continue;
        }
        holder = seen.owner;
      } else if (seen.ageMs > CORRUPT_LOCK_GRACE_MS) {
        await takeOver(file, seen);
        continue;
      }

      if (!opts.wait) return null;
      opts.onBusy?.(holder);
      if (deadline !== undefined && Date.now() >= deadline) throw stillLocked(name, holder, opts.timeoutMs);
      const wait = deadline === undefined ? interval : Math.max(1, Math.min(interval, deadline - Date.now()));
      // A lease that runs out is an event we can wait for exactly.
      const untilExpiry = holder?.expiresAt ? Math.max(1, Date.parse(holder.expiresAt) - Date.now()) : wait;
      await sleep(Math.min(wait, untilExpiry), opts.signal, `lock: ${name}`);
    }
  }
}

async function newOwner(opts: AcquireOptions): Promise<LockOwner> {
  return {
    pid: process.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
    procStart: await (ownStart ??= procStartTime(process.pid)),
    nonce: crypto.randomBytes(12).toString('hex'),
    ...(opts.purpose ? { purpose: opts.purpose } : {}),
    ...(opts.leaseMs !== undefined ? { expiresAt: new Date(Date.now() + opts.leaseMs).toISOString() } : {}),
  };
}

function stillLocked(
  name: string,
  holder: LockOwner | undefined,
  timeoutMs: number | undefined,
): CertpilotError {
  const who = holder ? `pid ${holder.pid} on ${holder.hostname} since ${holder.startedAt}` : 'unknown';
  return lockError(`certificate "${name}" is still locked by ${who} after ${timeoutMs} ms`, undefined, {
    holder,
  });
}

/**
 * Acquires the lock of certificate `name` under `<stateDir>/locks` (FileLocker.acquire). Kept
 * as a function because callers across the tree lock by state directory.
 */
export function acquireLock(stateDir: string, name: string, opts: AcquireLockOptions): Promise<Lock | null> {
  return new FileLocker(stateDir).acquire(name, opts);
}

/** The current holder of a certificate's lock, or null (for status output and messages). */
export async function readLockOwner(stateDir: string, name: string): Promise<LockOwner | null> {
  return new FileLocker(stateDir).holder(name);
}

function makeLock(name: string, file: string, first: LockOwner, opts: AcquireOptions): Lock {
  let owner = first;
  let released = false;
  const lost = new AbortController();
  let expiryTimer: NodeJS.Timeout | undefined;
  let keepAliveTimer: NodeJS.Timeout | undefined;
  const stopTimers = (): void => {
    clearTimeout(expiryTimer);
    clearInterval(keepAliveTimer);
  };
  const markLost = (why: string): CertpilotError => {
    stopTimers();
    const err = lockLostError(name, why);
    if (!lost.signal.aborted) lost.abort(err);
    return lost.signal.reason instanceof CertpilotError ? lost.signal.reason : err;
  };
  // The holder learns of an expired lease without asking the file: nobody renewed it in time.
  const armExpiry = (): void => {
    clearTimeout(expiryTimer);
    if (owner.expiresAt === undefined) return;
    const ms = Math.max(0, Date.parse(owner.expiresAt) - Date.now());
    expiryTimer = setTimeout(() => markLost('lease expired'), ms);
    expiryTimer.unref();
  };

  const check = async (callOpts: CallOptions = {}): Promise<void> => {
    throwIfAborted(callOpts.signal, `lock: ${name}`);
    if (lost.signal.aborted) throw lost.signal.reason as CertpilotError;
    const current = await readLock(file);
    if (current.kind !== 'owner' || current.owner.nonce !== owner.nonce)
      throw markLost('taken over or removed');
    if (leaseExpired(current.owner)) throw markLost('lease expired');
  };

  const renew = async (callOpts: CallOptions = {}): Promise<void> => {
    if (owner.expiresAt === undefined) return check(callOpts);
    for (let attempt = 1; ; attempt++) {
      await check(callOpts);
      const next: LockOwner = {
        ...owner,
        expiresAt: new Date(Date.now() + (opts.leaseMs ?? 0)).toISOString(),
      };
      const done = await underTakeoverMutex(file, async () => {
        await check(callOpts);
        await atomicWriteFile(file, JSON.stringify(next) + '\n', { mode: 0o600 });
        return true;
      });
      if (done) {
        owner = next;
        armExpiry();
        return;
      }
      if (attempt >= RENEW_MUTEX_ATTEMPTS)
        throw lockError(`cannot renew "${name}": takeover file stays busy`);
      await sleep(RENEW_MUTEX_WAIT_MS, callOpts.signal, `lock: ${name}`);
    }
  };

  armExpiry();
  if (opts.keepAlive && opts.leaseMs !== undefined) {
    keepAliveTimer = setInterval(
      () => void renew().catch((err: unknown) => markLost(`renewal failed: ${(err as Error).message}`)),
      Math.max(1, Math.floor(opts.leaseMs / 3)),
    );
    keepAliveTimer.unref();
  }

  return {
    name,
    path: file,
    get owner() {
      return owner;
    },
    get token() {
      return owner.nonce;
    },
    signal: lost.signal,
    check,
    renew,
    async release() {
      if (released) return;
      released = true;
      stopTimers();
      // Only remove the file if it is still ours: after a takeover the name belongs to someone else.
      const current = await readLock(file);
      if (current.kind === 'owner' && current.owner.nonce === owner.nonce) {
        await removeIfUnchanged(file, current);
      }
      markLost('released');
    },
  };
}
