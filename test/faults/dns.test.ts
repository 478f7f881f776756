import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ChallengeJournal } from '../../src/store/journal';
import { startRoute53Server, type Route53TestServer } from '../helpers/route53-server';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { createBindBackend, type BindBackend } from '../providers/bind-backend';
import { expectSameFiles, renew, snapshot, type RenewRun } from './helpers';

/**
 * DNS faults (issue #7 item 3) during real issuances (Pebble + BIND, the in-process CLI):
 * BIND refusing updates (`rndc freeze`), BIND not answering (SIGSTOP), and the Route 53 test
 * server throttling beyond every retry and denying access. Each time: a clear error naming
 * the server or the missing permission, cleanup still attempted (the log shows it), the stored
 * pair byte-identical; and once the fault is gone, the next run succeeds and leaves no TXT value.
 */

// The SDK must never look for real credentials or reach AWS.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

/** dns.queryTimeout: also the timeout of one RFC 2136 update and of one Route 53 request. */
const QUERY_TIMEOUT_MS = 500;
const BIND_CERT = 'bindcert';
const R53_CERT = 'r53cert';
const ZONE = 'example.test';
const BIND_NAME = `_acme-challenge.a.${ZONE}`;
const R53_NAME = `_acme-challenge.c.${ZONE}`;
/** route53 `maxRetries` in the config: one retry of our own on top of the SDK's attempts. */
const R53_MAX_RETRIES = 1;
/** The AWS SDK's standard retry strategy makes 3 attempts per call. */
const SDK_ATTEMPTS = 3;
const R53_ATTEMPTS = (1 + R53_MAX_RETRIES) * SDK_ATTEMPTS;

let tb: Testbed;
let backend: BindBackend;
let r53: Route53TestServer;
/** rfc2136 only, with small timeouts. */
let config: string;
/**
 * Both certificates, with the default dns.queryTimeout (5 s): for Route 53 it is the deadline of
 * one SDK call including the SDK's own retry backoff (500 ms base for throttling) and the test
 * server mirroring each change into BIND with nsupdate, which 500 ms does not cover.
 */
let r53Config: string;
let stateDir: string;
let server: string;

beforeAll(async () => {
  tb = await startTestbed();
  backend = await createBindBackend(tb.bind);
  r53 = await startRoute53Server({
    zones: [{ id: 'Z1PUBLIC', name: ZONE }],
    onChange: (zone, fqdn, values) => backend.apply(zone, fqdn, values),
    // INSYNC at the first GetChange: the provider's 5 s poll interval would dominate the run.
    pendingPolls: 0,
  });
  stateDir = path.join(tb.dir, 'state');
  server = `127.0.0.1:${tb.bind.port}`;
  const fast = { propagationTimeout: '3s', propagationInterval: '100ms' };
  const acme = {
    directory: tb.pebble.directoryUrl,
    caBundle: tb.pebble.tlsCaPath,
    termsAgreed: true,
    email: 'ops@example.test',
    requestTimeout: '1s',
  };
  const dns = (queryTimeout: string): Record<string, unknown> => ({
    resolvers: [server],
    nameserverPort: tb.bind.port,
    queryTimeout,
    providers: {
      bind: tb.bindProvider(fast),
      r53: {
        type: 'route53',
        endpoint: r53.endpoint,
        region: 'us-east-1',
        accessKeyId: 'AKIATESTFAULTS',
        secretAccessKey: 'test-secret-key-faults',
        maxRetries: R53_MAX_RETRIES,
        ...fast,
      },
    },
  });
  const certs = [
    { name: BIND_CERT, domains: [`a.${ZONE}`], dns: { provider: 'bind' } },
    { name: R53_CERT, domains: [`c.${ZONE}`], dns: { provider: 'r53' } },
  ];
  // The exact-set guard (src/plan/schedule.ts) is not under test; the recoveries renew again.
  const defaults = { renewal: { maxOrdersPerWeek: 50 } };
  config = await tb.writeConfig(certs, {
    acme,
    defaults,
    storage: { stateDir },
    dns: dns(`${QUERY_TIMEOUT_MS}ms`),
  });
  r53Config = await tb.writeConfig(certs, { acme, defaults, storage: { stateDir }, dns: dns('5s') });
  // Both certificates exist before any fault: there is something to keep intact.
  const first = await renew(r53Config);
  if (first.code !== 0) throw new Error(`initial issuance failed:\n${first.stdout}\n${first.stderr}`);
}, 60_000);

afterAll(async () => {
  await r53?.stop();
  await backend?.close();
  await tb?.stop();
});

async function leftoverTxt(): Promise<string[]> {
  const [a, c] = await Promise.all([tb.bind.queryTxt(BIND_NAME), tb.bind.queryTxt(R53_NAME)]);
  return [...a, ...c, ...r53.txt(R53_NAME)];
}

function failed(run: RenewRun, name: string): string {
  expect(run.code).toBe(1);
  const out = run.cert(name);
  expect(out.status).toBe('failed');
  expect(out.errorCode).toBe('DNS_UPDATE_FAILED');
  return out.error ?? '';
}

/** The fault is gone: the next run removes what the failed run left (journal) and renews. */
async function expectRecovery(name: string, cfg = config): Promise<void> {
  const run = await renew(cfg, name, '--force');
  if (run.code !== 0) throw new Error(`recovery run failed:\n${run.stdout}\n${run.stderr}`);
  expect(run.cert(name).status).toBe('renewed');
  expect(await leftoverTxt()).toEqual([]);
  expect(await new ChallengeJournal(stateDir).pending()).toEqual([]);
}

/**
 * Every test starts with a new ACME account: Pebble 2.4 creates a new authorization only when
 * rand.Intn(100) > PEBBLE_AUTHZREUSE, so even at 0 it reuses a valid one about 1 time in 100,
 * and an order with nothing to validate never reaches the DNS (or challenge) fault under test.
 * A new account has no authorizations to reuse.
 */
beforeEach(async () => {
  await rm(path.join(stateDir, 'accounts'), { recursive: true, force: true });
});

describe('BIND faults (rfc2136 provider)', () => {
  test('a frozen zone: REFUSED named with the server, nothing written so nothing to clean up, store intact; after thaw the next run renews', async () => {
    const before = await snapshot(stateDir, BIND_CERT);
    await tb.bind.freeze(ZONE);
    let thawed = false;
    try {
      const run = await renew(config, BIND_CERT, '--force');
      const error = failed(run, BIND_CERT);
      expect(error).toContain(`rfc2136: update of zone ${ZONE} at ${server} failed: REFUSED`);
      expect(error).toMatch(/zone is frozen/);
      // The server refused the whole update (RFC 2136 applies all or nothing): no delete is
      // sent, and no journal entry is left for the next run to "recover".
      expect(run.logged('challenge record cleanup failed')).toEqual([]);
      expect(run.logged('challenge records removed')).toEqual([]);
      expect(await new ChallengeJournal(stateDir).pending()).toEqual([]);
      expectSameFiles(await snapshot(stateDir, BIND_CERT), before);
      expect(await tb.bind.queryTxt(BIND_NAME)).toEqual([]);
      await tb.bind.thaw(ZONE);
      thawed = true;
      await expectRecovery(BIND_CERT);
    } finally {
      if (!thawed) await tb.bind.thaw(ZONE);
    }
  });

  test('BIND not answering (SIGSTOP): the update times out naming the server, cleanup attempted, store byte-identical; after SIGCONT the next run succeeds', async () => {
    const before = await snapshot(stateDir, BIND_CERT);
    // Stop named right after the journal entry is written, i.e. after every lookup of the run
    // (CNAME, zone) and just before the update is sent: the update is what must time out.
    const add = ChallengeJournal.prototype.add;
    const spy = jest.spyOn(ChallengeJournal.prototype, 'add').mockImplementation(async function (
      this: ChallengeJournal,
      ...args: Parameters<ChallengeJournal['add']>
    ) {
      await add.apply(this, args);
      await tb.bind.pause();
    });
    let resumed = false;
    try {
      const run = await renew(config, BIND_CERT, '--force');
      if (spy.mock.calls.length !== 1)
        throw new Error(
          `the run never reached its journal write (so named was never paused); its output:\n${run.stdout}\n${run.stderr.slice(-3000)}`,
        );
      expect(spy).toHaveBeenCalledTimes(1);
      spy.mockRestore();
      const error = failed(run, BIND_CERT);
      expect(error).toBe(
        `rfc2136: update of zone ${ZONE} at ${server} failed: no answer within ${QUERY_TIMEOUT_MS} ms`,
      );
      const cleanup = run.logged('challenge record cleanup failed');
      expect(cleanup.length).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(cleanup)).toContain(
        `at ${server} failed: no answer within ${QUERY_TIMEOUT_MS} ms`,
      );
      // Bounded: one update and one cleanup timeout, not a retry storm against a dead server.
      expect(run.ms).toBeLessThan(10_000);
      expect(await new ChallengeJournal(stateDir).pending()).toEqual([BIND_CERT]);
      expectSameFiles(await snapshot(stateDir, BIND_CERT), before);

      tb.bind.resume();
      resumed = true;
      await expectRecovery(BIND_CERT);
    } finally {
      spy.mockRestore();
      if (!resumed) tb.bind.resume();
    }
  });
});

describe('Route 53 faults (route53 provider against the REST-XML test server, mirrored into BIND)', () => {
  afterEach(() => {
    for (const op of ['ChangeResourceRecordSets', 'GetChange', 'ListResourceRecordSets'] as const)
      r53.allow(op);
  });

  test('Throttling beyond every retry: bounded attempts, the error says so, cleanup attempted, store intact', async () => {
    const before = await snapshot(stateDir, R53_CERT);
    const changes = r53.count('ChangeResourceRecordSets');
    const reads = r53.count('ListResourceRecordSets');
    // Exactly as many Throttling answers as the append makes attempts: the write fails for
    // good, and nothing is left over to throttle the cleanup or a later test.
    r53.failNext('ChangeResourceRecordSets', 'Throttling', R53_ATTEMPTS);
    const run = await renew(r53Config, R53_CERT, '--force');
    if (run.code !== 1)
      throw new Error(
        `the run did not fail although every attempt was throttled; ChangeResourceRecordSets calls: ${r53.count('ChangeResourceRecordSets') - changes}:\n${run.stdout}\n${run.stderr.slice(-4000)}`,
      );
    const error = failed(run, R53_CERT);
    expect(error).toBe(
      'route53: ChangeResourceRecordSets still failing after 1 retries (Throttling: Rate exceeded)',
    );
    expect(r53.count('ChangeResourceRecordSets') - changes).toBe(R53_ATTEMPTS);
    // Cleanup read the set again (and found nothing of ours to delete).
    expect(r53.count('ListResourceRecordSets') - reads).toBeGreaterThanOrEqual(2);
    expect(run.logged('challenge records removed').length).toBeGreaterThanOrEqual(1);
    expect(await leftoverTxt()).toEqual([]);
    expectSameFiles(await snapshot(stateDir, R53_CERT), before);
  });

  test('AccessDenied on ChangeResourceRecordSets: fails at once naming the permission, cleanup attempted, store intact', async () => {
    const before = await snapshot(stateDir, R53_CERT);
    const changes = r53.count('ChangeResourceRecordSets');
    r53.deny('ChangeResourceRecordSets');
    const run = await renew(r53Config, R53_CERT, '--force');
    const error = failed(run, R53_CERT);
    expect(error).toMatch(
      /^route53: access denied: missing permission route53:ChangeResourceRecordSets on hostedzone\/Z1PUBLIC /,
    );
    expect(r53.count('ChangeResourceRecordSets') - changes).toBe(1);
    expect(run.logged('challenge records removed').length).toBeGreaterThanOrEqual(1);
    expect(await leftoverTxt()).toEqual([]);
    expectSameFiles(await snapshot(stateDir, R53_CERT), before);
  });

  test('AccessDenied on GetChange after the value was written: the cleanup still removes it; the next run finishes the job', async () => {
    const before = await snapshot(stateDir, R53_CERT);
    r53.deny('GetChange');
    const run = await renew(r53Config, R53_CERT, '--force');
    const error = failed(run, R53_CERT);
    expect(error).toMatch(/^route53: access denied: missing permission route53:GetChange on change\/\w+/);
    // The DELETE was committed (its own INSYNC wait was denied too, so cleanup reports failure).
    expect(
      r53.changeLog.filter((c) => c.action === 'DELETE' && c.name.includes(`c.${ZONE}`)).length,
    ).toBeGreaterThan(0);
    expect(run.logged('challenge record cleanup failed').length).toBeGreaterThanOrEqual(1);
    expect(await leftoverTxt()).toEqual([]);
    expectSameFiles(await snapshot(stateDir, R53_CERT), before);
    r53.allow('GetChange');
    await expectRecovery(R53_CERT, r53Config);
  });
});
