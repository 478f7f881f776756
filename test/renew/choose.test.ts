import type { CertificateSpec } from '../../src/config/types';
import { DEFAULT_SCHEDULE_POLICY, type SchedulePolicy } from '../../src/plan/schedule';
import { chooseAction, needsLock, type ActionKind, type Observation } from '../../src/renew/choose';
import { emptyState, type CertState } from '../../src/state/store';
import type { CertInfo } from '../../src/x509';

/**
 * The chooser is pure: (observation, policy, options, now) -> action. One row per situation a
 * renewal run meets, including the precedence between them (guard first, ARI poll before
 * holding back, a due order before a pending redeploy).
 */

const at = (s: string): Date => new Date(s);

const SPEC: CertificateSpec = {
  name: 'www',
  domains: ['www.example.test', 'example.test'],
  keyType: 'ec-p256',
  reuseKey: false,
  domainProviders: {},
  outputs: [],
};

const CERT_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';

/** 90 days: fallback renewal (a third left) 2026-10-31, emergency (1/20 left) after 2026-11-25T12:00. */
const CERT: CertInfo = {
  pem: '',
  serial: '87654321',
  notBefore: at('2026-09-01T00:00:00Z'),
  notAfter: at('2026-11-30T00:00:00Z'),
  names: ['example.test', 'www.example.test'],
  subject: 'CN=www.example.test',
  issuer: 'CN=CA',
  fingerprint256: 'AA',
  keyType: 'ec-p256',
  selfSigned: false,
  authorityKeyId: '69885B6B87464041E1B37B847BA0AE2CDE01C8D4',
  serialDer: '0087654321',
};

const EMPTY = emptyState('www');
const backoff = (until: string, rateLimited = false): CertState => ({
  ...EMPTY,
  failures: { count: 2, nextRetryAt: at(until), lastError: 'boom', ...(rateLimited ? { rateLimited } : {}) },
});
const GUARDED: CertState = {
  ...EMPTY,
  orders: ['2026-10-26', '2026-10-28', '2026-10-31'].map((d) => ({
    at: at(`${d}T00:00:00Z`),
    names: ['example.test', 'www.example.test'],
  })),
};
const ari = (nextPollAt: string, chosenAt = '2026-11-09T00:00:00Z'): CertState => ({
  ...EMPTY,
  ari: {
    certId: CERT_ID,
    window: { start: at('2026-11-08T00:00:00Z'), end: at('2026-11-10T00:00:00Z') },
    chosenAt: at(chosenAt),
    nextPollAt: at(nextPollAt),
    errorCount: 0,
  },
});

interface Row {
  name: string;
  now: string;
  info?: CertInfo | null;
  state?: CertState;
  ariSupported?: boolean;
  deployPending?: boolean;
  journalPending?: boolean;
  force?: boolean;
  policy?: Partial<SchedulePolicy>;
  kind: ActionKind;
  reason?: string;
  lock: boolean;
}

const BEFORE = '2026-10-01T00:00:00Z'; // in date, before the fallback time
const DUE = '2026-11-01T00:00:00Z'; // after the fallback time

const ROWS: Row[] = [
  { name: 'nothing installed: order', now: BEFORE, info: null, kind: 'order', reason: 'missing', lock: true },
  { name: 'in date: nothing due, no lock', now: BEFORE, kind: 'nothing-due', reason: 'valid', lock: false },
  { name: 'fallback time reached: order', now: DUE, kind: 'order', reason: 'in-window', lock: true },
  { name: 'expired: order', now: '2026-12-01T00:00:00Z', kind: 'order', reason: 'expired', lock: true },
  { name: 'emergency: order', now: '2026-11-27T00:00:00Z', kind: 'order', reason: 'emergency', lock: true },
  { name: '--force on a valid certificate: order', now: BEFORE, force: true, kind: 'order', lock: true },
  {
    name: 'due but backing off: hold, no lock',
    now: DUE,
    state: backoff('2026-11-01T00:09:00Z'),
    kind: 'hold',
    reason: 'backoff',
    lock: false,
  },
  {
    name: 'due but rate-limited: hold',
    now: DUE,
    state: backoff('2026-11-01T03:00:00Z', true),
    kind: 'hold',
    reason: 'rate-limited',
    lock: false,
  },
  {
    name: 'backoff over: order',
    now: '2026-11-01T00:10:00Z',
    state: backoff('2026-11-01T00:09:00Z'),
    kind: 'order',
    lock: true,
  },
  {
    name: '--force skips the backoff: order',
    now: DUE,
    force: true,
    state: backoff('2026-11-01T00:09:00Z'),
    kind: 'order',
    lock: true,
  },
  {
    name: 'backoff while not due: nothing due (the failure is stale)',
    now: BEFORE,
    state: backoff('2026-10-01T00:09:00Z'),
    kind: 'nothing-due',
    lock: false,
  },
  {
    name: 'exact-set guard: guarded',
    now: DUE,
    state: GUARDED,
    kind: 'guarded',
    reason: 'guarded',
    lock: true,
  },
  {
    name: 'guard holds under --force too',
    now: DUE,
    state: GUARDED,
    force: true,
    kind: 'guarded',
    lock: true,
  },
  {
    name: 'guard beats a pending deploy',
    now: DUE,
    state: GUARDED,
    deployPending: true,
    kind: 'guarded',
    lock: true,
  },
  {
    name: 'deploy pending, not due: redeploy',
    now: BEFORE,
    deployPending: true,
    kind: 'redeploy',
    lock: true,
  },
  {
    name: 'deploy pending and due: order (a new version is deployed anyway)',
    now: DUE,
    deployPending: true,
    kind: 'order',
    lock: true,
  },
  {
    name: 'deploy pending while backing off: redeploy (no order needed)',
    now: DUE,
    state: backoff('2026-11-01T00:09:00Z'),
    deployPending: true,
    kind: 'redeploy',
    lock: true,
  },
  {
    name: 'deploy pending, nothing installed: order',
    now: BEFORE,
    info: null,
    deployPending: true,
    kind: 'order',
    lock: true,
  },
  {
    name: 'ARI supported, never polled: poll now',
    now: BEFORE,
    ariSupported: true,
    kind: 'poll-ari',
    reason: 'valid',
    lock: true,
  },
  {
    name: 'ARI polled, next poll later: nothing due',
    now: BEFORE,
    ariSupported: true,
    state: ari('2026-10-01T06:00:00Z'),
    kind: 'nothing-due',
    lock: false,
  },
  {
    name: 'ARI poll due: poll',
    now: '2026-10-02T00:00:00Z',
    ariSupported: true,
    state: ari('2026-10-01T06:00:00Z'),
    kind: 'poll-ari',
    lock: true,
  },
  {
    name: 'ARI chosen time reached: order',
    now: '2026-11-09T00:00:00Z',
    ariSupported: true,
    state: ari('2026-11-09T06:00:00Z'),
    kind: 'order',
    reason: 'ari',
    lock: true,
  },
  {
    name: 'ARI chosen time within the lookahead: order now',
    now: '2026-11-08T20:00:00Z',
    ariSupported: true,
    state: ari('2026-11-09T06:00:00Z'),
    policy: { lookaheadMs: 12 * 3_600_000 },
    kind: 'order',
    reason: 'ari',
    lock: true,
  },
  {
    name: 'ARI window later than the fallback: nothing due before it',
    now: '2026-11-05T00:00:00Z',
    ariSupported: true,
    state: ari('2026-11-06T00:00:00Z'),
    kind: 'nothing-due',
    reason: 'valid',
    lock: false,
  },
  {
    name: 'ARI state but the CA dropped ARI: the fallback decides',
    now: '2026-11-05T00:00:00Z',
    ariSupported: false,
    state: ari('2026-11-06T00:00:00Z'),
    kind: 'order',
    reason: 'in-window',
    lock: true,
  },
  {
    name: 'ARI poll due while backing off: poll first (the answer can change the plan)',
    now: DUE,
    ariSupported: true,
    // ARI state of an earlier certificate: poll now; the fallback time says due.
    state: {
      ...backoff('2026-11-01T00:09:00Z'),
      ari: { ...ari('2026-12-01T00:00:00Z').ari!, certId: 'old' },
    },
    kind: 'poll-ari',
    reason: 'backoff',
    lock: true,
  },
  {
    name: 'leftover challenge records, nothing due: nothing due but lock to recover',
    now: BEFORE,
    journalPending: true,
    kind: 'nothing-due',
    lock: true,
  },
  {
    name: 'leftover challenge records while holding: lock to recover',
    now: DUE,
    state: backoff('2026-11-01T00:09:00Z'),
    journalPending: true,
    kind: 'hold',
    lock: true,
  },
];

test.each(ROWS)('$name', (row) => {
  const o: Observation = {
    spec: SPEC,
    info: row.info === undefined ? CERT : row.info,
    state: row.state ?? EMPTY,
    ariSupported: row.ariSupported ?? false,
    deployPending: row.deployPending ?? false,
    journalPending: row.journalPending ?? false,
  };
  const policy = { ...DEFAULT_SCHEDULE_POLICY, ...row.policy };
  const action = chooseAction(o, policy, { force: row.force ?? false }, at(row.now));
  expect(action.kind).toBe(row.kind);
  if (row.reason) expect(action.next.reason).toBe(row.reason);
  expect(action.recover).toBe(row.journalPending ?? false);
  expect(needsLock(action)).toBe(row.lock);
});

test('the chooser reads nothing but its arguments: same input, same action', () => {
  const o: Observation = {
    spec: SPEC,
    info: CERT,
    state: EMPTY,
    ariSupported: true,
    deployPending: false,
    journalPending: false,
  };
  const now = at(BEFORE);
  const first = chooseAction(o, DEFAULT_SCHEDULE_POLICY, { force: false }, now);
  expect(chooseAction(o, DEFAULT_SCHEDULE_POLICY, { force: false }, now)).toEqual(first);
  expect(o.state).toEqual(emptyState('www'));
});
