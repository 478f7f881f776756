import type { AgentConfig } from '../config/types';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CheckResult } from '../inspect/check';
import type { Finding } from '../inspect/findings';
import { CertStore } from '../store/cert-store';
import { createEtcdBackend } from '../store/etcd';
import { readFleetRecords, type DeployRecord } from './records';

/**
 * `certpilot check` on a fleet node: one row per known node (`fleet:<node>`), with a
 * `fleet-node-stale` finding for every certificate that node does not serve in the store's
 * current version. Sources: the shared deploy records (every node's), and this node's own
 * probes of its endpoints (the rows `check` already made), which catch a node whose record
 * says verified while an endpoint serves something else.
 *
 * A node whose record failed is critical (the rollout stopped there, or it went back);
 * a node that is only behind is a warning: during a canary rollout that is expected for a few
 * stagger intervals, and the message says which serial it has.
 */

interface Current {
  serial: string;
  fingerprint: string;
}

function staleFinding(cert: string, current: Current, record: DeployRecord | undefined): Finding | undefined {
  if (!record) {
    return {
      code: 'fleet-node-stale',
      severity: 'warning',
      message: `${cert}: no deploy recorded; current serial ${current.serial}`,
    };
  }
  if (record.fingerprint === current.fingerprint && record.status === 'verified') return undefined;
  if (record.fingerprint === current.fingerprint) {
    const serving = record.servingSerial ? `serves ${record.servingSerial}` : 'serves an unknown version';
    return {
      code: 'fleet-node-stale',
      severity: 'critical',
      message: `${cert}: deploy of current serial ${current.serial} ${record.status} (${record.error ?? 'no detail'}); ${serving}`,
    };
  }
  const serving =
    record.status === 'verified' ? record.serial : (record.servingSerial ?? 'an unknown version');
  return {
    code: 'fleet-node-stale',
    severity: 'warning',
    message: `${cert}: serves ${serving}, current serial is ${current.serial} (record of ${record.at})`,
  };
}

/**
 * This node's own probes: an endpoint serving another leaf than the store's current version
 * while this node's record says it verified that version (the record and the server disagree:
 * someone replaced the files, or the server was restarted with old ones). When the record
 * already says the node is behind, its finding says so and the probe adds nothing.
 */
function probeFindings(
  results: readonly CheckResult[],
  currents: ReadonlyMap<string, Current>,
  mine: ReadonlyMap<string, DeployRecord | undefined>,
): Finding[] {
  const out: Finding[] = [];
  for (const r of results) {
    if (r.source !== 'endpoint' || !r.managed || !r.certificate) continue;
    const current = currents.get(r.name);
    if (!current || r.certificate.fingerprint256 === current.fingerprint) continue;
    if (staleFinding(r.name, current, mine.get(r.name))) continue;
    out.push({
      code: 'fleet-node-stale',
      severity: 'critical',
      message: `${r.name}: ${r.target} serves serial ${r.certificate.serial}, current serial is ${current.serial} (probed from this node)`,
    });
  }
  return out;
}

const RANK = { ok: 0, unknown: 1, warning: 2, critical: 3 } as const;

function rowOf(node: string, target: string, findings: Finding[]): CheckResult {
  let status: CheckResult['status'] = 'ok';
  for (const f of findings) if (f.severity !== 'info' && RANK[f.severity] > RANK[status]) status = f.severity;
  return { name: `fleet:${node}`, managed: false, source: 'file', target, status, findings };
}

/** The fleet rows for `check` (empty without a fleet section). */
export async function fleetCheckRows(
  config: AgentConfig,
  results: readonly CheckResult[],
  opts: { log: Logger; signal?: AbortSignal },
): Promise<CheckResult[]> {
  const fleet = config.fleet;
  if (!fleet || !config.storage.etcd) return [];
  const backend = createEtcdBackend(config.storage.etcd);
  const target = (node: string): string => `etcd:${backend.storage.prefix}fleet/deploy/*/${node}`;
  try {
    const store = new CertStore({
      stateDir: config.storage.stateDir,
      archiveDepth: 0,
      storage: backend.storage,
    });
    const records = await readFleetRecords(backend.client, backend.storage.prefix, opts.signal);
    const currents = new Map<string, Current>();
    for (const spec of config.certificates) {
      const info = await store.readInfo(spec.name);
      if (info) currents.set(spec.name, { serial: info.serial, fingerprint: info.fingerprint256 });
    }
    const nodes = [...new Set([...records.nodes, fleet.nodeName])].sort();
    return nodes.map((node) => {
      const findings: Finding[] = [];
      for (const [cert, current] of currents) {
        const f = staleFinding(cert, current, records.deploys.get(cert)?.get(node));
        if (f) findings.push(f);
      }
      if (node === fleet.nodeName) {
        const mine = new Map(
          [...currents.keys()].map((cert) => [cert, records.deploys.get(cert)?.get(node)]),
        );
        findings.push(...probeFindings(results, currents, mine));
      }
      return rowOf(node, target(node), findings);
    });
  } catch (err) {
    opts.log.warn('fleet records unreadable', { error: describeError(err) });
    const finding: Finding = {
      code: 'fleet-node-stale',
      severity: 'unknown',
      message: `cannot read the fleet's deploy records: ${describeError(err)}`,
    };
    return [{ ...rowOf(fleet.nodeName, target(fleet.nodeName), [finding]), status: 'unknown' }];
  } finally {
    backend.close();
  }
}
