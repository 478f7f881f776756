import type { CheckResult } from '../../src/inspect/check';
import type { Finding } from '../../src/inspect/findings';
import { planReminders, type ReminderState } from '../../src/daemon/reminders';
import type { CertInfo } from '../../src/x509';

/** planReminders on its own: which alert each transition calls for, and what is kept. */

function row(fingerprint: string | undefined, codes: Finding['code'][]): CheckResult {
  return {
    name: 'web',
    managed: false,
    source: 'endpoint',
    target: 'web.example.test:443',
    status: codes.includes('critical') ? 'critical' : codes.includes('warning') ? 'warning' : 'ok',
    ...(fingerprint
      ? {
          certificate: {
            fingerprint256: fingerprint,
            serial: `S-${fingerprint}`,
            names: ['web.example.test'],
            notAfter: new Date('2027-01-01T00:00:00Z'),
          } as CertInfo,
        }
      : {}),
    findings: codes.map((code) => ({
      code,
      severity: code === 'warning' ? 'warning' : 'critical',
      message: code,
    })),
  };
}

function run(steps: CheckResult[]): string[] {
  let state: ReminderState = {};
  const kinds: string[] = [];
  for (const r of steps) {
    const plan = planReminders([r], state);
    kinds.push(...plan.alerts.map((a) => a.kind));
    state = plan.state;
  }
  return kinds;
}

test('warning once, critical once more for the same version, nothing while unreadable, resolved on renewal', () => {
  expect(
    run([
      row('A', ['warning']),
      row('A', ['warning']),
      row(undefined, ['probe-failed' as Finding['code']]),
      row('A', ['critical']),
      row('A', ['critical']),
      row('B', []),
      row('B', []),
    ]),
  ).toEqual(['expiry-warning', 'expiry-critical', 'expiry-resolved']);
});

test('a replacement that is itself past a threshold resolves the old version and alerts the new one', () => {
  expect(run([row('A', ['critical']), row('B', ['warning']), row('B', ['warning'])])).toEqual([
    'expiry-critical',
    'expiry-resolved',
    'expiry-warning',
  ]);
});

test('an expired certificate is critical; a row dropped from the config is forgotten without an alert', () => {
  const first = planReminders([row('A', ['expired'])], {});
  expect(first.alerts.map((a) => a.kind)).toEqual(['expiry-critical']);
  expect(first.alerts[0]).toMatchObject({ cert: 'web', serial: 'S-A' });
  expect(planReminders([], first.state)).toEqual({ alerts: [], state: {} });
});

test('a managed certificate is one reminder: its endpoints serving the stored version add none', () => {
  const stored: CheckResult = {
    ...row('A', ['critical']),
    managed: true,
    source: 'file',
    target: '/state/web.pem',
  };
  const same: CheckResult = { ...row('A', ['critical']), managed: true, source: 'endpoint' };
  const stale: CheckResult = {
    ...row('OLD', ['critical']),
    managed: true,
    source: 'endpoint',
    target: 'b:443',
  };
  const first = planReminders([stored, same, stale], {});
  expect(first.alerts.map((a) => `${a.kind} ${a.serial}`)).toEqual([
    'expiry-critical S-A',
    'expiry-critical S-OLD',
  ]);
  expect(planReminders([stored, same, stale], first.state).alerts).toEqual([]);
});
