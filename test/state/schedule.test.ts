import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CertificateSpec } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { ARI_LONG_TERM_ERROR_RETRY_MS } from '../../src/acme/ari';
import {
  BACKOFF_DAILY_MS,
  DEFAULT_SCHEDULE_POLICY,
  afterFailure,
  afterSuccess,
  backoffDelay,
  exactSetKey,
  failureFromError,
  guardLimit,
  nextAction,
  withAriError,
  withOrder,
  withRenewalInfo,
  type AriInput,
  type NextAction,
  type SchedulePolicy,
} from '../../src/plan/schedule';
import type { NextActionOptions } from '../../src/plan/schedule';
import { StateStore, emptyState, type CertState } from '../../src/state/store';
import type { CertInfo } from '../../src/x509';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
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

/** A 90-day certificate: fallback renewal (a third left) 2026-10-31, emergency (1/20 left) after 2026-11-25T12:00. */
function cert(over: Partial<CertInfo> = {}): CertInfo {
  return {
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
    ...over,
  };
}

const ARI: AriInput = { supported: true };
const P = DEFAULT_SCHEDULE_POLICY;

function ariState(over: Partial<NonNullable<CertState['ari']>> = {}): CertState {
  return {
    ...emptyState('www'),
    ari: {
      certId: CERT_ID,
      window: { start: at('2026-11-08T00:00:00Z'), end: at('2026-11-10T00:00:00Z') },
      chosenAt: at('2026-11-09T00:00:00Z'),
      nextPollAt: at('2026-11-05T06:00:00Z'),
      errorCount: 0,
      ...over,
    },
  };
}

function orders(...times: string[]): CertState['orders'] {
  return times.map((t) => ({ at: at(t), names: ['example.test', 'www.example.test'] }));
}

interface Row {
  name: string;
  now: string;
  info?: CertInfo | null;
  state?: CertState;
  ari?: AriInput;
  policy?: Partial<SchedulePolicy>;
  force?: boolean;
  /** The rest of nextAction's options (overrideGuard, ca, fingerprint). */
  options?: NextActionOptions;
  spec?: Partial<CertificateSpec>;
  expect: Partial<Omit<NextAction, 'at' | 'wakeAt' | 'pollAriAt' | 'detail'>> & {
    at?: string;
    wakeAt?: string;
    pollAriAt?: string | null;
    detail?: RegExp;
  };
}

const ROWS: Row[] = [
  {
    name: 'nothing installed: renew now, nothing to replace, no ARI poll',
    now: '2026-10-01T00:00:00Z',
    info: null,
    ari: ARI,
    expect: { renewNow: true, reason: 'missing', replaces: undefined, pollAriAt: null },
  },
  {
    name: 'no ARI, before the fallback time: wait until a third of the lifetime is left',
    now: '2026-10-01T00:00:00Z',
    expect: { renewNow: false, reason: 'valid', at: '2026-10-31T00:00:00Z', wakeAt: '2026-10-31T00:00:00Z' },
  },
  {
    name: 'no ARI, fallback time reached: renew',
    now: '2026-11-01T00:00:00Z',
    expect: { renewNow: true, reason: 'in-window', replaces: undefined },
  },
  {
    name: 'ARI supported but not polled yet for this certificate: poll now, fallback meanwhile',
    now: '2026-10-01T00:00:00Z',
    ari: ARI,
    expect: {
      renewNow: false,
      reason: 'valid',
      at: '2026-10-31T00:00:00Z',
      pollAriAt: '2026-10-01T00:00:00Z',
      wakeAt: '2026-10-01T00:00:00Z',
      replaces: CERT_ID,
    },
  },
  {
    name: 'ARI window in the future overrides an open fallback window; wake for the next poll',
    now: '2026-11-05T00:00:00Z',
    state: ariState(),
    ari: ARI,
    expect: {
      renewNow: false,
      reason: 'valid',
      at: '2026-11-09T00:00:00Z',
      pollAriAt: '2026-11-05T06:00:00Z',
      wakeAt: '2026-11-05T06:00:00Z',
      detail: /ARI window 2026-11-08T00:00:00Z to 2026-11-10T00:00:00Z, renewal at 2026-11-09T00:00:00Z/,
    },
  },
  {
    name: 'ARI chosen time reached: renew with replaces',
    now: '2026-11-09T00:00:01Z',
    state: ariState({ nextPollAt: at('2026-11-09T06:00:00Z') }),
    ari: ARI,
    expect: { renewNow: true, reason: 'ari', replaces: CERT_ID },
  },
  {
    name: 'ARI window early (CA asks for early renewal, e.g. before a revocation): renew',
    now: '2026-09-20T00:00:00Z',
    state: ariState({
      window: { start: at('2026-09-19T00:00:00Z'), end: at('2026-09-19T12:00:00Z') },
      chosenAt: at('2026-09-19T03:00:00Z'),
      nextPollAt: at('2026-09-20T06:00:00Z'),
    }),
    ari: ARI,
    expect: { renewNow: true, reason: 'ari' },
  },
  {
    name: 'emergency: less than 1/20 of the lifetime left renews whatever ARI says',
    now: '2026-11-26T00:00:00Z',
    state: ariState({
      window: { start: at('2026-11-28T00:00:00Z'), end: at('2026-11-29T00:00:00Z') },
      chosenAt: at('2026-11-28T12:00:00Z'),
      nextPollAt: at('2026-11-26T06:00:00Z'),
    }),
    ari: ARI,
    expect: { renewNow: true, reason: 'emergency', detail: /less than 1\/20 of its lifetime left/ },
  },
  {
    name: 'a run that wakes every 12 h renews when the chosen time falls before its next run (RFC 9773 §4.2)',
    now: '2026-11-08T18:00:00Z',
    state: ariState({ nextPollAt: at('2026-11-09T06:00:00Z') }),
    ari: ARI,
    policy: { lookaheadMs: 12 * HOUR },
    expect: { renewNow: true, reason: 'ari' },
  },
  {
    name: 'ARI state of another (replaced) certificate is ignored: poll now, fallback meanwhile',
    now: '2026-10-01T00:00:00Z',
    state: ariState({ certId: 'other.id' }),
    ari: ARI,
    expect: {
      renewNow: false,
      reason: 'valid',
      at: '2026-10-31T00:00:00Z',
      pollAriAt: '2026-10-01T00:00:00Z',
    },
  },
  {
    name: 'directory without renewalInfo: persisted ARI state is ignored, nothing to replace',
    now: '2026-11-05T00:00:00Z',
    state: ariState(),
    ari: { supported: false },
    expect: { renewNow: true, reason: 'in-window', pollAriAt: null, replaces: undefined },
  },
  {
    name: 'a certificate without an Authority Key Identifier has no ARI id: fallback only',
    now: '2026-10-01T00:00:00Z',
    info: cert({ authorityKeyId: undefined }),
    ari: ARI,
    expect: {
      renewNow: false,
      reason: 'valid',
      at: '2026-10-31T00:00:00Z',
      pollAriAt: null,
      replaces: undefined,
    },
  },
  {
    name: 'expired: renew, and stop polling ARI (RFC 9773 §4.3)',
    now: '2026-12-01T00:00:00Z',
    ari: ARI,
    expect: { renewNow: true, reason: 'expired', pollAriAt: null, replaces: CERT_ID },
  },
  {
    name: 'names changed with no name in common: renew without replaces',
    now: '2026-10-01T00:00:00Z',
    ari: ARI,
    spec: { domains: ['other.example.test'] },
    expect: { renewNow: true, reason: 'names-changed', replaces: undefined },
  },
  {
    name: 'due but backing off after failures: next attempt at nextRetryAt',
    now: '2026-11-01T00:00:00Z',
    state: {
      ...emptyState('www'),
      failures: { count: 2, nextRetryAt: at('2026-11-01T00:09:00Z'), lastError: 'boom' },
    },
    expect: {
      renewNow: false,
      reason: 'backoff',
      at: '2026-11-01T00:09:00Z',
      detail:
        /in-window .*held back until 2026-11-01T00:09:00Z after 2 failed attempt\(s\) \(last error: boom\); to retry now: certpilot renew --force www$/,
    },
  },
  {
    name: 'backoff recorded under other settings (the operator fixed them since): renew now',
    now: '2026-11-01T00:00:00Z',
    options: { fingerprint: 'after-the-fix' },
    state: {
      ...emptyState('www'),
      failures: {
        count: 2,
        nextRetryAt: at('2026-11-01T00:09:00Z'),
        lastError: 'boom',
        fingerprint: 'before',
      },
    },
    expect: { renewNow: true, reason: 'in-window' },
  },
  {
    name: 'backoff recorded under the same settings: still held back',
    now: '2026-11-01T00:00:00Z',
    options: { fingerprint: 'same' },
    state: {
      ...emptyState('www'),
      failures: { count: 2, nextRetryAt: at('2026-11-01T00:09:00Z'), lastError: 'boom', fingerprint: 'same' },
    },
    expect: { renewNow: false, reason: 'backoff', at: '2026-11-01T00:09:00Z' },
  },
  {
    name: 'rate limited: the Retry-After time is reported as rate-limited',
    now: '2026-11-01T00:00:00Z',
    state: {
      ...emptyState('www'),
      failures: { count: 1, nextRetryAt: at('2026-11-01T03:00:00Z'), rateLimited: true },
    },
    expect: { renewNow: false, reason: 'rate-limited', at: '2026-11-01T03:00:00Z' },
  },
  {
    name: 'backoff over: renew',
    now: '2026-11-01T00:10:00Z',
    state: { ...emptyState('www'), failures: { count: 2, nextRetryAt: at('2026-11-01T00:09:00Z') } },
    expect: { renewNow: true, reason: 'in-window' },
  },
  {
    name: 'not due: backoff does not matter',
    now: '2026-10-01T00:00:00Z',
    state: { ...emptyState('www'), failures: { count: 5, nextRetryAt: at('2026-10-02T00:00:00Z') } },
    expect: { renewNow: false, reason: 'valid', at: '2026-10-31T00:00:00Z' },
  },
  {
    name: '--force skips timing and backoff',
    now: '2026-10-01T00:00:00Z',
    force: true,
    state: { ...emptyState('www'), failures: { count: 5, nextRetryAt: at('2026-10-02T00:00:00Z') } },
    expect: { renewNow: true, reason: 'forced' },
  },
  {
    name: 'guard: three issuances of this exact set in 7 days stop a fourth, critically',
    now: '2026-11-01T00:00:00Z',
    state: {
      ...emptyState('www'),
      orders: orders('2026-10-26T00:00:00Z', '2026-10-28T00:00:00Z', '2026-10-31T00:00:00Z'),
    },
    expect: {
      renewNow: false,
      reason: 'guarded',
      critical: true,
      at: '2026-11-02T00:00:00Z',
      detail:
        /3 certificates were already issued for exactly example\.test,www\.example\.test by this CA in the last 7 days \(defaults\.renewal\.maxOrdersPerWeek is 3\); no order before 2026-11-02T00:00:00Z\..*certpilot renew --override-guard www$/,
    },
  },
  {
    name: 'guard applies to --force too (a forced loop burns the CA limit just the same)',
    now: '2026-11-01T00:00:00Z',
    force: true,
    state: {
      ...emptyState('www'),
      orders: orders('2026-10-26T00:00:00Z', '2026-10-28T00:00:00Z', '2026-10-31T00:00:00Z'),
    },
    expect: { renewNow: false, reason: 'guarded', critical: true, at: '2026-11-02T00:00:00Z' },
  },
  {
    name: '--override-guard (a person at a terminal) orders despite the guard',
    now: '2026-11-01T00:00:00Z',
    options: { overrideGuard: true },
    state: {
      ...emptyState('www'),
      orders: orders('2026-10-26T00:00:00Z', '2026-10-28T00:00:00Z', '2026-10-31T00:00:00Z'),
    },
    expect: { renewNow: true, reason: 'in-window' },
  },
  {
    name: 'guard counts each CA apart: orders from a loopback test CA do not hold back production',
    now: '2026-11-01T00:00:00Z',
    options: { ca: 'https://acme-v02.api.letsencrypt.org/directory' },
    state: {
      ...emptyState('www'),
      orders: orders('2026-10-26T00:00:00Z', '2026-10-28T00:00:00Z', '2026-10-31T00:00:00Z').map((o) => ({
        ...o,
        ca: 'https://127.0.0.1:14000/dir',
      })),
    },
    expect: { renewNow: true, reason: 'in-window' },
  },
  {
    name: 'guard: the same CA, or records from before the CA was recorded, count',
    now: '2026-11-01T00:00:00Z',
    options: { ca: 'https://127.0.0.1:14000/dir' },
    state: {
      ...emptyState('www'),
      orders: [
        ...orders('2026-10-26T00:00:00Z', '2026-10-28T00:00:00Z').map((o) => ({
          ...o,
          ca: 'https://127.0.0.1:14000/dir',
        })),
        ...orders('2026-10-31T00:00:00Z'),
      ],
    },
    expect: { renewNow: false, reason: 'guarded', at: '2026-11-02T00:00:00Z' },
  },
  {
    name: 'guard counts only the last 7 days and only the exact set',
    now: '2026-11-01T00:00:00Z',
    state: {
      ...emptyState('www'),
      orders: [
        ...orders('2026-10-20T00:00:00Z', '2026-10-28T00:00:00Z', '2026-10-31T00:00:00Z'),
        { at: at('2026-10-30T00:00:00Z'), names: ['example.test'] },
      ],
    },
    expect: { renewNow: true, reason: 'in-window' },
  },
  {
    name: 'guard: a 6-day certificate may be issued 5 times a week (twice what its lifetime needs)',
    now: '2026-11-05T00:00:00Z',
    info: cert({ notBefore: at('2026-11-01T00:00:00Z'), notAfter: at('2026-11-07T00:00:00Z') }),
    state: {
      ...emptyState('www'),
      orders: orders(
        '2026-10-30T00:00:00Z',
        '2026-11-01T00:00:00Z',
        '2026-11-02T00:00:00Z',
        '2026-11-03T00:00:00Z',
      ),
    },
    expect: { renewNow: true, reason: 'in-window' },
  },
];

describe('nextAction', () => {
  test.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const info = row.info === undefined ? cert() : row.info;
    const got = nextAction(
      { ...SPEC, ...row.spec },
      info,
      row.state ?? emptyState('www'),
      at(row.now),
      { ...P, ...row.policy },
      row.ari,
      { force: row.force, ...row.options },
    );
    const { at: wantAt, wakeAt, pollAriAt, detail, ...rest } = row.expect;
    expect(got).toMatchObject(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)));
    for (const [k, v] of Object.entries(rest))
      if (v === undefined) expect(got[k as keyof NextAction]).toBeUndefined();
    expect(got.at.toISOString()).toBe(at(wantAt ?? row.now).toISOString());
    if (wakeAt) expect(got.wakeAt.toISOString()).toBe(at(wakeAt).toISOString());
    if (got.renewNow) expect(got.wakeAt.getTime()).toBe(at(row.now).getTime());
    if (pollAriAt === null) expect(got.pollAriAt).toBeUndefined();
    else if (pollAriAt) expect(got.pollAriAt?.toISOString()).toBe(at(pollAriAt).toISOString());
    if (detail) expect(got.detail).toMatch(detail);
  });

  test('guard limit scales with the lifetime but never drops below maxOrdersPerWeek', () => {
    const days = (n: number) =>
      cert({
        notBefore: at('2026-01-01T00:00:00Z'),
        notAfter: new Date(at('2026-01-01T00:00:00Z').getTime() + n * DAY),
      });
    expect(guardLimit(P, null)).toBe(3);
    expect(guardLimit(P, days(90))).toBe(3);
    expect(guardLimit(P, days(45))).toBe(3);
    expect(guardLimit(P, days(6))).toBe(5);
    expect(guardLimit({ ...P, maxOrdersPerWeek: 10 }, days(6))).toBe(10);
    // A 5-minute test certificate renewed at half its life: thousands a week are normal.
    const fiveMin = cert({ notBefore: at('2026-01-01T00:00:00Z'), notAfter: at('2026-01-01T00:05:00Z') });
    expect(guardLimit(P, fiveMin)).toBeGreaterThan(4000);
  });

  test('exact set ignores order, case and duplicates', () => {
    expect(exactSetKey(['B.example', 'a.example', 'b.example'])).toBe('a.example,b.example');
  });
});

describe('backoff', () => {
  test.each([
    [1, 1 * MIN],
    [2, 10 * MIN],
    [3, 100 * MIN],
    [4, BACKOFF_DAILY_MS],
    [9, BACKOFF_DAILY_MS],
  ])('failure %i waits %i ms (no jitter at random 0.5), ±10 %% at the extremes', (n, ms) => {
    expect(backoffDelay(n, () => 0.5)).toBe(ms);
    expect(backoffDelay(n, () => 0)).toBe(Math.round(ms * 0.9));
    expect(backoffDelay(n, () => 1)).toBe(Math.round(ms * 1.1));
  });

  test('afterFailure counts failures and schedules the next attempt; afterSuccess resets', () => {
    const now = at('2026-11-01T00:00:00Z');
    let s = emptyState('www');
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      s = afterFailure(s, { message: `fail ${i}`, code: 'DNS_UPDATE_FAILED' }, now, () => 0.5);
      waits.push(s.failures.nextRetryAt!.getTime() - now.getTime());
    }
    expect(waits).toEqual([MIN, 10 * MIN, 100 * MIN, DAY, DAY]);
    expect(s.failures).toMatchObject({ count: 5, lastError: 'fail 4', lastErrorCode: 'DNS_UPDATE_FAILED' });
    expect(s.failures.rateLimited).toBeUndefined();

    const ok = afterSuccess(
      { ...s, ari: ariState().ari },
      { serial: '01', notAfter: at('2027-01-30T00:00:00Z') },
      now,
    );
    expect(ok.failures).toEqual({ count: 0 });
    expect(ok.ari).toBeUndefined(); // RFC 9773 §4.3: poll the new certificate right away
    expect(ok.lastSuccess).toEqual({ at: now, serial: '01', notAfter: at('2027-01-30T00:00:00Z') });
  });

  test('a rateLimited problem waits for its Retry-After instead of the backoff step (capped at 7 days)', () => {
    const now = at('2026-11-01T00:00:00Z');
    const err = new CertpilotError('ACME_RATE_LIMITED', 'acme: new order: too many certificates', {
      retryable: true,
      details: { status: 429, problemType: 'urn:ietf:params:acme:error:rateLimited', retryAfterMs: 3 * HOUR },
    });
    const f = failureFromError(err);
    expect(f).toMatchObject({ code: 'ACME_RATE_LIMITED', rateLimitRetryAfterMs: 3 * HOUR });
    const s = afterFailure(emptyState('www'), f, now);
    expect(s.failures).toMatchObject({
      count: 1,
      rateLimited: true,
      nextRetryAt: at('2026-11-01T03:00:00Z'),
    });
    const capped = afterFailure(emptyState('www'), { message: 'x', rateLimitRetryAfterMs: 30 * DAY }, now);
    expect(capped.failures.nextRetryAt).toEqual(at('2026-11-08T00:00:00Z'));
    // Without a Retry-After a rate limit falls back to the normal steps.
    expect(
      failureFromError(new CertpilotError('ACME_RATE_LIMITED', 'x')).rateLimitRetryAfterMs,
    ).toBeUndefined();
    expect(failureFromError(new Error('plain'))).toEqual({ message: 'plain' });
  });

  test('backoff survives a restart: the persisted state keeps a failing CA from getting a request every tick', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-sched-'));
    try {
      const t0 = at('2026-11-01T00:00:00Z');
      const store = new StateStore(dir);
      let { state } = await store.read('www');
      // Three failed attempts in a row, each at its allowed time, the state saved after each.
      let now = t0;
      for (let i = 0; i < 3; i++) {
        const action = nextAction(SPEC, cert(), state, now, P);
        expect(action.renewNow).toBe(true);
        state = afterFailure(state, { message: 'CA down' }, now, () => 0.5);
        await store.write(state, now);
        now = state.failures.nextRetryAt!;
      }
      // "Restart": a fresh store reads the file; ticks every 10 minutes for the next 100 minutes
      // all see the backoff, the first one after it is due again.
      const reread = (await new StateStore(dir).read('www')).state;
      const last = at('2026-11-01T00:11:00Z');
      for (
        let tick = last.getTime() + 10 * MIN;
        tick < reread.failures.nextRetryAt!.getTime();
        tick += 10 * MIN
      ) {
        expect(nextAction(SPEC, cert(), reread, new Date(tick), P).reason).toBe('backoff');
      }
      expect(nextAction(SPEC, cert(), reread, reread.failures.nextRetryAt!, P).renewNow).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ARI state transitions', () => {
  const now = at('2026-11-01T00:00:00Z');
  const info = {
    window: { start: at('2026-11-08T00:00:00Z'), end: at('2026-11-10T00:00:00Z') },
    retryAfterMs: 6 * HOUR,
    retryAfterFromServer: true,
    explanationURL: 'https://ca.example/incident',
  };

  test('withRenewalInfo draws a time inside the window once and keeps it while the window stays', () => {
    const s1 = withRenewalInfo(emptyState('www'), CERT_ID, info, now, () => 0.25);
    expect(s1.ari).toMatchObject({
      certId: CERT_ID,
      chosenAt: at('2026-11-08T12:00:00Z'),
      nextPollAt: at('2026-11-01T06:00:00Z'),
      explanationURL: 'https://ca.example/incident',
      errorCount: 0,
    });
    const s2 = withRenewalInfo(s1, CERT_ID, info, at('2026-11-01T06:00:00Z'), () => 0.99);
    expect(s2.ari?.chosenAt).toEqual(at('2026-11-08T12:00:00Z'));
    expect(s2.ari?.nextPollAt).toEqual(at('2026-11-01T12:00:00Z'));
    const moved = { ...info, window: { start: at('2026-11-02T00:00:00Z'), end: at('2026-11-03T00:00:00Z') } };
    const s3 = withRenewalInfo(s2, CERT_ID, moved, at('2026-11-01T12:00:00Z'), () => 0.5);
    expect(s3.ari?.chosenAt).toEqual(at('2026-11-02T12:00:00Z'));
    // And nextAction follows it.
    expect(nextAction(SPEC, cert(), s3, at('2026-11-02T12:00:00Z'), P, ARI).reason).toBe('ari');
  });

  test('a window already in the past is chosen as "now"', () => {
    const past = { ...info, window: { start: at('2026-10-01T00:00:00Z'), end: at('2026-10-02T00:00:00Z') } };
    const s = withRenewalInfo(emptyState('www'), CERT_ID, past, now, () => 0.5);
    expect(s.ari?.chosenAt).toEqual(now);
    expect(nextAction(SPEC, cert(), s, now, P, ARI)).toMatchObject({
      renewNow: true,
      reason: 'ari',
      replaces: CERT_ID,
    });
  });

  test('withAriError keeps the last window; long-term errors wait 6 h, temporary ones back off from 1 min', () => {
    const s1 = withRenewalInfo(emptyState('www'), CERT_ID, info, now, () => 0.5);
    const longTerm = new CertpilotError('ACME_PROBLEM', 'ari: HTTP 404', {
      details: { nextPollMs: ARI_LONG_TERM_ERROR_RETRY_MS },
    });
    const s2 = withAriError(s1, CERT_ID, longTerm, now);
    expect(s2.ari).toMatchObject({
      window: info.window,
      chosenAt: s1.ari!.chosenAt,
      errorCount: 1,
      lastError: 'ari: HTTP 404',
    });
    expect(s2.ari!.nextPollAt).toEqual(new Date(now.getTime() + 6 * HOUR));
    const temp = new CertpilotError('ACME_NETWORK', 'ari: reset', { retryable: true });
    let s = emptyState('www');
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      s = withAriError(s, CERT_ID, temp, now, () => 0.5);
      waits.push(s.ari!.nextPollAt.getTime() - now.getTime());
    }
    expect(waits.slice(0, 4)).toEqual([MIN, 2 * MIN, 4 * MIN, 8 * MIN]);
    expect(Math.max(...waits)).toBe(6 * HOUR);
  });

  test('withOrder records the exact set the guard counts', () => {
    const s = withOrder(emptyState('www'), ['WWW.example.test', 'example.test'], now);
    expect(s.orders).toEqual([{ at: now, names: ['example.test', 'www.example.test'] }]);
  });
});
