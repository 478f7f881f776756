import { once } from 'node:events';
import { CertpilotError } from '../../src/core/errors';
import {
  readPointer,
  writePointer,
  type LockHandle,
  type Locker,
  type Storage,
} from '../../src/store/storage';

/**
 * The Storage and Locker contracts (src/store/storage.ts) as a reusable suite. Each backend's
 * test file calls `runStorageConformance` with a setup returning the backend. An etcd backend
 * passes exactly this suite before it may replace the file backend.
 */
export interface StorageTarget {
  readonly storage: Storage;
  /**
   * Two lockers over the same lock space that act as different clients (two processes, two
   * hosts): a lock one holds must exclude the other.
   */
  readonly lockers: readonly [Locker, Locker];
  teardown(): Promise<void>;
}

/** Lease of the expiry tests: short, since the tests wait for it to run out. */
const LEASE_MS = 400;
/** Lease of the keep-alive test: renewals every third of it must get through on a loaded 2-core machine. */
const KEEPALIVE_LEASE_MS = 1500;

async function errorOf(p: Promise<unknown>): Promise<CertpilotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

function aborted(): AbortSignal {
  const ac = new AbortController();
  ac.abort();
  return ac.signal;
}

/** Resolves when the lock's lost-lock signal fires (an event, not a sleep). */
async function lost(lock: LockHandle): Promise<unknown> {
  if (!lock.signal.aborted) await once(lock.signal, 'abort');
  return lock.signal.reason;
}

export function runStorageConformance(name: string, setup: () => Promise<StorageTarget>): void {
  describe(`${name}: Storage conformance`, () => {
    let t: StorageTarget;
    let counter = 0;
    // Every test works under its own prefix and lock names, so tests do not see each other.
    const fresh = (): string => `t${counter++}`;
    const text = async (key: string): Promise<string | null> =>
      (await t.storage.get(key))?.toString('utf8') ?? null;

    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.teardown();
    });

    test('get, stat of an absent key are null; put then get returns the value, stat its size', async () => {
      const p = fresh();
      expect(await t.storage.get(`${p}/absent`)).toBeNull();
      expect(await t.storage.stat(`${p}/absent`)).toBeNull();
      const before = Date.now();
      await t.storage.put(`${p}/k`, 'héllo');
      expect(await text(`${p}/k`)).toBe('héllo');
      const st = await t.storage.stat(`${p}/k`);
      expect(st).toMatchObject({ key: `${p}/k`, size: Buffer.byteLength('héllo') });
      // Second granularity at worst (some file systems and etcd's lease clocks).
      expect(st!.modified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
      await t.storage.put(`${p}/k`, new Uint8Array([0, 1, 2, 255]));
      expect([...(await t.storage.get(`${p}/k`))!]).toEqual([0, 1, 2, 255]);
    });

    test('put is atomic: concurrent readers see the whole old or the whole new value, never a mix', async () => {
      const key = `${fresh()}/big`;
      const size = 1 << 20;
      const values = ['a', 'b'].map((c) => Buffer.alloc(size, c));
      await t.storage.put(key, values[0]!);
      let writing = true;
      const seen = new Set<string>();
      const reader = (async () => {
        while (writing) {
          const v = (await t.storage.get(key))!;
          expect(v).not.toBeNull();
          expect(v.length).toBe(size);
          const first = String.fromCharCode(v[0]!);
          expect(v.equals(first === 'a' ? values[0]! : values[1]!)).toBe(true);
          seen.add(first);
        }
      })();
      for (let i = 1; i <= 12; i++) await t.storage.put(key, values[i % 2]!);
      writing = false;
      await reader;
      expect((await t.storage.get(key))!.equals(values[0]!)).toBe(true);
    });

    test('concurrent puts to one key leave exactly one of the values, whole, and nothing else', async () => {
      const p = fresh();
      const values = Array.from({ length: 8 }, (_, i) => `value-${i}-`.repeat(1000));
      await Promise.all(values.map((v) => t.storage.put(`${p}/k`, v)));
      expect(values).toContain(await text(`${p}/k`));
      expect(await t.storage.list(p)).toEqual(['k']);
    });

    test('list returns the names under a prefix, sorted; recursive lists every key below it', async () => {
      const p = fresh();
      for (const k of ['a/x', 'a/y/z', 'a/y/w', 'ab/q', 'b']) await t.storage.put(`${p}/${k}`, k);
      expect(await t.storage.list(`${p}/a`)).toEqual(['x', 'y']);
      expect(await t.storage.list(`${p}/a`, { recursive: true })).toEqual(['x', 'y/w', 'y/z']);
      expect(await t.storage.list(p)).toEqual(['a', 'ab', 'b']);
      expect(await t.storage.list(`${p}/nothing`)).toEqual([]);
      expect(await t.storage.list(`${p}/b`)).toEqual([]);
    });

    test('delete is idempotent, removes a key, and removes every key under a prefix', async () => {
      const p = fresh();
      await t.storage.delete(`${p}/never`);
      await t.storage.put(`${p}/one`, '1');
      await t.storage.put(`${p}/dir/a`, 'a');
      await t.storage.put(`${p}/dir/sub/b`, 'b');
      await t.storage.put(`${p}/dirx`, 'keep');
      await t.storage.delete(`${p}/one`);
      await t.storage.delete(`${p}/one`);
      expect(await t.storage.get(`${p}/one`)).toBeNull();
      await t.storage.delete(`${p}/dir`);
      expect(await t.storage.get(`${p}/dir/sub/b`)).toBeNull();
      expect(await t.storage.list(p)).toEqual(['dirx']);
    });

    test('invalid keys are rejected with STORE_IO before any I/O', async () => {
      for (const bad of ['', '../x', 'a/../b', '/abs', 'a//b', 'a/', '.hidden', 'a/.tmp', 'sp ace']) {
        expect((await errorOf(t.storage.put(bad, 'x'))).code).toBe('STORE_IO');
        expect((await errorOf(t.storage.get(bad))).code).toBe('STORE_IO');
        expect((await errorOf(t.storage.delete(bad))).code).toBe('STORE_IO');
      }
    });

    test('every method honours an aborted signal, and an aborted put changes nothing', async () => {
      const key = `${fresh()}/k`;
      await t.storage.put(key, 'old');
      const signal = aborted();
      expect((await errorOf(t.storage.put(key, 'new', { signal }))).code).toBe('ABORTED');
      expect((await errorOf(t.storage.get(key, { signal }))).code).toBe('ABORTED');
      expect((await errorOf(t.storage.stat(key, { signal }))).code).toBe('ABORTED');
      expect((await errorOf(t.storage.list(key, { signal }))).code).toBe('ABORTED');
      expect((await errorOf(t.storage.delete(key, { signal }))).code).toBe('ABORTED');
      expect(await text(key)).toBe('old');
      const timeout = AbortSignal.timeout(0);
      await once(timeout, 'abort');
      expect((await errorOf(t.storage.put(key, 'new', { signal: timeout }))).code).toBe('TIMEOUT');
      expect(await text(key)).toBe('old');
    });

    test('a pointer written with writePointer reads back with readPointer (native or plain)', async () => {
      const p = fresh();
      expect(await readPointer(t.storage, `${p}/current`)).toBeNull();
      await t.storage.put(`${p}/versions/1/v`, 'one');
      await writePointer(t.storage, `${p}/current`, `${p}/versions/1`);
      expect(await readPointer(t.storage, `${p}/current`)).toBe(`${p}/versions/1`);
      await writePointer(t.storage, `${p}/current`, `${p}/versions/2`);
      expect(await readPointer(t.storage, `${p}/current`)).toBe(`${p}/versions/2`);
    });

    test('locate and keyAt are inverse', () => {
      const key = `${fresh()}/a/b.json`;
      expect(t.storage.keyAt(t.storage.locate(key))).toBe(key);
    });

    describe('Locker', () => {
      test('a lock excludes a second locker until released; release is idempotent, fires the signal', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const held = (await a.acquire(n, { wait: false }))!;
        expect(held).not.toBeNull();
        expect(held.signal.aborted).toBe(false);
        expect(await b.acquire(n, { wait: false })).toBeNull();
        expect((await b.holder(n))?.nonce).toBe(held.owner.nonce);
        // Other names are independent.
        const other = (await b.acquire(fresh(), { wait: false }))!;
        expect(other).not.toBeNull();
        await held.check();
        await held.release();
        await held.release();
        expect(held.signal.aborted).toBe(true);
        expect(await b.holder(n)).toBeNull();
        const next = (await b.acquire(n, { wait: false }))!;
        expect(next.token).not.toBe(held.token);
        await Promise.all([next.release(), other.release()]);
      });

      test('a waiting acquirer gets the lock once it is released', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const held = (await a.acquire(n, { wait: false }))!;
        let busy!: () => void;
        const sawBusy = new Promise<void>((r) => (busy = r));
        const waiting = b.acquire(n, { wait: true, pollIntervalMs: 10, onBusy: () => busy() });
        await sawBusy;
        await held.release();
        const got = (await waiting)!;
        expect(got).not.toBeNull();
        await got.release();
      });

      test('lease expiry: the holder is told (signal), and another locker takes the lock over', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const held = (await a.acquire(n, { wait: false, leaseMs: LEASE_MS }))!;
        expect(await b.acquire(n, { wait: false, leaseMs: LEASE_MS })).toBeNull();
        // A waiting acquirer gets it once the lease runs out, without the holder releasing.
        const taker = (await b.acquire(n, {
          wait: true,
          leaseMs: 60_000,
          pollIntervalMs: 20,
          timeoutMs: 30_000,
        }))!;
        expect(taker).not.toBeNull();
        const reason = await lost(held);
        expect(reason).toMatchObject({ code: 'LOCKED', details: { lost: true } });
        expect((await errorOf(held.check())).details).toMatchObject({ lost: true });
        expect((await errorOf(held.renew())).details).toMatchObject({ lost: true });
        // The old holder's release must not free the new holder's lock.
        await held.release();
        expect((await a.holder(n))?.nonce).toBe(taker.owner.nonce);
        await taker.release();
      });

      test('renew extends the lease; keepAlive holds the lock across many leases', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const held = (await a.acquire(n, { wait: false, leaseMs: 60_000 }))!;
        const before = Date.parse((await a.holder(n))!.expiresAt!);
        await held.renew();
        expect(Date.parse((await b.holder(n))!.expiresAt!)).toBeGreaterThanOrEqual(before);
        await held.release();

        const lease = KEEPALIVE_LEASE_MS;
        const kept = (await a.acquire(n, { wait: false, leaseMs: lease, keepAlive: true }))!;
        // Waiting three leases: without renewals the lock would be taken over after the first.
        const attempt = b.acquire(n, {
          wait: true,
          leaseMs: lease,
          pollIntervalMs: 20,
          timeoutMs: 3 * lease,
        });
        expect((await errorOf(attempt)).code).toBe('LOCKED');
        expect(kept.signal.aborted).toBe(false);
        await kept.check();
        await kept.release();
      });

      test('a fenced put or delete with a lost lock fails with LOCKED and changes nothing', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const key = `${n}/fenced`;
        const held = (await a.acquire(n, { wait: false, leaseMs: LEASE_MS }))!;
        await t.storage.put(key, 'mine', { lock: held });
        await lost(held);
        const taker = (await b.acquire(n, { wait: false, leaseMs: 60_000 }))!;
        expect(taker).not.toBeNull();
        const err = await errorOf(t.storage.put(key, 'stale writer', { lock: held }));
        expect(err).toMatchObject({ code: 'LOCKED', details: { lost: true } });
        expect((await errorOf(t.storage.delete(key, { lock: held }))).code).toBe('LOCKED');
        expect(await text(key)).toBe('mine');
        await t.storage.put(key, 'taker', { lock: taker });
        expect(await text(key)).toBe('taker');
        await taker.release();
      });

      test('acquire honours its signal while waiting, and an aborted signal before it starts', async () => {
        const [a, b] = t.lockers;
        const n = fresh();
        const held = (await a.acquire(n, { wait: false }))!;
        const ac = new AbortController();
        const waiting = b.acquire(n, {
          wait: true,
          pollIntervalMs: 10,
          signal: ac.signal,
          onBusy: () => ac.abort(),
        });
        expect((await errorOf(waiting)).code).toBe('ABORTED');
        expect((await errorOf(b.acquire(fresh(), { wait: false, signal: aborted() }))).code).toBe('ABORTED');
        expect((await errorOf(b.acquire(n, { wait: true, timeoutMs: 50, pollIntervalMs: 10 }))).code).toBe(
          'LOCKED',
        );
        await held.release();
      });
    });
  });
}
