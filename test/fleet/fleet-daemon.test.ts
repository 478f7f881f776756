import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../helpers/testbed';
import {
  loggedTimes,
  marks,
  IDLE_SYNC,
  startFleetWorld,
  writePlaceholder,
  type FleetWorld,
} from './fleet-world';

const execFileP = promisify(execFile);

/**
 * One orders, every node deploys: three `certpilot run` processes (the built CLI) with the same
 * 20 certificates share a real 3-member etcd cluster. Each certificate is ordered exactly once
 * in the whole fleet (counted at Pebble through the proxy), and every node's own nginx serves
 * every new certificate (probed over TLS), with every node's deploy record verified in etcd.
 */

const CERTS = 20;
let world: FleetWorld;

beforeAll(async () => {
  world = await startFleetWorld({
    certs: CERTS,
    nodes: ['a', 'b', 'c'],
    fleet: { rollout: 'all', pollInterval: '500ms' },
  });
  for (const node of world.nodes) await world.writeNodeConfig(node);
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

test('20 certificates on 3 nodes: exactly 20 orders, and every node serves every new certificate', async () => {
  for (const node of world.nodes) world.startNode(node);
  // Every certificate installed once in the fleet (by whichever node held its lock).
  await loggedTimes(world.nodes, ['"message":"certificate installed"'], CERTS);
  const mark = marks(world.nodes);
  // Two idle syncs per node after that: the second one started after the last install.
  for (const [i, node] of world.nodes.entries()) await loggedTimes([node], IDLE_SYNC, 2, [mark[i]!]);

  expect(world.proxy.orders.filter((o) => o.status === 201)).toHaveLength(CERTS);
  expect(world.proxy.orders).toHaveLength(CERTS);
  const current = await world.currentSerials();
  expect(current.size).toBe(CERTS);

  const records = await world.records();
  for (const node of world.nodes) {
    await node.nginx.settled();
    for (const cert of world.certNames) {
      expect(await world.served(node, cert)).toBe(current.get(cert));
      expect(records.deploys.get(cert)?.get(node.name)).toMatchObject({
        status: 'verified',
        serial: current.get(cert),
      });
    }
  }
  // Nobody ordered twice: the other nodes found each certificate locked or already renewed.
  const installs = world.nodes.map(
    (n) => n.daemon!.log().split('"message":"certificate installed"').length - 1,
  );
  expect(installs.reduce((a, b) => a + b, 0)).toBe(CERTS);

  // `certpilot certificates` on one node shows every node's deployed version.
  const listed = await runCli(['certificates', '--json', '--config', world.nodes[0]!.config]);
  const rows = (
    JSON.parse(listed.stdout) as {
      certificates: { name: string; nodes: Record<string, { serial: string; status: string }> }[];
    }
  ).certificates;
  for (const row of rows) {
    expect(Object.keys(row.nodes).sort()).toEqual(['a', 'b', 'c']);
    for (const n of Object.values(row.nodes))
      expect(n).toMatchObject({ serial: current.get(row.name), status: 'verified' });
  }

  // `check` on a node: a row per node, nothing stale.
  const quiet = await runCli(['check', '--json', '--config', world.nodes[2]!.config]);
  const fleetRows = (json: string) =>
    (
      JSON.parse(json) as {
        results: { name: string; status: string; findings: { code: string; message: string }[] }[];
      }
    ).results.filter((r) => r.name.startsWith('fleet:'));
  expect(fleetRows(quiet.stdout).map((r) => [r.name, r.status, r.findings])).toEqual([
    ['fleet:a', 'ok', []],
    ['fleet:b', 'ok', []],
    ['fleet:c', 'ok', []],
  ]);

  // c's nginx is made to serve something else for c0 behind certpilot's back: c's record still
  // says verified, and only c's own probe can tell.
  const c = world.nodes[2]!;
  await writePlaceholder(path.join(c.dir, 'out', 'c0'), world.hostOf('c0'));
  const [nginx, ...reload] = c.nginx.reloadArgv() as [string, ...string[]];
  const oldWorkers = await c.nginx.workerPids();
  await execFileP(nginx, reload);
  // Until the old worker has exited it can still take a connection and serve c0's current
  // certificate: `check` must meet only the new configuration.
  await c.nginx.replaced(oldWorkers);
  expect(await world.served(c, 'c0')).not.toBe(current.get('c0'));
  const probed = fleetRows((await runCli(['check', '--json', '--config', c.config])).stdout);
  const rowC = probed.find((r) => r.name === 'fleet:c')!;
  expect(rowC.status).toBe('critical');
  expect(rowC.findings).toHaveLength(1);
  expect(rowC.findings[0]).toMatchObject({ code: 'fleet-node-stale' });
  expect(rowC.findings[0]!.message).toContain(
    `current serial is ${current.get('c0')} (probed from this node)`,
  );
  expect(probed.filter((r) => r.name !== 'fleet:c').map((r) => r.status)).toEqual(['ok', 'ok']);
}, 300_000);
