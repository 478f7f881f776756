import type { FleetSettings } from '../../src/config/types';
import { canaryOf, decideRollout, FAILED_RETRY_MS } from '../../src/fleet';
import type { DeployRecord, FleetRecords } from '../../src/fleet';

/** The rollout decision, case by case: every node computes it from the same shared records. */

const NOW = new Date('2026-11-30T12:00:00Z');
const V2 = { serial: '02', fingerprint: 'f2' };
const settings = (over: Partial<FleetSettings> = {}): FleetSettings => ({
  nodeName: 'b',
  rollout: 'canary',
  staggerMs: 30_000,
  pollIntervalMs: 10_000,
  ...over,
});

function rec(node: string, over: Partial<DeployRecord> = {}): DeployRecord {
  return {
    node,
    cert: 'www',
    serial: '01',
    fingerprint: 'f1',
    status: 'verified',
    at: '2026-11-30T11:00:00.000Z',
    verifiedAt: '2026-11-30T11:00:00.000Z',
    ...over,
  };
}

function records(...list: DeployRecord[]): FleetRecords {
  const byNode = new Map(list.map((r) => [r.node, r]));
  return {
    nodes: [...new Set(['a', 'b', 'c', ...byNode.keys()])].sort(),
    deploys: new Map([['www', byNode]]),
  };
}

test('the canary is fleet.canary, else the first node name in sorted order (this node included)', () => {
  expect(canaryOf(settings({ canary: 'c' }), ['a', 'b', 'c'])).toBe('c');
  expect(canaryOf(settings(), ['c', 'b', 'd'])).toBe('b');
  expect(canaryOf(settings({ nodeName: 'a' }), ['c', 'b'])).toBe('a');
});

test('rollout all: a node deploys a version it has not verified, and is done once it has', () => {
  const all = settings({ rollout: 'all' });
  expect(decideRollout(all, V2, records(rec('b')), 'www', NOW)).toEqual({ kind: 'deploy' });
  expect(decideRollout(all, V2, records(), 'www', NOW)).toEqual({ kind: 'deploy' });
  expect(decideRollout(all, V2, records(rec('b', { ...V2 })), 'www', NOW)).toEqual({ kind: 'done' });
});

test('a version that failed on this node is tried again after FAILED_RETRY_MS, not every poll', () => {
  const all = settings({ rollout: 'all' });
  const failedAt = new Date(NOW.getTime() - 60_000);
  const failed = rec('b', { ...V2, status: 'failed', at: failedAt.toISOString() });
  expect(decideRollout(all, V2, records(failed), 'www', NOW)).toEqual({
    kind: 'done',
    until: new Date(failedAt.getTime() + FAILED_RETRY_MS),
  });
  const later = new Date(failedAt.getTime() + FAILED_RETRY_MS);
  expect(decideRollout(all, V2, records(failed), 'www', later)).toEqual({ kind: 'deploy' });
  // After a start or a reload (the deploy may have been fixed): at once.
  expect(decideRollout(all, V2, records(failed), 'www', NOW, true)).toEqual({ kind: 'deploy' });
});

test('canary: the canary deploys at once; the others wait for its verified record', () => {
  expect(decideRollout(settings({ nodeName: 'a' }), V2, records(rec('a')), 'www', NOW)).toEqual({
    kind: 'deploy',
  });
  const waiting = decideRollout(settings(), V2, records(rec('a')), 'www', NOW);
  expect(waiting).toMatchObject({ kind: 'wait' });
  expect(waiting.kind === 'wait' && waiting.until).toBeFalsy();
});

test('canary verified: the k-th other node deploys k × stagger after the canary verified', () => {
  const verifiedAt = new Date(NOW.getTime() - 40_000);
  const canary = rec('a', { ...V2, verifiedAt: verifiedAt.toISOString(), at: verifiedAt.toISOString() });
  // b is the first of the others (slot 1): 30 s after, already past.
  expect(decideRollout(settings(), V2, records(canary), 'www', NOW)).toEqual({ kind: 'deploy' });
  // c is the second (slot 2): 60 s after, 20 s from now.
  expect(decideRollout(settings({ nodeName: 'c' }), V2, records(canary), 'www', NOW)).toMatchObject({
    kind: 'wait',
    until: new Date(verifiedAt.getTime() + 60_000),
  });
});

test('a failed canary blocks the version for everyone else, whatever the stagger', () => {
  for (const status of ['failed', 'rolled-back'] as const) {
    const canary = rec('a', { ...V2, status, error: 'nginx -t failed' });
    const step = decideRollout(settings(), V2, records(canary), 'www', NOW);
    expect(step).toMatchObject({ kind: 'blocked' });
    expect(step.kind === 'blocked' && step.why).toContain('nginx -t failed');
  }
  // A newer version starts over: the failure was about f2, not f3.
  const canary = rec('a', { ...V2, status: 'failed' });
  expect(
    decideRollout(settings(), { serial: '03', fingerprint: 'f3' }, records(canary), 'www', NOW),
  ).toMatchObject({
    kind: 'wait',
  });
});
