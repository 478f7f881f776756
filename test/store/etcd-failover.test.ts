import crypto from 'node:crypto';
import { CertpilotError } from '../../src/core/errors';
import { EtcdClient } from '../../src/store/etcd/client';
import { makeKeyring } from '../../src/store/etcd/envelope';
import { EtcdLocker } from '../../src/store/etcd/locker';
import { EtcdStorage } from '../../src/store/etcd/storage';
import type { LockHandle } from '../../src/store/storage';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';

/**
 * The cluster failing under the backend: the leader killed in the middle of a series of
 * writes, then every member down, then back. A cluster of its own, since members are killed.
 */
jest.setTimeout(120_000);

let cluster: EtcdCluster;
beforeAll(async () => {
  cluster = await startEtcdCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

const keyring = makeKeyring([{ id: 'k1', key: crypto.randomBytes(32) }]);

async function errorOf(p: Promise<unknown>): Promise<CertpilotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

async function lost(lock: LockHandle): Promise<unknown> {
  if (!lock.signal.aborted)
    await new Promise((r) => lock.signal.addEventListener('abort', r, { once: true }));
  return lock.signal.reason;
}

test('the leader killed mid-operation: writes complete through another member, the lock survives', async () => {
  const leader = await cluster.leader();
  // The client talks to the leader first, so the kill hits the member it is using.
  const endpoints = [leader.clientUrl, ...cluster.endpoints.filter((e) => e !== leader.clientUrl)];
  const client = new EtcdClient({ endpoints, requestTimeoutMs: 2_000, retryForMs: 20_000 });
  const storage = new EtcdStorage(client, '/failover/', keyring);
  const locker = new EtcdLocker(client, '/failover/');
  const lock = (await locker.acquire('site', { wait: false, leaseMs: 10_000, keepAlive: true }))!;
  expect(lock).not.toBeNull();

  const writes: Promise<void>[] = [];
  for (let i = 0; i < 40; i++) {
    writes.push(storage.put(`leader/k${i}`, `v${i}`, { lock }));
    if (i === 10) {
      // Killed while writes are in flight on it.
      await leader.kill();
    }
  }
  await Promise.all(writes);
  for (let i = 0; i < 40; i++) expect((await storage.get(`leader/k${i}`))?.toString()).toBe(`v${i}`);
  expect(lock.signal.aborted).toBe(false);
  await lock.check();
  await lock.release();

  await leader.start();
  await cluster.healthy();
  client.close();
});

test('every member down: a typed, retryable error naming the endpoints; the lock is lost; recovery after', async () => {
  const client = new EtcdClient({ endpoints: cluster.endpoints, requestTimeoutMs: 500, retryForMs: 1_500 });
  const storage = new EtcdStorage(client, '/failover/', keyring);
  const locker = new EtcdLocker(client, '/failover/');
  await storage.put('down/before', 'kept');
  const lock = (await locker.acquire('down', { wait: false, leaseMs: 3_000, keepAlive: true }))!;

  await Promise.all(cluster.members.map((m) => m.kill()));
  const started = Date.now();
  const err = await errorOf(storage.get('down/before'));
  expect(err).toMatchObject({
    code: 'STORE_IO',
    retryable: true,
    details: { backend: 'etcd', unavailable: true },
  });
  expect(err.message).toContain('no member answered within 1500 ms');
  for (const e of cluster.endpoints) expect(err.message).toContain(e);
  // It gave up after its budget, not at the first refused connection, and not much later.
  expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  expect(Date.now() - started).toBeLessThan(10_000);
  // The holder is told once its keep-alive fails.
  expect(await lost(lock)).toMatchObject({ code: 'LOCKED', details: { lost: true } });

  await Promise.all(cluster.members.map((m) => m.start()));
  await cluster.healthy();
  // The same client and storage work again: nothing was cached as broken.
  expect((await storage.get('down/before'))?.toString()).toBe('kept');
  await storage.put('down/after', 'written');
  expect((await storage.get('down/after'))?.toString()).toBe('written');
  const again = (await locker.acquire('down', { wait: true, leaseMs: 5_000, timeoutMs: 15_000 }))!;
  expect(again).not.toBeNull();
  await again.release();
  client.close();
});
