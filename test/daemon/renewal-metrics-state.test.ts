import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfig } from '../../src/config/types';
import { silentLogger } from '../../src/core/logger';
import { RenewalStateTracker } from '../../src/daemon/renewal-state';
import { redeployDelay } from '../../src/daemon/self-heal';
import type { CertOutcome } from '../../src/renew/run';
import { emptyState, StateStore } from '../../src/state/store';

/**
 * The renewal-state rows /metrics is built from, against real state files: the guard comes
 * from each cycle's decision, backoff and ARI window from the persisted state, which an idle
 * cycle (nothing done, same serial) does not read again. And the redeploy backoff's steps.
 */
const HOUR = 3_600_000;
let dir: string;
let config: AgentConfig;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-renewal-state-'));
  config = { storage: { stateDir: dir, backend: 'file' } } as unknown as AgentConfig;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function outcome(
  status: CertOutcome['status'],
  reason: CertOutcome['decision']['reason'],
  renewAt: Date,
): CertOutcome {
  return {
    name: 'web',
    status,
    serial: 'aa01',
    decision: { name: 'web', renew: false, reason, detail: '', renewAt },
  };
}

test('guard from the decision; backoff and ARI window from the state file, read again only after work', async () => {
  const now = new Date();
  const states = new StateStore(dir);
  const window = { start: new Date(now.getTime() + 48 * HOUR), end: new Date(now.getTime() + 50 * HOUR) };
  const retryAt = new Date(now.getTime() + 2 * HOUR);
  await states.write(
    {
      ...emptyState('web'),
      failures: { count: 1, nextRetryAt: retryAt },
      ari: { certId: 'x', window, nextPollAt: window.start, errorCount: 0 },
    },
    now,
  );
  const tracker = new RenewalStateTracker(silentLogger);
  const planned = new Date(now.getTime() + HOUR);
  await tracker.observe(config, [outcome('failed', 'guarded', planned)]);
  expect(tracker.rows(new Map([['web', 2]]), new Map())).toEqual([
    {
      name: 'web',
      guarded: true,
      nextRenewal: retryAt,
      backoffUntil: retryAt,
      ariWindow: window,
      redeployFailures: 2,
    },
  ]);

  // The state changes behind the tracker's back: an idle cycle does not read it...
  await states.write({ ...emptyState('web') }, now);
  await tracker.observe(config, [outcome('valid', 'valid', planned)]);
  expect(tracker.rows(new Map(), new Map())).toEqual([
    {
      name: 'web',
      guarded: false,
      nextRenewal: retryAt,
      backoffUntil: retryAt,
      ariWindow: window,
      redeployFailures: 0,
    },
  ]);
  // ...a cycle that worked on the certificate does.
  await tracker.observe(config, [outcome('renewed', 'valid', planned)]);
  expect(tracker.rows(new Map(), new Map([['web', { success: 1, failure: 0 }]]))).toEqual([
    {
      name: 'web',
      guarded: false,
      nextRenewal: planned,
      redeployFailures: 0,
      redeploys: { success: 1, failure: 0 },
    },
  ]);
  // A certificate no longer in the outcomes (removed from the configuration) is dropped.
  await tracker.observe(config, []);
  expect(tracker.rows(new Map(), new Map())).toEqual([]);
});

test('redeploy backoff: the first wait, doubling, at most the endpoint interval', () => {
  const first = 5 * 60_000;
  expect([1, 2, 3, 4, 5, 6, 40].map((n) => redeployDelay(n, first, HOUR))).toEqual([
    first,
    2 * first,
    4 * first,
    8 * first,
    HOUR,
    HOUR,
    HOUR,
  ]);
});
