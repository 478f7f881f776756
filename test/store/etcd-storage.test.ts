import crypto from 'node:crypto';
import type { LookupFunction } from 'node:net';
import { CertpilotError } from '../../src/core/errors';
import { EtcdClient, b64, type KeyValue, type RangeResponse } from '../../src/store/etcd/client';
import { makeKeyring } from '../../src/store/etcd/envelope';
import { EtcdLocker } from '../../src/store/etcd/locker';
import { EtcdStorage } from '../../src/store/etcd/storage';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';
import { runStorageConformance } from './conformance';

jest.setTimeout(60_000);

let cluster: EtcdCluster;
beforeAll(async () => {
  cluster = await startEtcdCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

const dataKey = { id: 'k1', key: crypto.randomBytes(32) };

runStorageConformance('EtcdStorage + EtcdLocker', async () => {
  const clients = [0, 1].map(
    (i) => new EtcdClient({ endpoints: [...cluster.endpoints.slice(i), ...cluster.endpoints.slice(0, i)] }),
  );
  const prefix = '/conformance/';
  return {
    storage: new EtcdStorage(clients[0]!, prefix, makeKeyring([dataKey])),
    lockers: [new EtcdLocker(clients[0]!, prefix), new EtcdLocker(clients[1]!, prefix)],
    teardown: async () => clients.forEach((c) => c.close()),
  };
});

/** An etcd client of its own per test "node", so nodes share nothing but the cluster. */
function node(keys: { id: string; key: Buffer }[], prefix = '/specifics/') {
  const client = new EtcdClient({ endpoints: cluster.endpoints });
  clients.push(client);
  return {
    client,
    storage: new EtcdStorage(client, prefix, makeKeyring(keys)),
    locker: new EtcdLocker(client, prefix),
  };
}
const clients: EtcdClient[] = [];
afterAll(() => clients.forEach((c) => c.close()));

async function raw(client: EtcdClient, key: string): Promise<KeyValue | undefined> {
  const res = await client.call<RangeResponse>('/v3/kv/range', { key: b64(key) });
  return res.kvs?.[0];
}

async function errorOf(p: Promise<unknown>): Promise<CertpilotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

let n = 0;
const fresh = (): string => `s${n++}`;

describe('EtcdStorage specifics', () => {
  test('fencing: a holder whose lease ended while it was paused cannot overwrite the taker', async () => {
    const a = node([dataKey]);
    const b = node([dataKey]);
    const name = fresh();
    const key = `${name}/state.json`;
    // A long lease and no keep-alive: the holder itself will not notice anything for a minute.
    const held = (await a.locker.acquire(name, { wait: false, leaseMs: 60_000 }))!;
    await a.storage.put(key, 'holder', { lock: held });
    // What a SIGSTOP past the lease does on the server: the lease ends, etcd deletes the key.
    const lease = (await raw(b.client, `/specifics/.locks/${name}`))!.lease!;
    await b.client.call('/v3/lease/revoke', { ID: lease });
    const taker = (await b.locker.acquire(name, { wait: false, leaseMs: 60_000 }))!;
    expect(taker).not.toBeNull();
    expect(Number(taker.token)).toBeGreaterThan(Number(held.token));
    await b.storage.put(key, 'taker', { lock: taker });

    // The woken holder still believes it holds the lock: only the server-side fence stops it.
    expect(held.signal.aborted).toBe(false);
    const err = await errorOf(a.storage.put(key, 'stale holder', { lock: held }));
    expect(err).toMatchObject({ code: 'LOCKED', details: { lost: true } });
    expect(held.signal.aborted).toBe(true);
    expect((await errorOf(a.storage.delete(key, { lock: held }))).code).toBe('LOCKED');
    expect((await b.storage.get(key))?.toString()).toBe('taker');
    // Its release must not free the taker's lock.
    await held.release();
    expect((await b.locker.holder(name))?.nonce).toBe(taker.owner.nonce);
    await taker.release();
  });

  test('secrets are sealed before they leave the process; public values are stored in clear', async () => {
    const a = node([dataKey]);
    const p = fresh();
    const pem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n';
    await a.storage.put(`${p}/privkey.pem`, pem);
    await a.storage.put(`${p}/cert.pem`, 'public certificate', { mode: 0o644 });
    const sealed = Buffer.from((await raw(a.client, `/specifics/${p}/privkey.pem`))!.value!, 'base64');
    expect(sealed.includes(Buffer.from('PRIVATE KEY'))).toBe(false);
    expect(sealed.includes(Buffer.from('k1'))).toBe(true);
    const clear = Buffer.from((await raw(a.client, `/specifics/${p}/cert.pem`))!.value!, 'base64');
    expect(clear.includes(Buffer.from('public certificate'))).toBe(true);
    expect((await a.storage.get(`${p}/privkey.pem`))?.toString()).toBe(pem);
    expect((await a.storage.stat(`${p}/privkey.pem`))?.size).toBe(pem.length);
  });

  test('a node without the encryption key cannot read a secret (clear error) nor write one', async () => {
    const a = node([dataKey]);
    const stranger = node([{ id: 'other', key: crypto.randomBytes(32) }]);
    const keyless = node([]);
    const p = fresh();
    await a.storage.put(`${p}/privkey.pem`, 'secret key material');
    const err = await errorOf(stranger.storage.get(`${p}/privkey.pem`));
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain('encrypted with key "k1", which this node does not have');
    expect(err.message).not.toContain('secret key material');
    expect(err.details).toMatchObject({ keyId: 'k1', encrypted: true });
    // Size and time need no key; the value does.
    expect((await stranger.storage.stat(`${p}/privkey.pem`))?.size).toBe(19);
    const noKey = await errorOf(keyless.storage.put(`${p}/other.pem`, 'secret'));
    expect(noKey.message).toContain('no encryption key');
    expect(await a.storage.get(`${p}/other.pem`)).toBeNull();
    // Same id, different key material: authentication fails, nothing is returned.
    const impostor = node([{ id: 'k1', key: crypto.randomBytes(32) }]);
    expect((await errorOf(impostor.storage.get(`${p}/privkey.pem`))).message).toContain('does not open');
  });

  test('a sealed value copied under another key does not open (the key is authenticated)', async () => {
    const a = node([dataKey]);
    const p = fresh();
    await a.storage.put(`${p}/a.pem`, 'for a only');
    const stored = (await raw(a.client, `/specifics/${p}/a.pem`))!.value!;
    await a.client.call('/v3/kv/put', { key: b64(`/specifics/${p}/b.pem`), value: stored });
    expect((await errorOf(a.storage.get(`${p}/b.pem`))).message).toContain('does not open');
  });

  test('key rotation: new writes use the first key, values sealed with an older key stay readable', async () => {
    const k2 = { id: 'k2', key: crypto.randomBytes(32) };
    const before = node([dataKey]);
    const after = node([k2, dataKey]);
    const p = fresh();
    await before.storage.put(`${p}/old.pem`, 'sealed with k1');
    await after.storage.put(`${p}/new.pem`, 'sealed with k2');
    const header = Buffer.from((await raw(after.client, `/specifics/${p}/new.pem`))!.value!, 'base64');
    expect(header.includes(Buffer.from('k2'))).toBe(true);
    expect((await after.storage.get(`${p}/old.pem`))?.toString()).toBe('sealed with k1');
    expect((await after.storage.get(`${p}/new.pem`))?.toString()).toBe('sealed with k2');
    // A node still on the old key alone cannot read what the rotated node wrote.
    expect((await errorOf(before.storage.get(`${p}/new.pem`))).details).toMatchObject({ keyId: 'k2' });
    // Rewriting an old value reseals it with the current key (how a rotation completes).
    await after.storage.put(`${p}/old.pem`, (await after.storage.get(`${p}/old.pem`))!);
    const only2 = node([k2]);
    expect((await only2.storage.get(`${p}/old.pem`))?.toString()).toBe('sealed with k1');
  });

  test('lock keys are not storage keys: list never shows them', async () => {
    const a = node([dataKey]);
    const name = fresh();
    const held = (await a.locker.acquire(name, { wait: false, leaseMs: 60_000 }))!;
    await a.storage.put(`${name}/x`, 'x');
    const root = await a.storage.list('');
    expect(root).toContain(name);
    expect(root.some((k) => k.startsWith('.'))).toBe(false);
    await held.release();
  });
});

test('endpoint host names go through the lookup passed in (dns.resolvers), never the system resolver', async () => {
  const asked: string[] = [];
  // A name the system resolver cannot know: the call only works through this lookup.
  const lookup = ((host: string, _opts: unknown, cb: (...a: unknown[]) => void) => {
    asked.push(host);
    const all = (_opts as { all?: boolean } | undefined)?.all;
    if (all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
  }) as unknown as LookupFunction;
  const endpoints = cluster.endpoints.map((e) => e.replace('127.0.0.1', 'etcd-member.invalid'));
  const client = new EtcdClient({ endpoints, lookup, requestTimeoutMs: 2_000, retryForMs: 4_000 });
  clients.push(client);
  const storage = new EtcdStorage(client, '/lookup/', makeKeyring([dataKey]));
  await storage.put('a', 'through the lookup');
  expect((await storage.get('a'))?.toString()).toBe('through the lookup');
  expect(asked).toContain('etcd-member.invalid');
});

test('a lock taken without a lease gets the locker’s default (storage.etcd.lockLease)', async () => {
  const client = new EtcdClient({ endpoints: cluster.endpoints });
  clients.push(client);
  const locker = new EtcdLocker(client, '/default-lease/', 2_000);
  const lock = (await locker.acquire('site', { wait: false }))!;
  const granted = await client.call<{ TTL: string; grantedTTL: string }>('/v3/lease/timetolive', {
    ID: (await client.call<RangeResponse>('/v3/kv/range', { key: b64('/default-lease/.locks/site') }))
      .kvs![0]!.lease,
  });
  expect(granted.grantedTTL).toBe('2');
  await lock.release();
});
