import { ordersFor, sharedCertStore, startFailureWorld, startNode, type FailureWorld } from './failure-world';

/**
 * Lock holders that die or hang mid-order, on a real 3-member etcd cluster with Pebble and BIND:
 * `certpilot renew` processes (the fleet daemon renews through the same path) share the store.
 */
jest.setTimeout(120_000);

let w: FailureWorld;
beforeAll(async () => {
  w = await startFailureWorld();
});
afterAll(async () => {
  await w?.stop();
});

const cert = (name: string): unknown[] => [
  { name, domains: [`${name}.example.test`], dns: { provider: 'bind' } },
];

test('SIGKILL of the holder mid-order: another node renews once the lease ran out, no TXT value is left, one extra order at most', async () => {
  const certs = cert('killed');
  const domain = 'killed.example.test';
  const a = startNode(await w.nodeConfig('kill-a', certs), ['renew']);
  await a.logged('challenge records written');
  a.child.kill('SIGKILL');
  await a.exited;
  // The crash left its challenge value in the zone.
  expect(await w.tb.bind.queryTxt(`_acme-challenge.${domain}`)).toHaveLength(1);

  const b = startNode(await w.nodeConfig('kill-b', certs), ['renew']);
  expect({ code: await b.exited, log: b.log() }).toMatchObject({ code: 0 });
  // b found the lock held, waited for its lease, cleaned up after a (journal) and renewed.
  expect(b.log()).toContain('"message":"waiting for another certpilot process"');
  expect(b.log()).toContain('"message":"challenge records removed"');
  expect(await w.tb.bind.queryTxt(`_acme-challenge.${domain}`)).toEqual([]);
  // a's order and b's: the crash cost one order, no more.
  expect(ordersFor(w.proxy, domain)).toBe(2);
  const info = await sharedCertStore(w.backend(), '/nonexistent').readInfo('killed');
  expect(info?.names).toEqual([domain]);
});

test('SIGSTOP past the lease, takeover, SIGCONT: the late writer is refused, the store keeps the taker’s version', async () => {
  const certs = cert('paused');
  const domain = 'paused.example.test';
  const a = startNode(await w.nodeConfig('stop-a', certs), ['renew']);
  await a.logged('challenge records written');
  a.child.kill('SIGSTOP');

  const b = startNode(await w.nodeConfig('stop-b', certs), ['renew']);
  expect({ code: await b.exited, log: b.log() }).toMatchObject({ code: 0 });
  expect(b.log()).toContain('"message":"waiting for another certpilot process"');
  const store = sharedCertStore(w.backend(), '/nonexistent');
  const taker = await store.readInfo('paused');
  expect(taker).not.toBeNull();
  const state = await w.backend().storage.get('state/paused.json');

  a.child.kill('SIGCONT');
  const code = await a.exited;
  const log = a.log();
  expect({ code, log }).toMatchObject({ code: 1 });
  // a learnt it lost the lock, stopped its order and removed its own challenge value...
  expect(log).toContain('lock: \\"paused\\" was lost');
  expect(await w.tb.bind.queryTxt(`_acme-challenge.${domain}`)).toEqual([]);
  // ...and its late write (the scheduling state, written whatever happens) was refused.
  const refused = log.split('\n').find((l) => l.includes('"message":"renewal state not saved"'));
  expect(refused).toContain('lock: \\"paused\\" was lost');
  expect((await store.readInfo('paused'))?.serial).toBe(taker!.serial);
  expect(await w.backend().storage.get('state/paused.json')).toEqual(state);
  expect(ordersFor(w.proxy, domain)).toBe(2);
});
