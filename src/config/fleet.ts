import os from 'node:os';
import type { IssueList } from './issues';
import type { LeafValues } from './schema';
import type { FleetSettings, StorageSettings } from './types';

/**
 * The `fleet:` section: schema leaves only (their one-line docs are in schema.ts). A fleet is
 * several `certpilot run` daemons sharing one etcd store, so the section means nothing without
 * `storage.backend: etcd`. The section's presence turns fleet mode on (`fleet: {}` takes every
 * default); without it no fleet code is loaded.
 */

/** Node names are etcd key segments and appear in logs and `certificates`: short and plain. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Polling faster than this only loads etcd: a deploy takes seconds anyway. */
const MIN_POLL_INTERVAL_MS = 100;

/** The host name as a node name: its first label when the full name is not a valid one. */
export function defaultNodeName(): string {
  const host = os.hostname();
  if (NODE_NAME.test(host)) return host;
  const label = host.split('.')[0]?.replace(/[^A-Za-z0-9._-]/g, '-') ?? '';
  return NODE_NAME.test(label) ? label : 'node';
}

export function parseFleet(
  values: LeafValues,
  present: boolean,
  storage: StorageSettings,
  issues: IssueList,
): FleetSettings | undefined {
  if (!present) return undefined;
  if (storage.backend !== 'etcd') {
    issues.add('fleet', 'needs storage.backend: etcd (the nodes of a fleet share its store)');
    return undefined;
  }
  const nodeName = values.get('fleet.nodeName') ?? defaultNodeName();
  if (!NODE_NAME.test(nodeName))
    issues.add(
      'fleet.nodeName',
      'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  const rollout = values.get('fleet.rollout') ?? 'all';
  if (rollout !== 'all' && rollout !== 'canary')
    issues.add('fleet.rollout', `must be "all" or "canary", not ${JSON.stringify(rollout)}`);
  const canary = values.get('fleet.canary');
  if (canary !== undefined && !NODE_NAME.test(canary))
    issues.add('fleet.canary', 'must be a node name (letters, digits, ".", "_" or "-")');
  const pollIntervalMs = values.get('fleet.pollInterval') ?? 10_000;
  if (pollIntervalMs < MIN_POLL_INTERVAL_MS)
    issues.add('fleet.pollInterval', `must be at least ${MIN_POLL_INTERVAL_MS}ms`);
  return {
    nodeName,
    rollout: rollout === 'canary' ? 'canary' : 'all',
    ...(canary !== undefined ? { canary } : {}),
    staggerMs: values.get('fleet.stagger') ?? 30_000,
    pollIntervalMs,
  };
}
