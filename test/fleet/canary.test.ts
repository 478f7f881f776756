import { runCli } from '../helpers/testbed';
import { logged, loggedTimes, marks, IDLE_SYNC, startFleetWorld, type FleetWorld } from './fleet-world';

/**
 * Canary rollout on a real fleet (3 `certpilot run` processes, 3-member etcd, Pebble, each node
 * its own nginx): the canary deploys a new version first; when its deploy is broken, it records
 * the failure and alerts fleet-canary-failed, and the other nodes never deploy that version:
 * they keep serving the previous one. `certpilot check` on a node names the stale nodes.
 */

const CERTS = 2;
let world: FleetWorld;

beforeAll(async () => {
  world = await startFleetWorld({
    certs: CERTS,
    nodes: ['a', 'b', 'c'],
    fleet: { rollout: 'canary', canary: 'a', stagger: '200ms', pollInterval: '300ms' },
  });
  for (const node of world.nodes) await world.writeNodeConfig(node);
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

test('first version: the canary, then the others; a broken canary deploy stops the rollout', async () => {
  for (const node of world.nodes) world.startNode(node);
  await loggedTimes(world.nodes, ['"message":"certificate installed"'], CERTS);
  let mark = marks(world.nodes);
  for (const [i, node] of world.nodes.entries()) await loggedTimes([node], IDLE_SYNC, 2, [mark[i]!]);
  const first = await world.currentSerials();
  const records = await world.records();
  for (const cert of world.certNames) {
    const a = records.deploys.get(cert)!.get('a')!;
    const b = records.deploys.get(cert)!.get('b')!;
    const c = records.deploys.get(cert)!.get('c')!;
    for (const r of [a, b, c]) expect(r).toMatchObject({ status: 'verified', serial: first.get(cert) });
    // The others followed only after the canary verified, b one stagger later, c two.
    expect(Date.parse(b.verifiedAt!)).toBeGreaterThanOrEqual(Date.parse(a.verifiedAt!) + 200);
    expect(Date.parse(c.verifiedAt!)).toBeGreaterThanOrEqual(Date.parse(a.verifiedAt!) + 400);
  }

  // The canary's deploy breaks: a step that fails before nginx is reloaded.
  const canary = world.nodes[0]!;
  await world.stopNode(canary);
  await world.writeNodeConfig(canary, { extraSteps: [{ type: 'command', command: ['false'] }] });
  world.startNode(canary);
  mark = marks(world.nodes);

  // A new version of c0 enters the store: `renew --force` on b, a fleet node, orders and
  // installs only (b deploys it when the rollout lets it, like every node).
  const renewed = await runCli(['renew', '--force', 'c0', '--config', world.nodes[1]!.config]);
  expect(renewed.code).toBe(0);
  const second = await world.currentSerials();
  expect(second.get('c0')).not.toBe(first.get('c0'));

  const alert = await world.alerts.waitFor(
    (r) => (r.json as { kind?: string } | undefined)?.kind === 'fleet-canary-failed',
    60_000,
  );
  expect(alert.json).toMatchObject({ certificate: 'c0', serial: second.get('c0'), severity: 'error' });
  // b and c saw the failed canary and stopped (each logs it once), then kept polling.
  for (const [i, node] of world.nodes.slice(1).entries()) {
    await logged(node, ['rollout stopped: not deploying this version', '"cert":"c0"'], mark[i + 1]);
    await loggedTimes([node], ['"message":"fleet sync done"', '"blocked":1'], 2, [mark[i + 1]!]);
  }

  const after = await world.records();
  expect(after.deploys.get('c0')!.get('a')).toMatchObject({ serial: second.get('c0'), status: 'failed' });
  for (const node of world.nodes.slice(1)) {
    expect(after.deploys.get('c0')!.get(node.name)).toMatchObject({
      serial: first.get('c0'),
      status: 'verified',
    });
    await node.nginx.settled();
    expect(await world.served(node, 'c0')).toBe(first.get('c0'));
  }
  // The canary's nginx was never reloaded with the new files: it still serves the previous one.
  expect(await world.served(canary, 'c0')).toBe(first.get('c0'));

  // `check` on b: every node stale for c0 (a failed it: critical; b and c behind: warning).
  const check = await runCli(['check', '--json', '--config', world.nodes[1]!.config]);
  const rows = (
    JSON.parse(check.stdout) as {
      results: { name: string; status: string; findings: { code: string; message: string }[] }[];
    }
  ).results.filter((r) => r.name.startsWith('fleet:'));
  expect(rows.map((r) => r.name).sort()).toEqual(['fleet:a', 'fleet:b', 'fleet:c']);
  const row = (n: string) => rows.find((r) => r.name === `fleet:${n}`)!;
  expect(row('a')).toMatchObject({ status: 'critical' });
  expect(row('a').findings).toEqual([expect.objectContaining({ code: 'fleet-node-stale' })]);
  expect(row('a').findings[0]!.message).toContain(`c0: deploy of current serial ${second.get('c0')} failed`);
  for (const n of ['b', 'c']) {
    expect(row(n)).toMatchObject({ status: 'warning' });
    expect(row(n).findings[0]!.message).toContain(
      `c0: serves ${first.get('c0')}, current serial is ${second.get('c0')}`,
    );
  }
  expect(check.code).toBe(2);
}, 300_000);
