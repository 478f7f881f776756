import type { AcmeSettings } from '../../src/config/types';
import { CertpilotError, abortError } from '../../src/core/errors';
import type { CaaSet } from '../../src/renew/context';
import { failoverReason, issuingCa } from '../../src/renew/fallback';
import { emptyState } from '../../src/state/store';
import { certInfo, config, FakeAcme, World } from './fakes';

/**
 * The failover rule and its laziness, with in-memory collaborators (the real CAs, BIND and the
 * fault proxy are in test/integration/fallback.test.ts): which errors move an order, CAs
 * tried in order, CAA judged per CA, and nothing of a fallback CA touched unless an order
 * reaches it.
 */

const B = 'https://127.0.0.2:1/b';
const C = 'https://127.0.0.3:1/c';

function ca(directoryUrl: string, over: Partial<AcmeSettings> = {}): AcmeSettings {
  return { directoryUrl, termsAgreed: true, requestTimeoutMs: 1000, ...over };
}

/** A world whose config has fallback CAs, each served by its own FakeAcme; CAA and identities recorded. */
class FallbackWorld extends World {
  readonly fallbacks = new Map<string, FakeAcme>();
  readonly opened: string[] = [];
  readonly caaAsked: string[] = [];
  readonly identitiesAsked: string[] = [];
  caa: Record<string, CaaSet> = {};
  caaError: Error | undefined;
  identities: Record<string, readonly string[] | undefined> = {};

  fake(url: string): FakeAcme {
    if (!this.fallbacks.has(url)) this.fallbacks.set(url, new FakeAcme());
    return this.fallbacks.get(url)!;
  }

  override deps(): ReturnType<World['deps']> {
    return {
      ...super.deps(),
      openFallbackAcme: async (c) => {
        this.opened.push(c.directoryUrl);
        return this.fake(c.directoryUrl);
      },
    };
  }

  override overrides(): ReturnType<World['overrides']> {
    return {
      ...super.overrides(),
      findCaa: async (name) => {
        this.caaAsked.push(name);
        if (this.caaError) throw this.caaError;
        return this.caa[name] ?? { properties: [] };
      },
      caIdentities: async (c) => {
        this.identitiesAsked.push(c.directoryUrl);
        return this.identities[c.directoryUrl];
      },
    };
  }
}

function withFallbacks(names: string[], fallback: AcmeSettings[]): ReturnType<typeof config> {
  const cfg = config(names);
  return { ...cfg, acme: { ...cfg.acme, fallback } };
}

const serverError = (): CertpilotError =>
  new CertpilotError('ACME_PROBLEM', 'acme: new order: boom (serverInternal, HTTP 500)', {
    retryable: true,
    details: { status: 500 },
  });

describe('failoverReason', () => {
  test.each([
    ['a 5xx after the retries', serverError(), /^server error/],
    ['rateLimited', new CertpilotError('ACME_RATE_LIMITED', 'limited', { retryable: true }), /^rate limited/],
    [
      'a connection error or request timeout',
      new CertpilotError('ACME_NETWORK', 'ECONNRESET', { retryable: true }),
      /^connection failed/,
    ],
    ['the order deadline', new CertpilotError('TIMEOUT', 'order: deadline'), /^order deadline/],
    [
      'an order the CA never finishes',
      new CertpilotError('ACME_ORDER_FAILED', 'still processing', { retryable: true }),
      /did not finish/,
    ],
  ])('%s moves the order', (_what, err, reason) => {
    expect(failoverReason(err, undefined)).toMatch(reason);
  });

  test.each([
    ['a failed validation', new CertpilotError('ACME_CHALLENGE_FAILED', 'validation failed')],
    ['unauthorized', new CertpilotError('ACME_PROBLEM', 'unauthorized (HTTP 403)', { retryable: false })],
    ['badCSR', new CertpilotError('ACME_PROBLEM', 'badCSR (HTTP 400)', { retryable: false })],
    ['a TLS trust error', new CertpilotError('ACME_NETWORK', 'TLS error', { retryable: false })],
    ['a DNS provider error', new CertpilotError('DNS_UPDATE_FAILED', 'refused', { retryable: true })],
    ['a CAA refusal', new CertpilotError('CAA_FORBIDDEN', 'forbidden')],
    ['a plain Error', new Error('bug')],
  ])('%s does not', (_what, err) => {
    expect(failoverReason(err, undefined)).toBeUndefined();
  });

  test('nothing moves once the run itself is cancelled', () => {
    const ac = new AbortController();
    ac.abort();
    expect(failoverReason(abortError('acme', ac.signal), ac.signal)).toBeUndefined();
    expect(failoverReason(serverError(), ac.signal)).toBeUndefined();
  });
});

test('issuingCa: the recorded CA of the installed serial, else the primary', () => {
  const info = certInfo(['a.example.test'], 10);
  const primary = ca('https://127.0.0.1:1/dir');
  const state = emptyState('a');
  const last = { at: new Date(), serial: info.serial, notAfter: info.notAfter };
  expect(issuingCa({ ...state, lastSuccess: { ...last, ca: B } }, info, primary)).toBe(B);
  expect(issuingCa({ ...state, lastSuccess: last }, info, primary)).toBe(primary.directoryUrl);
  expect(issuingCa({ ...state, lastSuccess: { ...last, serial: 'OTHER', ca: B } }, info, primary)).toBe(
    primary.directoryUrl,
  );
  expect(issuingCa(state, null, primary)).toBe(primary.directoryUrl);
});

test('a run with nothing due opens, asks and loads nothing for the fallback CAs', async () => {
  const w = new FallbackWorld();
  w.store.put('a', certInfo(['a.example.test'], 1));
  const report = await w.run(withFallbacks(['a'], [ca(B), ca(C)]));
  expect(report.outcomes[0]).toMatchObject({ status: 'valid' });
  expect(w.opened).toEqual([]);
  expect(w.caaAsked).toEqual([]);
  expect(w.identitiesAsked).toEqual([]);
  expect(w.acmeOpened).toBe(0);
});

test('without acme.fallback no CAA question is asked', async () => {
  const w = new FallbackWorld();
  const report = await w.run(config(['a']));
  expect(report.outcomes[0]).toMatchObject({ status: 'renewed' });
  expect(w.caaAsked).toEqual([]);
});

test('CAs in order: each retryable failure moves on, one alert per move, replaces only to the issuer', async () => {
  const w = new FallbackWorld();
  const old = certInfo(['a.example.test'], 80);
  w.store.put('a', old);
  // The primary offers ARI: the order there replaces the installed certificate.
  w.renewalInfoUrl = 'https://127.0.0.1:1/renewal-info';
  w.acme.failures.set('a', serverError());
  w.fake(B).failures.set(
    'a',
    new CertpilotError('ACME_NETWORK', 'acme: new order: ECONNRESET', { retryable: true }),
  );
  const report = await w.run(withFallbacks(['a'], [ca(B), ca(C)]), { force: true });
  expect(report.outcomes[0]).toMatchObject({ status: 'renewed', ca: C });
  expect(w.opened).toEqual([B, C]);
  expect([w.acme, w.fake(B), w.fake(C)].map((f) => f.requests.length)).toEqual([1, 1, 1]);
  expect(w.acme.requests[0]!.replaces).toEqual(expect.any(String));
  expect(w.fake(B).requests[0]!.replaces).toBeUndefined();
  expect(w.fake(C).requests[0]!.replaces).toBeUndefined();
  // Each CA gets its own order deadline.
  const signals = [w.acme, w.fake(B), w.fake(C)].map((f) => f.requests[0]!.signal);
  expect(new Set(signals).size).toBe(3);
  const moves = w.alerts.filter((a) => a.kind === 'ca-failover').map((a) => a.message);
  expect(moves).toHaveLength(2);
  expect(moves[0]).toMatch(new RegExp(`to ${B}: server error`));
  expect(moves[1]).toMatch(new RegExp(`from ${B} to ${C}: connection failed`));
  const state = w.states.states.get('a')!;
  expect(state.lastSuccess?.ca).toBe(C);
  expect(state.orders.map((o) => o.ca)).toEqual([C]);
  // Both fallback services are closed at the end of the run, like the primary's.
  expect([w.acme.closed, w.fake(B).closed, w.fake(C).closed]).toEqual([1, 1, 1]);
  // The report counts the requests of every CA.
  expect(report.acmeRequests?.total).toBe(9);
});

test('a non-retryable failure stays at the primary: no fallback opened, no failover alert', async () => {
  const w = new FallbackWorld();
  w.acme.failures.set('a', new CertpilotError('ACME_CHALLENGE_FAILED', 'acme: validation of a failed'));
  const report = await w.run(withFallbacks(['a'], [ca(B)]));
  expect(report.outcomes[0]).toMatchObject({ status: 'failed', errorCode: 'ACME_CHALLENGE_FAILED' });
  expect(w.opened).toEqual([]);
  expect(w.alerts.map((a) => a.kind)).toContain('renewal-failed');
  expect(w.alerts.map((a) => a.kind)).not.toContain('ca-failover');
});

test('CAA records and a fallback whose identities are unknown: the primary is tried, the fallback is not', async () => {
  const w = new FallbackWorld();
  w.caa = {
    'a.example.test': {
      foundAt: 'example.test',
      properties: [{ flags: 0, tag: 'issue', value: 'ca-x.test' }],
    },
  };
  w.acme.failures.set('a', serverError());
  const report = await w.run(withFallbacks(['a'], [ca(B)]));
  const out = report.outcomes[0]!;
  expect(out).toMatchObject({ status: 'failed', errorCode: 'ACME_PROBLEM' });
  expect(out.error).toContain('publishes no caaIdentities');
  expect(out.error).toContain('set caaIdentities for this CA in acme.fallback');
  expect(out.error).toContain('example.test. CAA 0 issue "ca-x.test"');
  expect(w.acme.requests).toHaveLength(1);
  expect(w.opened).toEqual([]);
});

test('a CAA lookup that fails: the primary is still tried, no order goes to a fallback', async () => {
  const w = new FallbackWorld();
  w.caaError = new Error('all resolvers timed out');
  w.acme.failures.set('a', serverError());
  const report = await w.run(withFallbacks(['a'], [ca(B, { caaIdentities: ['ca-b.test'] })]));
  expect(report.outcomes[0]!.error).toContain('CAA lookup failed: all resolvers timed out');
  expect(w.acme.requests).toHaveLength(1);
  expect(w.opened).toEqual([]);
});

test('identities come per CA; a wildcard is judged by issuewild', async () => {
  const w = new FallbackWorld();
  const base = withFallbacks(['a'], [ca(B)]);
  const cfg = {
    ...base,
    certificates: [{ ...base.certificates[0]!, domains: ['a.example.test', '*.a.example.test'] }],
  };
  const set: CaaSet = {
    foundAt: 'a.example.test',
    properties: [
      { flags: 0, tag: 'issue', value: 'ca-a.test' },
      { flags: 0, tag: 'issue', value: 'ca-b.test' },
      { flags: 0, tag: 'issuewild', value: 'ca-a.test' },
    ],
  };
  w.caa = { 'a.example.test': set, '*.a.example.test': set };
  w.identities = { [cfg.acme.directoryUrl]: ['ca-a.test'], [B]: ['ca-b.test'] };
  w.acme.failures.set('a', serverError());
  const report = await w.run(cfg);
  const out = report.outcomes[0]!;
  expect(out.status).toBe('failed');
  expect(out.error).toContain('*.a.example.test: CAA at a.example.test allows issuewild only by ca-a.test');
  expect(w.identitiesAsked).toEqual([cfg.acme.directoryUrl, B]);
  expect(w.opened).toEqual([]);
});
