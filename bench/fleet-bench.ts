import http from 'node:http';
import { IDLE_SYNC, loggedTimes, marks, startFleetWorld } from '../test/fleet/fleet-world';

/**
 * Fleet mode, end to end (issue #16): 3 `certpilot run` processes (the built CLI), a real
 * 3-member etcd cluster, Pebble + BIND, each node with its own nginx serving every certificate.
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/fleet-bench.ts [N=100] [rollout=all|canary]
 *
 * Reports: orders placed (counted at Pebble through the proxy; must be N), wall time from the
 * daemons' start until every node's record of every certificate is verified (each node probed
 * its own nginx for it), probes of every node agreeing, and etcd operations: every gRPC call
 * the members handled (the JSON gateway's requests included) during the rollout, per renewal,
 * and per idle poll afterwards.
 */

function metricsOf(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/metrics`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .once('error', reject);
  });
}

/** grpc_server_handled_total summed over methods and members: the cluster's client operations. */
async function etcdOps(
  endpoints: readonly string[],
): Promise<{ total: number; byMethod: Record<string, number> }> {
  const byMethod: Record<string, number> = {};
  let total = 0;
  for (const e of endpoints) {
    for (const line of (await metricsOf(e)).split('\n')) {
      const m = /^grpc_server_handled_total\{([^}]*)\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/.exec(line);
      if (!m) continue;
      const method = /grpc_method="([^"]+)"/.exec(m[1]!)?.[1] ?? '?';
      const n = Number(m[2]);
      byMethod[method] = (byMethod[method] ?? 0) + n;
      total += n;
    }
  }
  return { total, byMethod };
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100);
  const rollout = process.argv[3] === 'canary' ? 'canary' : 'all';
  const pollMs = 2_000;
  const world = await startFleetWorld({
    certs: n,
    nodes: ['a', 'b', 'c'],
    fleet: { rollout, stagger: '1s', pollInterval: `${pollMs}ms` },
  });
  try {
    for (const node of world.nodes) await world.writeNodeConfig(node);
    const before = await etcdOps(world.etcd.endpoints);
    const started = Date.now();
    for (const node of world.nodes) world.startNode(node);
    await loggedTimes(world.nodes, ['"message":"certificate installed"'], n);
    const installedMs = Date.now() - started;
    const mark = marks(world.nodes);
    for (const [i, node] of world.nodes.entries()) await loggedTimes([node], IDLE_SYNC, 2, [mark[i]!]);
    const records = await world.records();
    const current = await world.currentSerials();
    let lastVerified = 0;
    let verified = 0;
    for (const cert of world.certNames) {
      for (const node of world.nodes) {
        const r = records.deploys.get(cert)?.get(node.name);
        if (r?.status === 'verified' && r.serial === current.get(cert)) verified++;
        lastVerified = Math.max(lastVerified, Date.parse(r?.verifiedAt ?? '1970-01-01T00:00:00Z'));
      }
    }
    const during = await etcdOps(world.etcd.endpoints);
    let served = 0;
    for (const node of world.nodes) {
      await node.nginx.settled();
      for (const cert of world.certNames)
        if ((await world.served(node, cert)) === current.get(cert)) served++;
    }
    // Idle: the nodes poll; nothing changes. Counted over whole poll intervals.
    const idleStart = await etcdOps(world.etcd.endpoints);
    const idleMark = marks(world.nodes);
    await loggedTimes(world.nodes, ['"message":"fleet sync done"'], 3 * 5, idleMark);
    const idleEnd = await etcdOps(world.etcd.endpoints);
    const polls = world.nodes.reduce(
      (sum, node, i) =>
        sum + (node.daemon!.log().slice(idleMark[i]).split('"message":"fleet sync done"').length - 1),
      0,
    );
    const rolloutOps = during.total - before.total;
    console.log(
      JSON.stringify(
        {
          certificates: n,
          nodes: world.nodes.length,
          rollout,
          pollIntervalMs: pollMs,
          ordersPlaced: world.proxy.orders.length,
          allInstalledMs: installedMs,
          everyNodeVerifiedMs: lastVerified - started,
          recordsVerified: `${verified}/${n * world.nodes.length}`,
          probesServingCurrent: `${served}/${n * world.nodes.length}`,
          etcdOpsDuringRollout: rolloutOps,
          etcdOpsPerRenewal: Number((rolloutOps / n).toFixed(1)),
          etcdOpsByMethod: diff(during.byMethod, before.byMethod),
          etcdOpsPerIdlePoll: Number(((idleEnd.total - idleStart.total) / polls).toFixed(2)),
        },
        null,
        2,
      ),
    );
  } finally {
    await world.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
