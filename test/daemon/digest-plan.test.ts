import { digestMessage, periodStart } from '../../src/daemon/digest';
import type { CheckResult } from '../../src/inspect/check';

/** The digest's schedule and text on their own. */

const T = Date.parse('2026-11-30T10:30:00Z');
const HOUR = 3_600_000;

test('daily at a UTC time: the period began at the last HH:MM passed', () => {
  const at8 = { atMinuteOfDay: 8 * 60 };
  expect(new Date(periodStart(at8, 0, T)).toISOString()).toBe('2026-11-30T08:00:00.000Z');
  const at12 = { atMinuteOfDay: 12 * 60 };
  expect(new Date(periodStart(at12, 0, T)).toISOString()).toBe('2026-11-29T12:00:00.000Z');
});

test('an interval: a new period once the last one is that old, else the same one', () => {
  const hourly = { intervalMs: HOUR };
  expect(periodStart(hourly, T - HOUR, T)).toBe(T);
  expect(periodStart(hourly, T - HOUR + 1, T)).toBe(T - HOUR + 1);
});

function row(name: string, status: CheckResult['status'], message?: string): CheckResult {
  return {
    name,
    managed: false,
    source: 'file',
    target: `/etc/ssl/${name}.pem`,
    status,
    findings: message ? [{ code: 'warning', severity: 'warning', message }] : [],
  };
}

test('lists what is not OK with its findings; nothing when everything is OK', () => {
  expect(digestMessage([row('a', 'ok'), row('b', 'ok')])).toBeUndefined();
  expect(
    digestMessage([row('a', 'ok'), row('b', 'warning', 'expires in 10 days'), row('c', 'unknown')]),
  ).toBe(
    [
      '2 of 3 item(s) not OK:',
      '- WARNING b (file /etc/ssl/b.pem): expires in 10 days',
      '- UNKNOWN c (file /etc/ssl/c.pem)',
    ].join('\n'),
  );
});
