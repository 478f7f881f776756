import type { FleetSettings } from '../config/types';
import type { DeployRecord, FleetRecords } from './records';

/**
 * When this node deploys the store's current version of one certificate: a pure function of
 * the shared records, the settings and the time, so every node reaches the same answer from
 * the same records and a test can check each case without a fleet.
 */

/** A failed version is tried again on the same node after this long (a new version: at once). */
export const FAILED_RETRY_MS = 15 * 60_000;

export interface Version {
  serial: string;
  fingerprint: string;
}

export type RolloutStep =
  /** This node serves the version (verified), or it failed and the retry is not due yet (`until`). */
  | { kind: 'done'; until?: Date }
  | { kind: 'deploy' }
  /** Not yet: the canary has not verified, or this node's stagger slot is later (`until`). */
  | { kind: 'wait'; until?: Date; why: string }
  /** The canary failed this version: nobody else deploys it. */
  | { kind: 'blocked'; why: string };

/** The canary: fleet.canary, else the first known node name in sorted order (this one included). */
export function canaryOf(settings: FleetSettings, nodes: readonly string[]): string {
  if (settings.canary) return settings.canary;
  return [...new Set([...nodes, settings.nodeName])].sort()[0]!;
}

function retryAt(record: DeployRecord): Date {
  return new Date(Date.parse(record.at) + FAILED_RETRY_MS);
}

/** The slot of `node` among the nodes other than the canary: 1 for the first in sorted order. */
function staggerSlot(node: string, canary: string, nodes: readonly string[]): number {
  const others = [...new Set([...nodes, node])].filter((n) => n !== canary).sort();
  return others.indexOf(node) + 1;
}

/**
 * `retryFailed`: a version that failed on this node is tried again now rather than
 * FAILED_RETRY_MS after the failure (the daemon sets it once after a start or a reload: the
 * operator may have fixed the deploy).
 */
export function decideRollout(
  settings: FleetSettings,
  version: Version,
  records: FleetRecords,
  cert: string,
  now: Date,
  retryFailed = false,
): RolloutStep {
  const byNode = records.deploys.get(cert);
  const mine = byNode?.get(settings.nodeName);
  if (mine?.fingerprint === version.fingerprint) {
    if (mine.status === 'verified') return { kind: 'done' };
    const at = retryAt(mine);
    if (!retryFailed && at.getTime() > now.getTime()) return { kind: 'done', until: at };
  }
  if (settings.rollout === 'all') return { kind: 'deploy' };
  const canary = canaryOf(settings, records.nodes);
  if (canary === settings.nodeName) return { kind: 'deploy' };
  const theirs = byNode?.get(canary);
  if (theirs?.fingerprint !== version.fingerprint)
    return { kind: 'wait', why: `waiting for the canary ${canary} to deploy serial ${version.serial}` };
  if (theirs.status !== 'verified')
    return {
      kind: 'blocked',
      why: `the canary ${canary} failed serial ${version.serial}: ${theirs.error ?? theirs.status}`,
    };
  const verifiedAt = Date.parse(theirs.verifiedAt ?? theirs.at);
  const slot = staggerSlot(settings.nodeName, canary, records.nodes);
  const until = new Date(verifiedAt + slot * settings.staggerMs);
  if (until.getTime() > now.getTime())
    return {
      kind: 'wait',
      until,
      why: `the canary verified; this node's turn (${slot}) is at ${until.toISOString()}`,
    };
  return { kind: 'deploy' };
}
