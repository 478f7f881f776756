import { CertpilotError } from '../../src/core/errors';
import { silentLogger, type Logger } from '../../src/core/logger';
import { memoryLogger } from '../helpers/memory-logger';
import type { ProviderContext } from '../../src/dns/provider';
import { cloudflareDefinition } from '../../src/dns/providers/cloudflare/definition';
import { CloudflareProvider, type CloudflareTuning } from '../../src/dns/providers/cloudflare/provider';
import { findProvider } from '../../src/dns/registry';
import { startBind } from '../helpers/bind';
import { startCloudflareServer, type CloudflareTestServer } from '../helpers/cloudflare-server';
import { runProviderConformance } from '../dns/conformance';
import { createBindBackend } from './bind-backend';

const TOKEN = 'cf-test-token-0123456789-never-shown';
const FAST: Partial<CloudflareTuning> = { retryBaseMs: 5, retryAfterCapMs: 20 };
const ctx = (log: Logger = silentLogger): ProviderContext => ({
  log,
  instance: 'cf-test',
  requestTimeoutMs: 10_000,
});
const signal = (): AbortSignal => AbortSignal.timeout(30_000);

function providerFor(
  server: CloudflareTestServer,
  extra: Record<string, unknown> = {},
  log: Logger = silentLogger,
  tuning: Partial<CloudflareTuning> = FAST,
): CloudflareProvider {
  return new CloudflareProvider({ apiToken: TOKEN, baseUrl: server.baseUrl, ...extra }, ctx(log), tuning);
}

runProviderConformance('cloudflare (v4 JSON test server mirrored into BIND, 2 items per page)', async () => {
  const bind = await startBind({ zones: [{ name: 'example.test' }] });
  const backend = await createBindBackend(bind);
  const server = await startCloudflareServer({
    token: TOKEN,
    zones: [{ name: 'example.test' }],
    maxPerPage: 2,
    onChange: (zone, fqdn, values) => backend.apply(zone, fqdn, values),
  });
  return {
    provider: providerFor(server),
    zone: 'example.test',
    readValues: (fqdn) => bind.queryTxt(fqdn),
    async teardown() {
      await server.stop();
      await backend.close();
      await bind.stop();
    },
  };
});

describe('cloudflare provider against the v4 test server', () => {
  const ACME = '_acme-challenge.example.test';
  let server: CloudflareTestServer;

  beforeEach(async () => {
    server = await startCloudflareServer({
      token: TOKEN,
      zones: [{ name: 'example.test' }, { name: 'sub.example.test' }, { name: 'xexample.test' }],
      maxPerPage: 2,
    });
  });
  afterEach(async () => {
    await server.stop();
  });

  test('records are written quoted, sent with a Bearer token, and read back unquoted', async () => {
    const p = providerFor(server);
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'tok"en', ttl: 30 }], signal());
    expect(server.records(ACME).map((r) => [r.content, r.ttl])).toEqual([['"tok\\"en"', 60]]); // TTL raised to Cloudflare's minimum
    expect(server.txt(ACME)).toEqual(['tok"en']);
    expect(new Set(server.authHeaders)).toEqual(new Set([`Bearer ${TOKEN}`]));
  });

  test('the deepest zone containing the name is found by walking up the labels', async () => {
    const p = providerFor(server);
    await p.appendRecords(
      'example.test',
      [{ name: '_acme-challenge.www.sub', value: 'deep', ttl: 60 }],
      signal(),
    );
    expect(server.records('_acme-challenge.www.sub.example.test').map((r) => r.zoneId)).toEqual([
      server.zoneIds['sub.example.test'],
    ]);
    // _acme-challenge.www.sub.example.test, www.sub.example.test: misses; sub.example.test: hit.
    expect(server.count('listZones')).toBe(3);
  });

  test('zone pages are followed; the active zone wins over a pending one of the same name', async () => {
    await server.stop();
    server = await startCloudflareServer({
      token: TOKEN,
      zones: [
        { name: 'example.test', status: 'pending', id: 'a'.repeat(32) },
        { name: 'example.test', status: 'active', id: 'b'.repeat(32) },
      ],
      maxPerPage: 1,
    });
    const p = providerFor(server);
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal());
    expect(server.records(ACME).map((r) => r.zoneId)).toEqual(['b'.repeat(32)]);
  });

  test('a configured zoneId skips zone discovery', async () => {
    const p = providerFor(server, { zoneId: server.zoneIds['example.test'] });
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal());
    expect(server.count('listZones')).toBe(0);
    expect(server.txt(ACME)).toEqual(['v']);
  });

  test('foreign values survive, including bare (unquoted) ones; only our values are deleted across pages', async () => {
    server.addRecord(ACME, '"foreign-1"');
    server.addRecord(ACME, 'foreign-bare');
    server.addRecord(ACME, '"foreign-2"');
    const p = providerFor(server);
    await p.appendRecords(
      'example.test',
      [
        { name: '_acme-challenge', value: 'ours-1', ttl: 60 },
        { name: '_acme-challenge', value: 'ours-2', ttl: 60 },
      ],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['foreign-1', 'foreign-bare', 'foreign-2', 'ours-1', 'ours-2']);
    await p.deleteRecords(
      'example.test',
      [
        { name: '_acme-challenge', value: 'ours-1', ttl: 60 },
        { name: '_acme-challenge', value: 'ours-2', ttl: 60 },
      ],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['foreign-1', 'foreign-bare', 'foreign-2']);
  });

  test('a value stored bare by an older client counts as present and is deleted as ours', async () => {
    server.addRecord(ACME, 'legacy');
    const p = providerFor(server);
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'legacy', ttl: 60 }], signal());
    expect(server.count('createRecord')).toBe(0);
    await p.deleteRecords('example.test', [{ name: '_acme-challenge', value: 'legacy', ttl: 60 }], signal());
    expect(server.txt(ACME)).toEqual([]);
  });

  test('concurrent appends of the same value: one record, "identical record exists" is success', async () => {
    const p = providerFor(server);
    await Promise.all(
      [1, 2, 3].map(() =>
        p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'same', ttl: 60 }], signal()),
      ),
    );
    expect(server.txt(ACME)).toEqual(['same']);
  });

  test('a record deleted by someone else meanwhile (404, 81044) is success', async () => {
    const p = providerFor(server);
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal());
    server.failNext('deleteRecord', { status: 404, code: 81044, message: 'Record does not exist.' });
    await expect(
      p.deleteRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).resolves.toBeDefined();
  });

  test('429 with Retry-After is retried (wait capped) and counted', async () => {
    const p = providerFor(server, { maxRetries: 5 });
    server.rateLimitNext('createRecord', 2, 3600); // asks for an hour; the cap keeps this test fast
    server.rateLimitNext('listRecords', 1, 1);
    server.failNext('listZones', { status: 503, message: 'Service Unavailable' });
    await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal());
    expect(server.txt(ACME)).toEqual(['v']);
    expect(server.count('createRecord')).toBe(3);
    expect(p.stats.retries).toBe(4);
  });

  test("still rate limited after maxRetries: a retryable error with Cloudflare's message", async () => {
    const p = providerFor(server, { maxRetries: 2 });
    server.rateLimitNext('listZones', 100, 0);
    const err = await p
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err).toMatchObject({ retryable: true, code: 'DNS_UPDATE_FAILED' });
    expect((err as Error).message).toBe(
      'cloudflare: find zone _acme-challenge.example.test failed (HTTP 429): 971 Please wait and consider throttling your request speed',
    );
    expect(server.count('listZones')).toBe(3);
  });

  test("a rejected token fails at once, with Cloudflare's errors[] and without the token", async () => {
    const p = new CloudflareProvider({ apiToken: 'wrong-token-value', baseUrl: server.baseUrl }, ctx(), FAST);
    const err = await p
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /^cloudflare: find zone .* failed \(HTTP 403\): 10000 Authentication error \(the API token needs Zone:Read and DNS:Edit/,
    );
    expect((err as Error).message).not.toContain('wrong-token-value');
    expect(err).toMatchObject({ retryable: false });
    expect(server.count('listZones')).toBe(1);
  });

  test('the token never appears in messages or logs, even when the server echoes it', async () => {
    const log = memoryLogger();
    const p = providerFor(server, {}, log);
    server.rateLimitNext('listZones', 1, 0);
    server.failNext('createRecord', {
      status: 400,
      code: 1004,
      message: `DNS Validation Error near ${TOKEN}`,
    });
    const err = await p
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      'cloudflare: create TXT _acme-challenge.example.test failed (HTTP 400): 1004 DNS Validation Error near [redacted]',
    );
    expect(log.records.length).toBeGreaterThan(0);
    expect(JSON.stringify(log.records)).not.toContain(TOKEN);
  });

  test('no zone: DNS_ZONE_NOT_FOUND, and a look-alike zone is not taken', async () => {
    const p = providerFor(server);
    await expect(
      p.appendRecords('ample.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_ZONE_NOT_FOUND',
      message: expect.stringMatching(
        /^cloudflare: no zone visible to this API token contains _acme-challenge\.ample\.test/,
      ),
    });
  });

  test('cancelling during a Retry-After wait stops at once with ABORTED', async () => {
    const p = providerFor(server, { maxRetries: 5 }, silentLogger, { retryAfterCapMs: 60_000 });
    server.rateLimitNext('listZones', 10, 60);
    const ac = new AbortController();
    const call = p.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      ac.signal,
    );
    const poll = setInterval(() => {
      if (server.count('listZones') >= 1) ac.abort();
    }, 5);
    try {
      await expect(call).rejects.toMatchObject({ code: 'ABORTED', message: 'cloudflare: cancelled' });
    } finally {
      clearInterval(poll);
    }
  });
});

describe('cloudflare definition', () => {
  test('is registered', () => {
    expect(findProvider('cloudflare')).toBe(cloudflareDefinition);
    expect(findProvider('CF')).toBe(cloudflareDefinition);
    expect(cloudflareDefinition.options.apiToken).toMatchObject({
      sensitive: true,
      env: 'CLOUDFLARE_DNS_API_TOKEN',
      required: true,
    });
  });

  test.each([
    [{ apiToken: 't' }, []],
    [{ apiToken: 't', zoneId: '0123456789abcdef0123456789abcdef' }, []],
    [{ apiToken: 't', zoneId: 'example.test' }, ['zoneId']],
  ] as const)('validate(%j) flags %j', (options, fields) => {
    expect((cloudflareDefinition.validate?.(options) ?? []).map(([f]) => f)).toEqual(fields);
  });

  test('create() returns a working provider', async () => {
    const server = await startCloudflareServer({ token: TOKEN, zones: [{ name: 'example.test' }] });
    try {
      const p = cloudflareDefinition.create({ apiToken: TOKEN, baseUrl: server.baseUrl }, ctx());
      await p.appendRecords('example.test', [{ name: '@', value: 'apex', ttl: 60 }], signal());
      expect(server.txt('example.test')).toEqual(['apex']);
    } finally {
      await server.stop();
    }
  });
});
