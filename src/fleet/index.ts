import type { AgentConfig, CertificateSpec } from '../config/types';

/**
 * Fleet mode: several `certpilot run` daemons with the same certificates and
 * `storage.backend: etcd` + a `fleet:` section. Loaded only then (the daemon and the CLI import
 * this module dynamically), so a single host never loads it.
 *
 * Design (docs/fleet.md has the operator's view):
 *
 * - Node identity: `fleet.nodeName`, by default the host name. It names the node's records;
 *   two nodes with the same name would overwrite each other's, so it must be unique.
 *
 * - What is shared (etcd): certificates and their versions, scheduling state (backoff, the
 *   exact-set guard's order history, the ARI window), the challenge journal, the locks, and
 *   the fleet records (./records.ts): per certificate and node the version the node deployed,
 *   its fingerprint, when it verified, and the error. What stays local: the ACME account
 *   (each node reads its own; a fleet shares one account by shipping the same files), the
 *   outputs, the local deploy state (src/state/deploy-state.ts) and kept versions.
 *
 * - One orders, all deploy: every node runs the renewal cycle as usual (plan from the shared
 *   state; a due certificate is tried under its lock without waiting, so exactly one node
 *   orders and the others see `busy`, then `valid`), but with the configuration returned by
 *   renewConfigOf: no outputs and no deploy work. The cycle thus orders and installs into the
 *   store and never deploys, and the settings fingerprint that resets a backoff is the same
 *   on every node even when their deploy steps differ (a canary with a broken step must not
 *   reset the fleet's backoff at each of its cycles).
 *
 * - Every node deploys (./agent.ts): a loop beside the renewal cycle reads, every
 *   `fleet.pollInterval` and right after each renewal cycle, the store's `current` revisions
 *   and the fleet records (two range requests whatever the number of certificates). Where the
 *   store's version differs from the node's own record, the node writes its outputs, runs its
 *   deploy steps and verifies its endpoints (./deploy-node.ts), then writes its record.
 *   Polling rather than an etcd watch: the gateway's watch is a streaming POST that must be
 *   kept open, re-established after a member fails and resumed from a revision; a poll is two
 *   small requests, survives failover through the client's ordinary retries, and the delay it
 *   adds (one poll interval) is small next to a deploy. bench/fleet-bench.ts measures it.
 *
 * - Canary (`fleet.rollout: canary`, ./rollout.ts): the canary (`fleet.canary`, else the first
 *   known node name sorted) deploys first. The others wait until its record shows the version
 *   verified; then the k-th of them (sorted by name) deploys k × `fleet.stagger` after that.
 *   A canary that fails records it and alerts `fleet-canary-failed`; no other node deploys
 *   that version, so they keep serving the previous one. A failed version is tried again on the
 *   same node after FAILED_RETRY_MS; a new version starts over.
 *
 * - Fleet check (./check.ts): `certpilot check` on a fleet node reads the records and adds a
 *   `fleet-node-stale` finding for every node whose record is older than the store's current
 *   version or failed, plus its own endpoints' probe when this node's record claims the
 *   version but the endpoint serves another.
 */

export { FleetAgent, type SyncSummary } from './agent';
export { fleetCheckRows } from './check';
export { readFleetRecords, type DeployRecord, type FleetRecords } from './records';
export { canaryOf, decideRollout, FAILED_RETRY_MS, type RolloutStep } from './rollout';

const NO_HOOKS = { pre: [], deploy: [], post: [] } as const;

function withoutDeploy(spec: CertificateSpec): CertificateSpec {
  const s = spec as CertificateSpec & { hooks?: { pre: unknown[]; post: unknown[] } };
  return {
    ...spec,
    outputs: [],
    endpoints: [],
    deploy: [],
    rollback: false,
    ...(s.hooks ? { hooks: { ...s.hooks, deploy: [] } } : {}),
  } as CertificateSpec;
}

/**
 * The configuration the renewal cycle runs with on a fleet node: the same certificates without
 * outputs, deploy steps, deploy hooks or endpoints (the agent deploys), so a renewal orders and
 * installs into the shared store only.
 */
export function renewConfigOf(config: AgentConfig): AgentConfig {
  return {
    ...config,
    certificates: config.certificates.map(withoutDeploy),
    ...(config.hooks ? { hooks: { ...config.hooks, deploy: NO_HOOKS.deploy } } : {}),
  };
}
