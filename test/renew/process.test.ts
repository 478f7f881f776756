import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CertpilotError } from '../../src/core/errors';
import { withDeployConfig } from '../../src/config/deploy';
import { parseDeployConfig } from '../../src/config/deploy';
import type { AgentConfig } from '../../src/config/types';
import { emptyState } from '../../src/state/store';
import { NOW, World, certInfo, config } from './fakes';

/**
 * The per-certificate processor and the run around it, with every collaborator faked
 * (test/renew/fakes.ts): each branch of the executor, and one certificate's unexpected error
 * failing that certificate alone.
 */

const DAY = 86_400_000;
const cfgs: AgentConfig[] = [];
const cfg = (names: string[], over: Partial<AgentConfig> = {}): AgentConfig => {
  const c = config(names, over);
  cfgs.push(c);
  return c;
};
afterAll(() => {
  for (const c of cfgs) rmSync(c.storage.stateDir, { recursive: true, force: true });
});

function withHooks(base: AgentConfig, raw: Record<string, unknown>): AgentConfig {
  const { value, issues } = parseDeployConfig(raw, '');
  if (issues.length > 0) throw new Error(JSON.stringify(issues));
  return withDeployConfig(base, value) as unknown as AgentConfig;
}

test('success: a missing certificate is ordered, installed, deployed; state saved; lock released; clients closed', async () => {
  const w = new World();
  w.deploy.withWork.add('a');
  const report = await w.run(cfg(['a']));
  expect(report.ok).toBe(true);
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'renewed', decision: { reason: 'missing' } }]);
  expect(report.outcomes[0]!.serial).toBe(w.store.installed.get('a')!.info.serial);
  expect(w.acme.requests.map((r) => [r.name, r.domains])).toEqual([['a', ['a.example.test']]]);
  expect(w.deploy.runs).toEqual([
    { name: 'a', installed: true, previousSerial: undefined, rollbackTo: undefined },
  ]);
  const saved = w.states.states.get('a')!;
  expect(saved.orders).toHaveLength(1);
  expect(saved.lastSuccess?.serial).toBe(report.outcomes[0]!.serial);
  expect(w.locks.acquired).toEqual(['a']);
  expect(w.locks.held.size).toBe(0);
  expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
  expect(report.acmeRequests?.total).toBe(3);
});

test('nothing due: no lock, no write, no client opened', async () => {
  const w = new World();
  w.store.put('a', certInfo(['a.example.test'], 10));
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'valid' }]);
  expect(w.locks.acquired).toEqual([]);
  expect(w.states.writes).toEqual([]);
  expect(w.acmeOpened).toBe(0);
  expect(report.acmeRequests).toBeUndefined();
});

test('held back by backoff: waiting, no order, no lock', async () => {
  const w = new World();
  w.store.put('a', certInfo(['a.example.test'], 70));
  w.states.states.set('a', {
    ...emptyState('a'),
    failures: { count: 2, nextRetryAt: new Date(NOW.getTime() + 600_000), lastError: 'boom' },
  });
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'waiting', decision: { reason: 'backoff' } }]);
  // Still in date: waiting is not a failure of the run.
  expect(report.ok).toBe(true);
  expect(w.acmeOpened).toBe(0);
  expect(w.locks.acquired).toEqual([]);
});

test('guarded by the exact-set guard: failed with GUARDED, an alert, no order', async () => {
  const w = new World();
  w.store.put('a', certInfo(['a.example.test'], 70));
  const order = (d: number) => ({ at: new Date(NOW.getTime() - d * DAY), names: ['a.example.test'] });
  w.states.states.set('a', { ...emptyState('a'), orders: [order(1), order(2), order(3)] });
  const report = await w.run(cfg(['a']));
  expect(report.ok).toBe(false);
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'failed', errorCode: 'GUARDED' }]);
  expect(report.outcomes[0]!.error).toMatch(/already issued for exactly a\.example\.test/);
  expect(w.alerts.map((a) => [a.kind, a.cert])).toEqual([['renewal-failed', 'a']]);
  expect(w.acmeOpened).toBe(0);
  expect(w.locks.held.size).toBe(0);
});

test('a failing global pre hook: due certificates are not renewed; the others are untouched', async () => {
  const w = new World();
  w.store.put('fresh', certInfo(['fresh.example.test'], 10));
  w.hookErrors.set('hooks.pre', ['hooks.pre[0]: exited 1']);
  const report = await w.run(withHooks(cfg(['due', 'fresh']), { hooks: { pre: [['false']] } }));
  expect(report.ok).toBe(false);
  expect(report.hookErrors).toEqual(['hooks.pre[0]: exited 1']);
  expect(report.outcomes).toMatchObject([
    { name: 'due', status: 'failed', error: 'skipped: a pre hook failed' },
    { name: 'fresh', status: 'valid' },
  ]);
  expect(w.hookCalls.find((c) => c.base === 'hooks.pre')?.vars).toEqual({ CERTPILOT_CERT_NAMES: 'due' });
  expect(w.acmeOpened).toBe(0);
});

test("a certificate's own failing pre hook fails it alone", async () => {
  const w = new World();
  const base = cfg(['a', 'b']);
  w.hookErrors.set('certificates["a"].hooks.pre', ['pre of a: exited 2']);
  const report = await w.run(withHooks(base, { certificates: [{ name: 'a', hooks: { pre: [['false']] } }] }));
  expect(report.outcomes).toMatchObject([
    { name: 'a', status: 'failed', error: 'pre of a: exited 2' },
    { name: 'b', status: 'renewed' },
  ]);
  expect(w.acme.requests.map((r) => r.name)).toEqual(['b']);
});

test('redeploy: a pending deploy from an earlier run is finished without a new order', async () => {
  const w = new World();
  const info = certInfo(['a.example.test'], 10);
  w.store.put('a', info);
  w.deploy.withWork.add('a');
  w.deploy.pendingFor.add('a');
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([
    { name: 'a', status: 'deployed', serial: info.serial, deploy: { status: 'verified' } },
  ]);
  expect(w.deploy.runs).toEqual([
    { name: 'a', installed: false, previousSerial: 'PREV', rollbackTo: '/fake/archive/a/PREV' },
  ]);
  expect(w.acmeOpened).toBe(0);
  expect(w.locks.acquired).toEqual(['a']);
});

test('ARI poll: renewalInfo is fetched under the lock and saved; a later window means no order', async () => {
  const w = new World();
  w.store.put('a', certInfo(['a.example.test'], 10));
  w.renewalInfoUrl = 'https://ca.test/renewal-info';
  const start = new Date(NOW.getTime() + 30 * DAY);
  w.ariAnswer = {
    window: { start, end: new Date(start.getTime() + DAY) },
    retryAfterMs: 6 * 3_600_000,
    retryAfterFromServer: true,
  };
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'valid' }]);
  const saved = w.states.states.get('a')!;
  expect(saved.ari?.window?.start).toEqual(start);
  expect(w.locks.acquired).toEqual(['a']);
  expect(w.acmeOpened).toBe(0);
});

test('ARI poll: a window that has begun turns into an order that replaces the old certificate', async () => {
  const w = new World();
  w.store.put('a', certInfo(['a.example.test'], 10));
  w.renewalInfoUrl = 'https://ca.test/renewal-info';
  const start = new Date(NOW.getTime() - DAY);
  w.ariAnswer = {
    window: { start, end: new Date(NOW.getTime() - 1) },
    retryAfterMs: 6 * 3_600_000,
    retryAfterFromServer: true,
  };
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([{ name: 'a', status: 'renewed', decision: { reason: 'ari' } }]);
  expect(w.acme.requests[0]?.replaces).toMatch(/^aYhba4dGQEHhs3uEe6CuLN4ByNQ\./);
});

test('busy: another process holds the lock', async () => {
  const w = new World();
  w.locks.busy.add('a');
  const report = await w.run(cfg(['a']));
  expect(report.outcomes).toMatchObject([
    { name: 'a', status: 'busy', error: 'another certpilot process holds its lock' },
  ]);
  expect(report.ok).toBe(false);
});

describe('an unexpected error in one certificate', () => {
  test('state unreadable before planning: that one fails with the file and the fix; the others renew; clients closed', async () => {
    const w = new World();
    const c = cfg(['a', 'b', 'c']);
    const file = path.join(c.storage.stateDir, 'state', 'b.json');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '{}');
    const eacces = Object.assign(new Error(`EACCES: permission denied, open '${file}'`), {
      code: 'EACCES',
      syscall: 'open',
      path: file,
    });
    w.states.readErrors.set('b', [
      new CertpilotError('STORE_IO', `state: cannot read ${file}`, { cause: eacces }),
    ]);
    const report = await w.run(c);
    expect(report.outcomes.map((o) => [o.name, o.status])).toEqual([
      ['a', 'renewed'],
      ['b', 'failed'],
      ['c', 'renewed'],
    ]);
    const uid = process.getuid!();
    expect(report.outcomes[1]!.error).toBe(
      `state file ${file} is not readable by uid ${uid} (owned by root): fix with chown ${uid === 0 ? 'root' : String(uid)} ${file}`,
    );
    expect(report.outcomes[1]!.errorCode).toBe('STORE_IO');
    expect(w.alerts.filter((a) => a.cert === 'b').map((a) => a.kind)).toEqual(['renewal-failed', 'critical']);
    expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
    expect(report.ok).toBe(false);
  });

  test('thrown under the lock (second read): that one fails, its lock is released, the others renew', async () => {
    const w = new World();
    w.states.readErrors.set('b', [undefined, new TypeError('state decoder exploded')]);
    const report = await w.run(cfg(['a', 'b', 'c']));
    expect(report.outcomes.map((o) => [o.name, o.status, o.error])).toEqual([
      ['a', 'renewed', undefined],
      ['b', 'failed', 'state decoder exploded'],
      ['c', 'renewed', undefined],
    ]);
    expect(w.locks.acquired.sort()).toEqual(['a', 'b', 'c']);
    expect(w.locks.held.size).toBe(0);
    expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
  });

  test('the lock directory itself failing: that one fails, the others renew', async () => {
    const w = new World();
    w.locks.errors.set(
      'a',
      Object.assign(new Error('ENOSPC: no space left on device, open'), { code: 'ENOSPC' }),
    );
    const report = await w.run(cfg(['a', 'b']));
    expect(report.outcomes.map((o) => [o.name, o.status])).toEqual([
      ['a', 'failed'],
      ['b', 'renewed'],
    ]);
    expect(report.outcomes[0]!.error).toMatch(/ENOSPC/);
  });

  test('a failed order is an expected failure: backoff saved, alert sent, the others renew', async () => {
    const w = new World();
    w.acme.failures.set('a', new CertpilotError('ACME_PROBLEM', 'acme: order refused', { retryable: true }));
    const report = await w.run(cfg(['a', 'b']));
    expect(report.outcomes.map((o) => [o.name, o.status, o.errorCode])).toEqual([
      ['a', 'failed', 'ACME_PROBLEM'],
      ['b', 'renewed', undefined],
    ]);
    expect(w.states.states.get('a')!.failures.count).toBe(1);
    expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
  });

  test('an abort mid-order: the order fails as ABORTED, its lock is released, the clients are closed', async () => {
    const w = new World();
    const abort = new AbortController();
    w.acme.hang.add('a');
    w.acme.hanging = () => abort.abort();
    const report = await w.run(cfg(['a']), {}, abort.signal);
    expect(report.outcomes).toMatchObject([{ name: 'a', status: 'failed', errorCode: 'ABORTED' }]);
    expect(w.locks.held.size).toBe(0);
    expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
  });

  test('when the run itself throws, the ACME and DNS clients are still closed', async () => {
    const w = new World();
    w.runHooks = async (_h, base) => {
      if (base === 'hooks.post') throw new Error('hook runner broke');
      return [];
    };
    await expect(w.run(withHooks(cfg(['a']), { hooks: { post: [['true']] } }))).rejects.toThrow(
      'hook runner broke',
    );
    expect(w.acme.requests).toHaveLength(1);
    expect([w.acme.closed, w.solver.closed]).toEqual([1, 1]);
  });
});

test('dry run: plans from the first observation, takes no lock, opens nothing', async () => {
  const w = new World();
  w.store.put('fresh', certInfo(['fresh.example.test'], 10));
  const report = await w.run(cfg(['due', 'fresh']), { dryRun: true });
  expect(report.outcomes.map((o) => [o.name, o.status])).toEqual([
    ['due', 'planned'],
    ['fresh', 'valid'],
  ]);
  expect(w.locks.acquired).toEqual([]);
  expect(w.acmeOpened).toBe(0);
});
