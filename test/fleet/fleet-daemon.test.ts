import { loggedTimes, marks, IDLE_SYNC, startFleetWorld, type FleetWorld } from './fleet-world';
import { runCli } from '../helpers/testbed';

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
}, 300_000);
