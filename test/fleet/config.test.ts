import os from 'node:os';
import { describeConfig } from '../../src/config/load';
import { defaultNodeName } from '../../src/config/fleet';
import { renewConfigOf } from '../../src/fleet';
import { baseConfig, load, loadError, makeTempDir, paths, removeDir, writeConfig } from '../config/helpers';

/** The `fleet:` section: defaults, its dependency on the etcd backend, and what it refuses. */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

const etcd = {
  endpoints: ['http://127.0.0.1:2379'],
  encryptionKeys: [{ id: 'k1', file: '/etc/certpilot/k1' }],
};

function fleetConfig(fleet: unknown, backend: 'etcd' | 'file' = 'etcd'): string {
  const c = baseConfig(dir);
  c.storage = { ...c.storage, ...(backend === 'etcd' ? { backend, etcd } : {}) };
  return writeConfig(dir, { ...c, fleet });
}

test('no fleet section: no fleet settings (the single-host path)', async () => {
  const c = baseConfig(dir);
  c.storage = { ...c.storage, backend: 'etcd', etcd };
  expect((await load(writeConfig(dir, c))).fleet).toBeUndefined();
});

test('fleet: {} takes the defaults; the node name is the host name', async () => {
  const config = await load(fleetConfig({}));
  expect(config.fleet).toEqual({
    nodeName: defaultNodeName(),
    rollout: 'all',
    staggerMs: 30_000,
    pollIntervalMs: 10_000,
  });
  expect(os.hostname().startsWith(defaultNodeName())).toBe(true);
});

test('every option is read, and config check prints what it loaded', async () => {
  const config = await load(
    fleetConfig({ nodeName: 'web1', rollout: 'canary', canary: 'web2', stagger: '1m', pollInterval: '5s' }),
  );
  expect(config.fleet).toEqual({
    nodeName: 'web1',
    rollout: 'canary',
    canary: 'web2',
    staggerMs: 60_000,
    pollIntervalMs: 5_000,
  });
  expect(describeConfig(config).fleet).toEqual({
    nodeName: 'web1',
    rollout: 'canary',
    canary: 'web2',
    stagger: '1m',
    pollInterval: '5s',
  });
});

test('a fleet needs the etcd backend; bad values are named by path', async () => {
  expect(paths((await loadError(fleetConfig({}, 'file'))).issues)).toEqual(['fleet']);
  const err = await loadError(
    fleetConfig({ nodeName: 'web 1', rollout: 'some', canary: '../x', pollInterval: '1ms' }),
  );
  expect(paths(err.issues)).toEqual([
    'fleet.canary',
    'fleet.nodeName',
    'fleet.pollInterval',
    'fleet.rollout',
  ]);
});

test('the renewal cycle of a fleet node orders and installs only: no outputs, deploy steps, deploy hooks or endpoints', async () => {
  const c = baseConfig(dir);
  c.storage = { ...c.storage, backend: 'etcd', etcd };
  c.hooks = { pre: [['true']], deploy: [['true']], post: [['true']] };
  c.certificates[0].endpoints = [{ host: 'example.com', port: 443 }];
  c.certificates[0].deploy = [{ type: 'command', command: ['true'] }];
  c.certificates[0].hooks = { pre: [['true']], deploy: [['true']] };
  const config = await load(writeConfig(dir, { ...c, fleet: {} }));
  const renew = renewConfigOf(config) as unknown as {
    hooks: { pre: unknown[]; deploy: unknown[] };
    certificates: {
      outputs: unknown[];
      endpoints: unknown[];
      deploy: unknown[];
      hooks: { pre: unknown[]; deploy: unknown[] };
    }[];
  };
  expect(renew.hooks.deploy).toEqual([]);
  expect(renew.hooks.pre).toHaveLength(1);
  expect(renew.certificates[0]).toMatchObject({ outputs: [], endpoints: [], deploy: [] });
  expect(renew.certificates[0]!.hooks.deploy).toEqual([]);
  expect(renew.certificates[0]!.hooks.pre).toHaveLength(1);
  // The original is untouched: the fleet loop deploys with it.
  expect(config.certificates[0]!.outputs).toHaveLength(1);
});
