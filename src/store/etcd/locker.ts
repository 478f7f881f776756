import crypto from 'node:crypto';
import os from 'node:os';
import { sleep, throwIfAborted } from '../../core/abort';
import { CertpilotError, abortError } from '../../core/errors';
import { isCertificateName } from '../../core/names';
import {
  lockLostError,
  type AcquireOptions,
  type CallOptions,
  type LockHandle,
  type LockOwner,
  type Locker,
} from '../storage';
import {
  b64,
  grpcCodeOf,
  GRPC,
  type EtcdClient,
  type KeyValue,
  type RangeResponse,
  type TxnResponse,
} from './client';

/**
 * The etcd backend of Locker (contracts in ../storage.ts).
 *
 * A lock is the key `<prefix>.locks/<name>` (a '.' segment no storage key can have), created
 * in a transaction only when absent (create_revision = 0) and attached to an etcd lease of its
 * own. etcd deletes the key when the lease runs out, so a holder that crashed, hangs or is cut
 * off loses the lock on the server without anybody judging its liveness, on any host.
 *
 * The fencing token is the lock key's create_revision: it is set by the cluster, only grows,
 * and a new acquisition after a loss always has a larger one. A write under a lock is a
 * transaction comparing it (EtcdStorage), so a holder that lost its lease while paused can
 * never overwrite what the next holder wrote, however late it wakes up.
 *
 * The holder's own view: it counts its lease from the moment it asked for it (before the
 * server did), so it believes itself lost no later than the server. When that local deadline
 * passes without a renewal, or a keep-alive finds the lease gone or fails, the handle revokes
 * its lease (freeing the name at once rather than after the server's TTL) and fires `signal`.
 *
 * etcd leases are whole seconds, at least ~2 s (3/2 of the election timeout): a lease asked
 * for in milliseconds is rounded up on the server, and the holder keeps its own, shorter,
 * deadline. A lock taken without `leaseMs` gets the locker's default lease (storage.etcd.lockLease,
 * DEFAULT_LEASE_MS unless set) with keep-alive: the process
 * holds it while it lives and answers, which is what the file backend means by no lease.
 */

export const DEFAULT_LEASE_MS = 15_000;
export const LOCK_POLL_INTERVAL_MS = 200;
/** How long a handle that lost its lease tries to revoke it before it says so anyway. */
const REVOKE_TIMEOUT_MS = 2_000;

/** What EtcdStorage needs to fence a write on a handle of this locker. */
export interface EtcdFence {
  /** The lock key, as stored (with the prefix). */
  key: string;
  /** The lock key's create_revision. */
  createRevision: string;
}

/** A held etcd lock; `path` names its key (for messages), as the file backend's Lock does. */
export interface EtcdLock extends LockHandle {
  readonly path: string;
}

const fences = new WeakMap<LockHandle, () => EtcdFence>();

/**
 * The fence of `lock` when it is a handle of an EtcdLocker with lock keys under `lockPrefix`;
 * throws its loss when it is known lost locally; undefined for other handles.
 */
export function fenceOf(lock: LockHandle, lockPrefix: string): EtcdFence | undefined {
  const fence = fences.get(lock)?.();
  return fence && fence.key.startsWith(lockPrefix) ? fence : undefined;
}

function lockError(message: string, details?: Record<string, unknown>): CertpilotError {
  return new CertpilotError('LOCKED', `lock: ${message}`, { retryable: true, details });
}

function parseOwner(kv: KeyValue | undefined): LockOwner | undefined {
  if (!kv?.value) return undefined;
  try {
    const v = JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.nonce === 'string')
      return v as LockOwner;
  } catch {
    // not ours
  }
  return undefined;
}

export class EtcdLocker implements Locker {
  /** Prefix of the lock keys: `<prefix>.locks/`. */
  readonly lockPrefix: string;

  constructor(
    private readonly client: EtcdClient,
    prefix: string,
    /** Lease of an acquisition that names none (storage.etcd.lockLease). */
    private readonly defaultLeaseMs = DEFAULT_LEASE_MS,
  ) {
    this.lockPrefix = `${prefix}.locks/`;
  }

  private keyOf(name: string): string {
    if (!isCertificateName(name)) throw lockError(`invalid lock name "${name}"`);
    return this.lockPrefix + name;
  }

  async holder(name: string, opts: CallOptions = {}): Promise<LockOwner | null> {
    throwIfAborted(opts.signal, `lock: ${name}`);
    const res = await this.client.call<RangeResponse>(
      '/v3/kv/range',
      { key: b64(this.keyOf(name)) },
      opts.signal,
    );
    return parseOwner(res.kvs?.[0]) ?? null;
  }

  async acquire(name: string, opts: AcquireOptions): Promise<EtcdLock | null> {
    const key = this.keyOf(name);
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const interval = opts.pollIntervalMs ?? LOCK_POLL_INTERVAL_MS;
    const leaseMs = opts.leaseMs ?? this.defaultLeaseMs;
    for (;;) {
      if (opts.signal?.aborted) throw abortError(`lock: ${name}`, opts.signal);
      let holder = await this.holder(name, opts);
      if (holder === null) {
        const got = await this.tryCreate(name, key, leaseMs, opts);
        if ('handle' in got) return got.handle;
        holder = got.holder ?? null;
      }
      if (!opts.wait) return null;
      opts.onBusy?.(holder ?? undefined);
      if (deadline !== undefined && Date.now() >= deadline) throw stillLocked(name, holder, opts.timeoutMs);
      const wait = deadline === undefined ? interval : Math.max(1, Math.min(interval, deadline - Date.now()));
      await sleep(wait, opts.signal, `lock: ${name}`);
    }
  }

  /** One attempt: a lease, then the key if still absent. The lease is revoked when we lose the race. */
  private async tryCreate(
    name: string,
    key: string,
    leaseMs: number,
    opts: AcquireOptions,
  ): Promise<{ handle: EtcdLock } | { holder?: LockOwner }> {
    const asked = Date.now();
    const grant = await this.client.call<{ ID: string; TTL: string }>(
      '/v3/lease/grant',
      { TTL: Math.max(1, Math.ceil(leaseMs / 1000)) },
      opts.signal,
    );
    const owner: LockOwner = {
      pid: process.pid,
      hostname: os.hostname(),
      startedAt: new Date().toISOString(),
      nonce: crypto.randomBytes(12).toString('hex'),
      ...(opts.purpose ? { purpose: opts.purpose } : {}),
      ...(opts.leaseMs !== undefined ? { expiresAt: new Date(asked + leaseMs).toISOString() } : {}),
    };
    const k = b64(key);
    const range = { request_range: { key: k } };
    let res: TxnResponse;
    try {
      res = await this.client.call<TxnResponse>(
        '/v3/kv/txn',
        {
          compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
          success: [{ request_put: { key: k, value: b64(JSON.stringify(owner)), lease: grant.ID } }, range],
          failure: [range],
        },
        opts.signal,
      );
    } catch (err) {
      // Not awaited, never thrown: a lease that cannot be revoked (etcd slow) runs out on the server.
      void this.revoke(grant.ID).catch(() => undefined);
      throw err;
    }
    // Read back rather than trust `succeeded`: after a retried request whose first answer was
    // lost, the key is ours although this attempt's compare failed.
    const kv = res.responses?.at(-1)?.response_range?.kvs?.[0];
    const found = parseOwner(kv);
    if (found?.nonce === owner.nonce && kv?.create_revision) {
      const handle = new EtcdLockHandle(this, name, key, owner, kv.create_revision, grant.ID, asked, leaseMs);
      handle.start(opts.keepAlive === true || opts.leaseMs === undefined);
      return { handle };
    }
    void this.revoke(grant.ID).catch(() => undefined);
    return found ? { holder: found } : {};
  }

  /** @internal Revokes a lease; a lease already gone is fine. */
  async revoke(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.call(
        '/v3/lease/revoke',
        { ID: id },
        signal ?? AbortSignal.timeout(REVOKE_TIMEOUT_MS),
      );
    } catch (err) {
      if (grpcCodeOf(err) !== GRPC.NOT_FOUND) throw err;
    }
  }

  /** @internal The client, for the handles. */
  get etcd(): EtcdClient {
    return this.client;
  }
}

function stillLocked(name: string, holder: LockOwner | null, timeoutMs: number | undefined): CertpilotError {
  const who = holder ? `pid ${holder.pid} on ${holder.hostname} since ${holder.startedAt}` : 'unknown';
  return lockError(`certificate "${name}" is still locked by ${who} after ${timeoutMs} ms`, {
    holder: holder ?? undefined,
  });
}

/** A held etcd lock. See the module comment for the local deadline and the fence. */
class EtcdLockHandle implements EtcdLock {
  private readonly lost = new AbortController();
  private released = false;
  private renewing = false;
  private expiryTimer?: NodeJS.Timeout;
  private keepAliveTimer?: NodeJS.Timeout;
  private currentOwner: LockOwner;

  constructor(
    private readonly locker: EtcdLocker,
    readonly name: string,
    private readonly key: string,
    owner: LockOwner,
    readonly token: string,
    private readonly leaseId: string,
    /** When the lease was asked for: the local deadline counts from here. */
    private deadline: number,
    private readonly leaseMs: number,
  ) {
    this.currentOwner = owner;
    this.deadline += leaseMs;
    fences.set(this, () => {
      this.throwIfLost();
      return { key: this.key, createRevision: this.token };
    });
  }

  get owner(): LockOwner {
    return this.currentOwner;
  }

  get path(): string {
    return `etcd:${this.key}`;
  }

  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** @internal Arms the local deadline and, when asked, the keep-alive (every third of the lease). */
  start(keepAlive: boolean): void {
    this.armExpiry();
    if (!keepAlive) return;
    // One renewal at a time: a call that is failing over can outlast the interval.
    const tick = (): void => {
      if (this.renewing) return;
      this.renewing = true;
      this.renew()
        .catch(() => undefined)
        .finally(() => (this.renewing = false));
    };
    this.keepAliveTimer = setInterval(tick, Math.max(1, Math.floor(this.leaseMs / 3)));
    this.keepAliveTimer.unref();
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => void this.giveUp('lease expired'),
      Math.max(0, this.deadline - Date.now()),
    );
    this.expiryTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.expiryTimer);
    clearInterval(this.keepAliveTimer);
  }

  private markLost(why: string): CertpilotError {
    this.stopTimers();
    if (!this.lost.signal.aborted) this.lost.abort(lockLostError(this.name, why));
    return this.lost.signal.reason as CertpilotError;
  }

  /** Lost without the server saying so (deadline, failed keep-alive): free the name, then tell. */
  private async giveUp(why: string): Promise<CertpilotError> {
    if (this.lost.signal.aborted) return this.lost.signal.reason as CertpilotError;
    this.stopTimers();
    await this.locker.revoke(this.leaseId).catch(() => undefined);
    return this.markLost(why);
  }

  private throwIfLost(): void {
    if (this.lost.signal.aborted) throw this.lost.signal.reason as CertpilotError;
    if (Date.now() >= this.deadline) {
      void this.giveUp('lease expired');
      throw lockLostError(this.name, 'lease expired');
    }
  }

  async check(opts: CallOptions = {}): Promise<void> {
    throwIfAborted(opts.signal, `lock: ${this.name}`);
    this.throwIfLost();
    const res = await this.locker.etcd.call<RangeResponse>(
      '/v3/kv/range',
      { key: b64(this.key) },
      opts.signal,
    );
    if (res.kvs?.[0]?.create_revision !== this.token) throw this.markLost('taken over or removed');
  }

  async renew(opts: CallOptions = {}): Promise<void> {
    throwIfAborted(opts.signal, `lock: ${this.name}`);
    this.throwIfLost();
    const asked = Date.now();
    let ttl: number;
    try {
      const res = await this.locker.etcd.call<{ TTL?: string }>(
        '/v3/lease/keepalive',
        { ID: this.leaseId },
        opts.signal,
      );
      ttl = Number(res.TTL ?? 0);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw await this.giveUp(`keep-alive failed: ${(err as Error).message}`);
    }
    // TTL 0: the server no longer has the lease, so the key is gone with it.
    if (ttl <= 0) throw this.markLost('lease gone');
    const next: LockOwner = { ...this.currentOwner };
    if (next.expiresAt !== undefined) next.expiresAt = new Date(asked + this.leaseMs).toISOString();
    // Rewrites the owner (new expiresAt) only while the key is still this acquisition's.
    const k = b64(this.key);
    const txn = await this.locker.etcd.call<TxnResponse>(
      '/v3/kv/txn',
      {
        compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: this.token }],
        success: [{ request_put: { key: k, value: b64(JSON.stringify(next)), lease: this.leaseId } }],
      },
      opts.signal,
    );
    if (!txn.succeeded) throw this.markLost('taken over or removed');
    this.currentOwner = next;
    this.deadline = asked + Math.min(this.leaseMs, ttl * 1000);
    this.armExpiry();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    // Revoking the lease deletes the key only if it is still ours: a new holder's key hangs on
    // its own lease.
    // An unreachable cluster does not keep the lock: the lease runs out on the server.
    await this.locker.revoke(this.leaseId).catch(() => undefined);
    this.markLost('released');
  }
}
