import crypto from 'node:crypto';
import { EtcdClient } from '../../src/store/etcd/client';
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
