import { planReadinessAlerts } from '../../src/daemon/readiness-schedule';
import type { ReadinessCheck, ReadinessReport } from '../../src/inspect/readiness';

/** planReadinessAlerts on its own: which alert each transition of a check calls for. */

function report(checks: Record<string, readonly ReadinessCheck[]>): ReadinessReport {
  return {
    checkedAt: new Date(0),
    results: Object.entries(checks).map(([name, c]) => ({ name, checks: c, findings: [] })),
  };
}

const ok = (check: ReadinessCheck['check']): ReadinessCheck => ({ check, ok: true });
const bad = (check: ReadinessCheck['check'], message: string): ReadinessCheck => ({
  check,
  ok: false,
  message,
});

function run(steps: ReadinessReport[]): string[] {
  let failing: Record<string, string> = {};
  const out: string[] = [];
  for (const r of steps) {
    const plan = planReadinessAlerts(r, failing, () => ['web.example.test']);
    out.push(...plan.alerts.map((a) => `${a.kind} ${a.cert}: ${a.message}`));
    failing = plan.failing;
  }
  return out;
}

test('a failing check alerts once (another reason is the same failure) and resolves once', () => {
  expect(
    run([
      report({ web: [ok('account'), bad('caa', 'CAA names otherca.test')] }),
      report({ web: [ok('account'), bad('caa', 'CAA lookup failed: SERVFAIL')] }),
      report({ web: [ok('account'), ok('caa')] }),
      report({ web: [ok('account'), ok('caa')] }),
    ]),
  ).toEqual([
    'readiness-failed web: next renewal would fail: caa check: CAA names otherca.test',
    'readiness-resolved web: caa check passes again (it failed: CAA names otherca.test)',
  ]);
});

test('a check that did not run keeps its state; a certificate no longer configured is forgotten', () => {
  const first = planReadinessAlerts(
    report({ web: [bad('dns-write', 'BADSIG')], api: [bad('caa', 'no')] }),
    {},
    () => [],
  );
  expect(first.alerts).toHaveLength(2);
  // dns-write is skipped after a failed cname check: neither repeated nor resolved.
  const second = planReadinessAlerts(report({ web: [bad('cname', 'moved')] }), first.failing, () => []);
  expect(second.alerts.map((a) => a.message)).toEqual(['next renewal would fail: cname check: moved']);
  expect(second.failing).toEqual({ 'web|dns-write': 'BADSIG', 'web|cname': 'moved' });
});
