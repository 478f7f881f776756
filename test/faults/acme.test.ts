import { rm } from 'node:fs/promises';
import path from 'node:path';
import { MAX_ATTEMPTS, RETRY_AFTER_CAP_MS } from '../../src/acme/retry-policy';
import {
  faults,
  startFaultProxy,
  type FaultAction,
  type FaultProxy,
  type FaultRule,
} from '../helpers/fault-proxy';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { expectSameFiles, gaps, renew, snapshot, type RenewRun } from './helpers';

/**
 * ACME faults (issue #7 item 2): a real Pebble behind a fault-injecting proxy, a real BIND, the
 * real CLI. Transient faults are retried a bounded number of times and the renewal succeeds;
 * permanent ones fail the run with the CA's (or the network's) own words in the report, quickly,
 * with a bounded number of requests, and the stored pair is left byte-identical.
 */

/** acme.requestTimeout in the config: small, so "a response that never comes" costs seconds. */
const REQUEST_TIMEOUT_MS = 1_000;
const CERT = 'site';
/** Never issued: its orders fail, so it stays due and shows what a later run does. */
const OTHER = 'other';
const LIMITED = 'limited';

let tb: Testbed;
let proxy: FaultProxy;
let config: string;
/** Two certificates: the permanently failing CA is measured per operation and certificate. */
let twoCerts: string;
/** `site` and `limited`, for the rate limit test. */
let limitedConfig: string;
let stateDir: string;
let baseline: RenewRun & { since: number };

function acmeSection(): Record<string, unknown> {
  return {
    directory: proxy.directoryUrl,
    caBundle: proxy.caBundlePath,
    termsAgreed: true,
    email: 'ops@example.test',
    requestTimeout: `${REQUEST_TIMEOUT_MS / 1000}s`,
  };
}

beforeAll(async () => {
  tb = await startTestbed();
  proxy = await startFaultProxy(tb.pebble);
  stateDir = path.join(tb.dir, 'state');
  const extra = {
    acme: acmeSection(),
    // The exact-set guard (src/plan/schedule.ts) would stop the many forced renewals of one
    // set of names this suite makes; it is not what is under test here.
    defaults: { renewal: { maxOrdersPerWeek: 50 } },
    storage: { stateDir },
    dns: {
      resolvers: [`127.0.0.1:${tb.bind.port}`],
      nameserverPort: tb.bind.port,
      queryTimeout: '500ms',
      providers: { bind: tb.bindProvider({ propagationTimeout: '3s', propagationInterval: '100ms' }) },
    },
  };
  const site = { name: CERT, domains: ['a.example.test'], dns: { provider: 'bind' } };
  const other = { name: OTHER, domains: ['b.example.test'], dns: { provider: 'bind' } };
  const limited = { name: LIMITED, domains: ['c.example.test'], dns: { provider: 'bind' } };
  config = await tb.writeConfig([site], extra);
  twoCerts = await tb.writeConfig([site, other], extra);
  limitedConfig = await tb.writeConfig([site, limited], extra);
  // Every test starts from an installed certificate (and a registered account).
  baseline = await renewTimed(config);
}, 60_000);

afterEach(() => proxy?.clearFaults());

afterAll(async () => {
  await proxy?.stop();
  await tb?.stop();
});

async function leftoverTxt(): Promise<string[]> {
  const all = await Promise.all(['a', 'b'].map((l) => tb.bind.queryTxt(`_acme-challenge.${l}.example.test`)));
  return all.flat();
}

/** Arrival times of the requests matching `rule` during `run`. */
function arrivals(run: { since: number }, rule: Pick<FaultRule, 'method' | 'path'>): number[] {
  return proxy.times({ method: rule.method, path: rule.path, since: run.since });
}

async function renewTimed(cfg: string, ...args: string[]): Promise<RenewRun & { since: number }> {
  const since = Date.now();
  const run = await renew(cfg, ...args);
  return { ...run, since };
}

function expectRenewed(run: RenewRun, name = CERT): void {
  if (run.code !== 0) throw new Error(`renew failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  expect(run.cert(name).status).toBe('renewed');
}

describe('ACME faults through a proxy in front of Pebble', () => {
  test('baseline: the proxy is transparent (account, order, certificate through it)', async () => {
    const run = baseline;
    expectRenewed(run);
    expect(run.logged('acme account registered')).toHaveLength(1);
    expect(proxy.count({ method: 'POST', path: proxy.paths.newOrder, since: run.since })).toBe(1);
    expect(proxy.requests.every((r) => r.outcome === 'forwarded')).toBe(true);
    expect(await leftoverTxt()).toEqual([]);
  });

  // Transient faults: retried (a whole operation, re-signed with a fresh nonce), then success.
  const finalize = /^\/finalize/;
  const transient: [string, () => FaultRule, number][] = [
    [
      '500 twice on newOrder',
      () => ({ method: 'POST', path: proxy.paths.newOrder, times: 2, action: faults.serverError() }),
      3,
    ],
    [
      '503 with Retry-After: 1 twice on finalize',
      () => ({ method: 'POST', path: finalize, times: 2, action: faults.unavailable(1) }),
      3,
    ],
    [
      '429 rateLimited with Retry-After: 1 once on newOrder',
      () => ({ method: 'POST', path: proxy.paths.newOrder, times: 1, action: faults.rateLimited(1) }),
      2,
    ],
    [
      'connection reset twice on newOrder',
      () => ({ method: 'POST', path: proxy.paths.newOrder, times: 2, action: faults.reset() }),
      3,
    ],
    [
      'no response once on newOrder (request timeout)',
      () => ({ method: 'POST', path: proxy.paths.newOrder, times: 1, action: faults.hang() }),
      2,
    ],
  ];

  test.each(transient)('%s: retried, then renewed (attempts counted)', async (_label, ruleOf, attempts) => {
    const rule = ruleOf();
    const handle = proxy.inject(rule);
    const run = await renewTimed(config, '--force');
    expectRenewed(run);
    const hits = arrivals(run, rule);
    expect(hits).toHaveLength(attempts);
    expect(handle.hits).toBe(attempts - 1);
    const retries = run.logged('acme request failed, retrying');
    expect(retries).toHaveLength(attempts - 1);
    const action = rule.action as FaultAction;
    if (action.kind === 'status' && action.retryAfter !== undefined) {
      // Retry-After: 1 is honoured: no attempt comes sooner than a second after the previous.
      for (const gap of gaps(hits)) expect(gap).toBeGreaterThanOrEqual(950);
      for (const r of retries) expect(r.waitMs).toBe(1000);
    }
    expect(await leftoverTxt()).toEqual([]);
  });

  test('429 rateLimited with Retry-After beyond the cap: not waited for, the CA’s words in the report; the next run waits for the CA', async () => {
    const before = await snapshot(stateDir, CERT);
    const retryAfterS = 3600;
    expect(retryAfterS * 1000).toBeGreaterThan(RETRY_AFTER_CAP_MS);
    const detail = 'injected: too many certificates already issued for this exact set of domains';
    proxy.inject({
      method: 'POST',
      path: proxy.paths.newOrder,
      action: faults.rateLimited(retryAfterS, detail),
    });
    const run = await renewTimed(limitedConfig, '--force');
    expect(run.code).toBe(1);
    expect(run.report.ok).toBe(false);
    for (const name of [CERT, LIMITED]) {
      const out = run.cert(name);
      expect(out.status).toBe('failed');
      expect(out.errorCode).toBe('ACME_RATE_LIMITED');
      expect(out.error).toBe(
        `acme: new order: ${detail} (rateLimited, HTTP 429) (retry after ${retryAfterS} s)`,
      );
    }
    // One newOrder per certificate, no retry, and nowhere near the hour the CA asked for.
    expect(arrivals(run, { method: 'POST', path: proxy.paths.newOrder })).toHaveLength(2);
    expect(run.logged('acme request failed, retrying')).toHaveLength(0);
    expect(run.ms).toBeLessThan(RETRY_AFTER_CAP_MS / 4);
    expectSameFiles(await snapshot(stateDir, CERT), before);

    // The Retry-After is persisted: a run soon after (not forced) holds the due certificate
    // back until then and sends the CA nothing.
    const next = await renewTimed(limitedConfig);
    expect(proxy.count({ since: next.since })).toBe(0);
    // Still a failure for the exit status: `limited` has no certificate at all.
    expect(next.code).toBe(1);
    expect(next.cert(CERT).status).toBe('valid');
    const waiting = next.cert(LIMITED);
    expect(waiting.status).toBe('waiting');
    expect(waiting.reason).toBe('rate-limited');
    expect(waiting.detail).toContain(`(rateLimited, HTTP 429) (retry after ${retryAfterS} s)`);
    // renewAt: the next attempt, an hour after the failure.
    const retryAt = Date.parse(waiting.renewAt ?? '');
    expect(retryAt - run.since).toBeGreaterThanOrEqual(retryAfterS * 1000 - 5_000);
    expect(retryAt - Date.now()).toBeLessThanOrEqual(retryAfterS * 1000);
    expectSameFiles(await snapshot(stateDir, CERT), before);
  });

  test('connection reset on every newOrder: MAX_ATTEMPTS attempts, ECONNRESET in the report', async () => {
    const before = await snapshot(stateDir, CERT);
    proxy.inject({ method: 'POST', path: proxy.paths.newOrder, action: faults.reset() });
    const run = await renewTimed(config, '--force');
    expect(run.code).toBe(1);
    const out = run.cert(CERT);
    expect(out.status).toBe('failed');
    expect(out.errorCode).toBe('ACME_NETWORK');
    expect(out.error).toMatch(/^acme: new order: ECONNRESET/);
    expect(arrivals(run, { method: 'POST', path: proxy.paths.newOrder })).toHaveLength(MAX_ATTEMPTS);
    expect(run.logged('acme request failed, retrying')).toHaveLength(MAX_ATTEMPTS - 1);
    expectSameFiles(await snapshot(stateDir, CERT), before);
  });

  test('no response to any newOrder: each attempt ends at acme.requestTimeout, bounded, "timeout" in the report', async () => {
    const before = await snapshot(stateDir, CERT);
    proxy.inject({ method: 'POST', path: proxy.paths.newOrder, action: faults.hang() });
    const run = await renewTimed(config, '--force');
    expect(run.code).toBe(1);
    const out = run.cert(CERT);
    expect(out.status).toBe('failed');
    expect(out.errorCode).toBe('ACME_NETWORK');
    expect(out.error).toMatch(/^acme: new order: .*timeout of 1000ms exceeded/);
    const hits = arrivals(run, { method: 'POST', path: proxy.paths.newOrder });
    expect(hits).toHaveLength(MAX_ATTEMPTS);
    // Every attempt waited out the request timeout, and nothing waited much longer: the
    // backoff between attempts is at most 0.5 + 1 + 2 s (BACKOFF_BASE_MS doubling, full jitter).
    for (const gap of gaps(hits)) expect(gap).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(run.ms).toBeLessThan(MAX_ATTEMPTS * REQUEST_TIMEOUT_MS + 3_500 + 5_000);
    expectSameFiles(await snapshot(stateDir, CERT), before);
  });

  test('the CA fails every challenge answer: bounded retries, the records are removed, the authorization deactivated', async () => {
    // A new account: Pebble 2.4 reuses a valid authorization about 1 time in 100 even with
    // PEBBLE_AUTHZREUSE=0 (it creates one only when rand.Intn(100) > the setting), and an
    // order with nothing to validate never answers a challenge.
    await rm(path.join(stateDir, 'accounts'), { recursive: true, force: true });
    const before = await snapshot(stateDir, CERT);
    const challenge = /^\/chal/;
    proxy.inject({
      method: 'POST',
      path: challenge,
      action: faults.serverError('injected: challenge store down'),
    });
    const run = await renewTimed(config, '--force');
    expect(run.code).toBe(1);
    const out = run.cert(CERT);
    expect(out.errorCode).toBe('ACME_PROBLEM');
    expect(out.error).toBe(
      'acme: answer challenge: injected: challenge store down (serverInternal, HTTP 500)',
    );
    expect(arrivals(run, { method: 'POST', path: challenge })).toHaveLength(MAX_ATTEMPTS);
    expect(run.logged('challenge records removed').length).toBeGreaterThanOrEqual(1);
    expect(run.logged('authorization deactivated')).toHaveLength(1);
    expect(await leftoverTxt()).toEqual([]);
    expectSameFiles(await snapshot(stateDir, CERT), before);
  });

  test('a permanently failing CA: requests per run bounded by MAX_ATTEMPTS x operations; the backoff is persisted, so the next run sends nothing', async () => {
    const before = await snapshot(stateDir, CERT);
    proxy.inject({ action: faults.serverError('injected: the CA is down') });
    // Account known, so each certificate gets as far as one operation (new order: directory,
    // nonce, order) before giving up: at most MAX_ATTEMPTS requests per certificate.
    const operations = 2;
    const bound = MAX_ATTEMPTS * operations;

    const first = await renewTimed(twoCerts, '--force');
    expect(first.code).toBe(1);
    for (const name of [CERT, OTHER]) {
      expect(first.cert(name).status).toBe('failed');
      expect(first.cert(name).error).toMatch(
        /^acme: new order: injected: the CA is down \(serverInternal, HTTP 500\)/,
      );
    }
    const firstCount = proxy.count({ since: first.since });
    expect(firstCount).toBeGreaterThanOrEqual(operations);
    expect(firstCount).toBeLessThanOrEqual(bound);

    // A timer firing again soon after: `other` is due (it has no certificate) but in backoff.
    const second = await renewTimed(twoCerts);
    expect(proxy.count({ since: second.since })).toBe(0);
    expect(second.code).toBe(1);
    expect(second.cert(CERT).status).toBe('valid');
    expect(second.cert(OTHER).status).toBe('waiting');
    expect(second.cert(OTHER).reason).toBe('backoff');
    expect(second.cert(OTHER).detail).toContain('injected: the CA is down');

    // An operator forcing it skips the backoff, and is still bounded.
    const third = await renewTimed(twoCerts, '--force');
    expect(third.code).toBe(1);
    const thirdCount = proxy.count({ since: third.since });
    expect(thirdCount).toBeLessThanOrEqual(bound);

    const windowMs = Date.now() - first.since;
    const total = proxy.count({ since: first.since });
    expect(total).toBe(firstCount + thirdCount);
    console.info(
      `permanently failing CA: run 1 (forced) ${firstCount} requests in ${first.ms} ms, run 2 ${0} in ${second.ms} ms, ` +
        `run 3 (forced) ${thirdCount} in ${third.ms} ms: ${total} requests in ${windowMs} ms; ` +
        `by endpoint ${JSON.stringify(proxy.byEndpoint(first.since))}`,
    );
    expectSameFiles(await snapshot(stateDir, CERT), before);
  });
});
