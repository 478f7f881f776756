import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ChallengeJournal } from '../../src/store/journal';
import { renew, type RenewRun } from '../faults/helpers';
import {
  CF_TOKEN,
  FAKE_ACCESS_KEY,
  challengeNames,
  expectIssued,
  startProviderWorld,
  type MirroredChange,
  type ProviderWorld,
} from './provider-setup';

/**
 * Full issuances (the real CLI in process, Pebble validating against a real BIND) through each
 * API provider (issue #3, "Tests that must exist and pass"):
 * - route53: the real AWS SDK -> the REST-XML test server -> BIND, with zones discovered by
 *   ListHostedZonesByName; one name, apex + wildcard, two hosted zones, and the faults users hit
 *   (throttling, AccessDenied, a record set changed between read and write);
 * - cloudflare: the JSON API test server -> BIND;
 * - exec: test/fixtures/exec/nsupdate-hook.sh calling nsupdate against BIND.
 * Every success: exit 0, exactly the configured names, chained to Pebble's issuing root, and no
 * `_acme-challenge` value left in BIND or in the test server.
 */

// Also set in startProviderWorld; here too so it holds before anything loads the SDK.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

let w: ProviderWorld;
let stateDir: string;

beforeAll(async () => {
  w = await startProviderWorld();
  stateDir = path.join(w.tb.dir, 'state');
}, 60_000);

afterAll(async () => {
  await w?.stop();
});

/** Writes a config with `certs`, all through provider instance `provider`, and runs `renew`. */
async function issueWith(
  provider: Record<string, unknown>,
  certs: { name: string; domains: string[] }[],
  opts: { stateDir?: string; args?: string[] } = {},
): Promise<RenewRun> {
  const config = await w.tb.writeConfig(
    certs.map((c) => ({ ...c, dns: { provider: 'p' } })),
    {
      storage: { stateDir: opts.stateDir ?? stateDir },
      // The per-name order guard (src/plan/schedule.ts) is not under test here.
      defaults: { renewal: { maxOrdersPerWeek: 50 } },
    },
    { p: provider },
  );
  return renew(config, ...(opts.args ?? []));
}

function expectRenewed(run: RenewRun, name: string): void {
  if (run.code !== 0) throw new Error(`renew failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  expect(run.code).toBe(0);
  expect(run.cert(name).status).toBe('renewed');
}

function changesAt(log: readonly MirroredChange[], fqdn: string, from = 0): MirroredChange[] {
  return log.slice(from).filter((c) => c.fqdn === fqdn);
}

describe('route53: SDK -> REST-XML test server -> BIND -> Pebble', () => {
  test('(a) one name: one CREATE of one value, one DELETE; signed with the static keys', async () => {
    const domains = ['r53.example.test'];
    const [acme] = challengeNames(domains);
    const from = w.r53Changes.length;
    const crrs = w.r53.count('ChangeResourceRecordSets');
    const run = await issueWith(w.route53Provider(), [{ name: 'r53-one', domains }]);
    expectRenewed(run, 'r53-one');
    await expectIssued(w.tb, stateDir, 'r53-one', domains);
    // Zone discovered (no hostedZoneId), one append batch, one cleanup batch.
    expect(w.r53.count('ListHostedZonesByName')).toBeGreaterThan(0);
    expect(w.r53.count('ChangeResourceRecordSets') - crrs).toBe(2);
    const seen = changesAt(w.r53Changes, acme, from);
    expect(seen.map((c) => [c.zoneId, c.values.length])).toEqual([
      ['Z1EXAMPLE', 1],
      ['Z1EXAMPLE', 0],
    ]);
    // Every request was signed with the configured fake key: no other credential source was used.
    expect(new Set(w.r53.accessKeys)).toEqual(new Set([FAKE_ACCESS_KEY]));
    expect(await w.leftovers([acme])).toEqual({});
  });

  test('(b) apex + wildcard in one certificate: both values in one record set, written in one batch', async () => {
    const domains = ['example.test', '*.example.test'];
    const acme = '_acme-challenge.example.test';
    const from = w.r53Changes.length;
    const logFrom = w.r53.changeLog.length;
    const run = await issueWith(w.route53Provider(), [{ name: 'r53-wild', domains }]);
    expectRenewed(run, 'r53-wild');
    await expectIssued(w.tb, stateDir, 'r53-wild', domains);
    // The set at the shared name held both (distinct) values at once, then was removed whole:
    // nothing clobbered the other value (the UPSERT trap of other clients).
    const seen = changesAt(w.r53Changes, acme, from);
    expect(seen.map((c) => c.values.length)).toEqual([2, 0]);
    expect(new Set(seen[0]!.values).size).toBe(2);
    expect(w.r53.changeLog.slice(logFrom).filter((c) => c.name === acme)).toEqual([
      { action: 'CREATE', name: acme, type: 'TXT' },
      { action: 'DELETE', name: acme, type: 'TXT' },
    ]);
    expect(await w.leftovers([acme])).toEqual({});
  });

  test('(c) two names in two hosted zones: each written into its own discovered zone', async () => {
    const domains = ['r53c.example.test', 'www.other.test'];
    const [inExample, inOther] = challengeNames(domains) as [string, string];
    const from = w.r53Changes.length;
    const crrs = w.r53.count('ChangeResourceRecordSets');
    const run = await issueWith(w.route53Provider(), [{ name: 'r53-zones', domains }]);
    expectRenewed(run, 'r53-zones');
    await expectIssued(w.tb, stateDir, 'r53-zones', domains);
    expect(changesAt(w.r53Changes, inExample, from).map((c) => [c.zoneId, c.values.length])).toEqual([
      ['Z1EXAMPLE', 1],
      ['Z1EXAMPLE', 0],
    ]);
    expect(changesAt(w.r53Changes, inOther, from).map((c) => [c.zoneId, c.values.length])).toEqual([
      ['Z2OTHER', 1],
      ['Z2OTHER', 0],
    ]);
    // One batch per hosted zone for the append and for the cleanup.
    expect(w.r53.count('ChangeResourceRecordSets') - crrs).toBe(4);
    expect(await w.leftovers([inExample, inOther])).toEqual({});
  });

  test('(d) Throttling and PriorRequestNotComplete on ChangeResourceRecordSets: the renewal still succeeds, retries counted', async () => {
    const domains = ['throttle.example.test'];
    const [acme] = challengeNames(domains) as [string];
    expectRenewed(await issueWith(w.route53Provider(), [{ name: 'r53-throttle', domains }]), 'r53-throttle');
    const first = await expectIssued(w.tb, stateDir, 'r53-throttle', domains);

    const from = w.r53Changes.length;
    const crrs = w.r53.count('ChangeResourceRecordSets');
    // 4 faults, all met by the append: the SDK's 3 attempts (T, T, P) fail, our retry (P, ok)
    // succeeds; the provider's default maxRetries (8) leaves plenty of room.
    const INJECTED = 4;
    w.r53.failNext('ChangeResourceRecordSets', 'Throttling', 2);
    w.r53.failNext('ChangeResourceRecordSets', 'PriorRequestNotComplete', 2);
    const run = await issueWith(w.route53Provider(), [{ name: 'r53-throttle', domains }], {
      args: ['r53-throttle', '--force'],
    });
    expectRenewed(run, 'r53-throttle');
    const renewed = await expectIssued(w.tb, stateDir, 'r53-throttle', domains);
    expect(renewed.serialNumber).not.toBe(first.serialNumber);

    const requests = w.r53.count('ChangeResourceRecordSets') - crrs;
    const applied = changesAt(w.r53Changes, acme, from);
    expect(applied.map((c) => c.values.length)).toEqual([1, 0]);
    expect(requests).toBeGreaterThan(applied.length);
    expect(requests).toBe(applied.length + INJECTED);
    // Our own retry layer took over after the SDK's attempts, and said so.
    const retries = run.logged('retrying').filter((l) => l.operation === 'ChangeResourceRecordSets');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries.map((l) => l.error)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^(Throttling|PriorRequestNotComplete)$/)]),
    );
    expect(await w.leftovers([acme])).toEqual({});
  });

  test('(e) AccessDenied on ChangeResourceRecordSets: fails at once naming the permission, exit 1, nothing on disk', async () => {
    const domains = ['denied.example.test'];
    const [acme] = challengeNames(domains) as [string];
    const ownState = path.join(w.tb.dir, 'state-denied');
    const crrs = w.r53.count('ChangeResourceRecordSets');
    w.r53.deny('ChangeResourceRecordSets');
    let run: RenewRun;
    try {
      run = await issueWith(w.route53Provider(), [{ name: 'r53-denied', domains }], { stateDir: ownState });
    } finally {
      w.r53.allow('ChangeResourceRecordSets');
    }
    expect(run.code).toBe(1);
    const out = run.cert('r53-denied');
    expect(out.status).toBe('failed');
    expect(out.errorCode).toBe('DNS_UPDATE_FAILED');
    expect(out.error).toMatch(
      /^route53: access denied: missing permission route53:ChangeResourceRecordSets on hostedzone\/Z1EXAMPLE \(.*not authorized to perform: route53:ChangeResourceRecordSets/,
    );
    // Exactly one request: no SDK retry, no retry of ours, no wait until a timeout.
    expect(w.r53.count('ChangeResourceRecordSets') - crrs).toBe(1);
    expect(run.logged('retrying')).toEqual([]);
    expect(run.ms).toBeLessThan(10_000);
    // No certificate, key or chain was stored (only the ACME account, which is reused later),
    // and the challenge journal has nothing pending: the cleanup ran.
    const stored = existsSync(ownState) ? await readdir(ownState, { recursive: true }) : [];
    expect(
      stored.map(String).filter((f) => !f.startsWith('accounts') && /\.(pem|p12|pfx|der|crt|key)$/.test(f)),
    ).toEqual([]);
    expect(existsSync(path.join(ownState, 'certs', 'r53-denied'))).toBe(false);
    expect(await new ChallengeJournal(ownState).pending()).toEqual([]);
    expect(await w.leftovers([acme])).toEqual({});
  });

  test('(f) the record set changes between our read and our write: issuance succeeds, the foreign value survives cleanup', async () => {
    const domains = ['race.example.test'];
    const [acme] = challengeNames(domains) as [string];
    const FOREIGN = 'foreign-value-written-by-another-client';
    const from = w.r53Changes.length;
    const logFrom = w.r53.changeLog.length;
    // The first read is the append's: right after it, another writer creates the set.
    w.r53.afterNextRead((s) => s.setTxt(acme, [FOREIGN], 120));
    try {
      const run = await issueWith(w.route53Provider(), [{ name: 'r53-race', domains }]);
      expectRenewed(run, 'r53-race');
      await expectIssued(w.tb, stateDir, 'r53-race', domains);
      expect(run.logged('record set changed while we wrote it; re-reading')).toHaveLength(1);
      // CREATE rejected (the set now exists); re-read, DELETE exact + CREATE merged; cleanup
      // DELETE exact + CREATE of the remainder. Never an UPSERT that could drop the other value.
      expect(
        w.r53.changeLog
          .slice(logFrom)
          .filter((c) => c.name === acme)
          .map((c) => c.action),
      ).toEqual(['CREATE', 'DELETE', 'CREATE', 'DELETE', 'CREATE']);
      const seen = changesAt(w.r53Changes, acme, from);
      expect(seen).toHaveLength(2);
      expect(seen[0]!.values).toHaveLength(2);
      expect(seen[0]!.values).toContain(FOREIGN);
      expect(seen[1]!.values).toEqual([FOREIGN]);
      // Only the foreign value is left, in Route 53 (with its TTL) and in BIND.
      expect(w.r53.txt(acme)).toEqual([FOREIGN]);
      expect(w.r53.txtTtl(acme)).toBe(120);
      expect(await w.tb.bind.queryTxt(acme)).toEqual([FOREIGN]);
    } finally {
      w.r53.setTxt(acme, []);
      await w.backend.apply('example.test', acme, []);
    }
    expect(await w.leftovers([acme])).toEqual({});
  });
});

describe('cloudflare: JSON API test server -> BIND -> Pebble', () => {
  test('one name', async () => {
    const domains = ['cf.example.test'];
    const [acme] = challengeNames(domains) as [string];
    const from = w.cfChanges.length;
    const run = await issueWith(w.cloudflareProvider(), [{ name: 'cf-one', domains }]);
    expectRenewed(run, 'cf-one');
    await expectIssued(w.tb, stateDir, 'cf-one', domains);
    expect(changesAt(w.cfChanges, acme, from).map((c) => [c.zone, c.values.length])).toEqual([
      ['example.test', 1],
      ['example.test', 0],
    ]);
    expect(w.cf.count('createRecord')).toBeGreaterThanOrEqual(1);
    // The token came from apiToken_file and was sent as a Bearer token, and nothing else.
    expect(new Set(w.cf.authHeaders)).toEqual(new Set([`Bearer ${CF_TOKEN}`]));
    expect(await w.leftovers([acme])).toEqual({});
  });

  test('apex + wildcard: two records at one name coexist, both deleted by id', async () => {
    const domains = ['other.test', '*.other.test'];
    const acme = '_acme-challenge.other.test';
    const from = w.cfChanges.length;
    const creates = w.cf.count('createRecord');
    const deletes = w.cf.count('deleteRecord');
    const run = await issueWith(w.cloudflareProvider(), [{ name: 'cf-wild', domains }]);
    expectRenewed(run, 'cf-wild');
    await expectIssued(w.tb, stateDir, 'cf-wild', domains);
    const seen = changesAt(w.cfChanges, acme, from).map((c) => c.values.length);
    expect(seen).toEqual([1, 2, 1, 0]);
    expect(w.cf.count('createRecord') - creates).toBe(2);
    expect(w.cf.count('deleteRecord') - deletes).toBe(2);
    expect(w.cf.records(acme)).toEqual([]);
    expect(await w.leftovers([acme])).toEqual({});
  });
});

describe('exec: nsupdate hook script -> BIND -> Pebble', () => {
  test('a name and its wildcard through test/fixtures/exec/nsupdate-hook.sh', async () => {
    const domains = ['exec.example.test', '*.exec.example.test'];
    const [acme] = challengeNames(domains) as [string];
    const run = await issueWith(w.execProvider(), [{ name: 'exec-wild', domains }]);
    expectRenewed(run, 'exec-wild');
    await expectIssued(w.tb, stateDir, 'exec-wild', domains);
    // Both values were written by the hook and both removed by it.
    expect(run.logged('challenge records written').length).toBeGreaterThanOrEqual(1);
    expect(await w.leftovers([acme])).toEqual({});
  });
});
