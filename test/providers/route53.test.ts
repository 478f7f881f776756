import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CertpilotError } from '../../src/core/errors';
import { silentLogger, type Logger } from '../../src/core/logger';
import { memoryLogger } from '../helpers/memory-logger';
import type { ProviderContext } from '../../src/dns/provider';
import { route53Definition } from '../../src/dns/providers/route53/definition';
import { Route53Provider, type Route53Tuning } from '../../src/dns/providers/route53/provider';
import { SharedJob } from '../../src/dns/single-flight';
import { decodeTxtValue, encodeTxtValue, normalizeDnsName } from '../../src/dns/txt';
import { findProvider } from '../../src/dns/registry';
import { startBind } from '../helpers/bind';
import { startRoute53Server, type Route53TestServer, type Route53ZoneSpec } from '../helpers/route53-server';
import { runProviderConformance } from '../dns/conformance';
import { createBindBackend } from './bind-backend';

// The SDK must never look for real credentials or reach AWS: static keys + loopback endpoint,
// and no instance-metadata lookups even if a code path fell back to the default chain.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

const SECRET = 'test-secret-key-never-logged';
/** Our own backoff and INSYNC polling in milliseconds; the SDK keeps its own (real) delays. */
const FAST: Partial<Route53Tuning> = {
  retryBaseMs: 5,
  retryCapMs: 40,
  insyncPollMs: 5,
  insyncTimeoutMs: 10_000,
};
const ctx = (log: Logger = silentLogger): ProviderContext => ({
  log,
  instance: 'r53-test',
  requestTimeoutMs: 10_000,
});
const signal = (): AbortSignal => AbortSignal.timeout(30_000);

function providerFor(
  server: Route53TestServer,
  extra: Record<string, unknown> = {},
  log: Logger = silentLogger,
  tuning: Partial<Route53Tuning> = FAST,
): Route53Provider {
  return new Route53Provider(
    {
      endpoint: server.endpoint,
      region: 'us-east-1',
      accessKeyId: 'AKIATESTSTATIC',
      secretAccessKey: SECRET,
      ...extra,
    },
    ctx(log),
    tuning,
  );
}

runProviderConformance('route53 (REST-XML test server mirrored into BIND)', async () => {
  const bind = await startBind({ zones: [{ name: 'example.test' }] });
  const backend = await createBindBackend(bind);
  const server = await startRoute53Server({
    zones: [{ id: 'Z1PUBLIC', name: 'example.test' }],
    onChange: (zone, fqdn, values) => backend.apply(zone, fqdn, values),
  });
  const provider = providerFor(server);
  return {
    provider,
    zone: 'example.test',
    readValues: (fqdn) => bind.queryTxt(fqdn),
    async teardown() {
      await provider.close();
      await server.stop();
      await backend.close();
      await bind.stop();
    },
  };
});

describe('SharedJob (zone lookups shared by concurrent calls)', () => {
  test('survives one caller giving up; is cancelled when the last one does', async () => {
    let jobSignal: AbortSignal | undefined;
    const job = new SharedJob((s) => {
      jobSignal = s;
      return new Promise<string>((_resolve, reject) =>
        s.addEventListener('abort', () => reject(new Error('job aborted'))),
      );
    }, 60_000);
    job.promise.catch(() => undefined);
    const a = new AbortController();
    const b = new AbortController();
    const waitA = job.wait(a.signal, 't');
    const waitB = job.wait(b.signal, 't');
    a.abort();
    await expect(waitA).rejects.toMatchObject({ code: 'ABORTED' });
    expect(jobSignal?.aborted).toBe(false);
    b.abort();
    await expect(waitB).rejects.toMatchObject({ code: 'ABORTED' });
    expect(jobSignal?.aborted).toBe(true);
    expect(job.abandoned).toBe(true);
  });

  test('hands the result to every caller', async () => {
    const job = new SharedJob(async () => 'zone', 60_000);
    await expect(Promise.all([job.wait(signal(), 't'), job.wait(signal(), 't')])).resolves.toEqual([
      'zone',
      'zone',
    ]);
  });
});

describe('route53 TXT presentation format', () => {
  test.each([
    ['plain', 'abc-DEF_123', '"abc-DEF_123"'],
    ['quote and backslash', 'a"b\\c', '"a\\"b\\\\c"'],
    ['control and non-ASCII bytes as \\ddd', 'a\tb\u00e9', '"a\\011b\\303\\251"'],
    ['empty', '', '""'],
  ])('%s', (_label, value, encoded) => {
    expect(encodeTxtValue(value)).toBe(encoded);
    expect(decodeTxtValue(encoded)).toBe(value);
  });

  test('values over 255 bytes are split into 255-byte strings and join back', () => {
    const value = 'x'.repeat(255) + 'y'.repeat(45);
    const encoded = encodeTxtValue(value);
    expect(encoded).toBe(`"${'x'.repeat(255)}" "${'y'.repeat(45)}"`);
    expect(decodeTxtValue(encoded)).toBe(value);
  });

  test.each([
    ['_acme-challenge.Example.TEST.', '_acme-challenge.example.test'],
    ['\\052.example.test.', '*.example.test'],
  ])('normalizes %s', (raw, want) => expect(normalizeDnsName(raw)).toBe(want));
});

describe('route53 provider against the REST-XML test server', () => {
  const ZONES: Route53ZoneSpec[] = [
    { id: 'Z1PUBLIC', name: 'example.test' },
    { id: 'Z2SUB', name: 'sub.example.test' },
    { id: 'Z3PRIVATE', name: 'example.test', private: true },
    { id: 'Z4INTERNAL', name: 'internal.test', private: true },
    // Sorts right after example.test in Route 53's reversed-label order; must never be taken for it.
    { id: 'Z5X', name: 'xexample.test' },
  ];
  const ACME = '_acme-challenge.example.test';
  let server: Route53TestServer;
  let provider: Route53Provider | undefined;

  beforeEach(async () => {
    server = await startRoute53Server({ zones: ZONES });
  });
  afterEach(async () => {
    await provider?.close();
    provider = undefined;
    await server.stop();
  });

  test('apex and wildcard values coexist: two concurrent appends to one name', async () => {
    provider = providerFor(server);
    await Promise.all([
      provider.appendRecords(
        'example.test',
        [{ name: '_acme-challenge', value: 'apex-value', ttl: 60 }],
        signal(),
      ),
      provider.appendRecords(
        'example.test',
        [{ name: '_acme-challenge', value: 'wildcard-value', ttl: 60 }],
        signal(),
      ),
    ]);
    expect(server.txt(ACME).sort()).toEqual(['apex-value', 'wildcard-value']);
    expect(server.count('ChangeResourceRecordSets')).toBe(2);
  });

  test('all records of one call go in one change batch', async () => {
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [
        { name: '_acme-challenge', value: 'v1', ttl: 60 },
        { name: '_acme-challenge.www', value: 'v2', ttl: 60 },
        { name: '_acme-challenge', value: 'v3', ttl: 60 },
      ],
      signal(),
    );
    expect(server.count('ChangeResourceRecordSets')).toBe(1);
    expect(server.txt(ACME)).toEqual(['v1', 'v3']);
    expect(server.txt('_acme-challenge.www.example.test')).toEqual(['v2']);
    expect(server.txtTtl(ACME)).toBe(60);
  });

  test('foreign values (and their TTL) survive our append and delete', async () => {
    server.setTxt(ACME, ['foreign-a', 'foreign-b'], 300);
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'ours', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['foreign-a', 'foreign-b', 'ours']);
    await provider.deleteRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'ours', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['foreign-a', 'foreign-b']);
    expect(server.txtTtl(ACME)).toBe(300);
  });

  test('a long value is written as 255-byte strings and appending it again changes nothing', async () => {
    const value = 'k'.repeat(300);
    provider = providerFor(server);
    await provider.appendRecords('example.test', [{ name: '_acme-challenge', value, ttl: 60 }], signal());
    await provider.appendRecords('example.test', [{ name: '_acme-challenge', value, ttl: 60 }], signal());
    expect(server.txt(ACME)).toEqual([value]);
    expect(server.count('ChangeResourceRecordSets')).toBe(1);
  });

  test('waits for INSYNC with GetChange', async () => {
    await server.stop();
    server = await startRoute53Server({ zones: ZONES, pendingPolls: 3 });
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      signal(),
    );
    expect(server.count('GetChange')).toBe(4); // 3 x PENDING, then INSYNC
  });

  test('Throttling and PriorRequestNotComplete beyond the SDK attempts: still succeeds, retries counted', async () => {
    provider = providerFor(server, { maxRetries: 5 });
    // 4 > the SDK's 3 attempts, so our own retry loop has to take over.
    server.failNext('ChangeResourceRecordSets', 'Throttling', 4);
    server.failNext('ListResourceRecordSets', 'PriorRequestNotComplete', 4);
    server.failNext('GetChange', 'Throttling', 1);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'patient', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['patient']);
    expect(server.count('ChangeResourceRecordSets')).toBe(5);
    expect(server.count('ListResourceRecordSets')).toBe(5);
    expect(provider.stats.retries).toBe(4 + 4 + 1);
  });

  test('5xx errors are retried too', async () => {
    provider = providerFor(server, { maxRetries: 3 });
    server.failNext('ChangeResourceRecordSets', 'InternalError', 3);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['v']);
    expect(provider.stats.retries).toBe(3);
  });

  test('retries are bounded: a retryable error after maxRetries', async () => {
    provider = providerFor(server, { maxRetries: 1 });
    server.failNext('ListHostedZonesByName', 'Throttling', 100);
    const err = await provider
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err).toMatchObject({ code: 'DNS_UPDATE_FAILED', retryable: true });
    expect((err as Error).message).toMatch(
      /^route53: ListHostedZonesByName still failing after 1 retries \(Throttling/,
    );
    expect(server.count('ListHostedZonesByName')).toBe(2 * 3); // (1 + maxRetries) x the SDK's 3 attempts
  });

  test('AccessDenied fails at once and names the missing permission', async () => {
    provider = providerFor(server, { maxRetries: 8 });
    server.deny('ChangeResourceRecordSets');
    const err = await provider
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect((err as Error).message).toMatch(
      /^route53: access denied: missing permission route53:ChangeResourceRecordSets on hostedzone\/Z1PUBLIC /,
    );
    expect(err).toMatchObject({ code: 'DNS_UPDATE_FAILED', retryable: false });
    // Not retried by us nor by the SDK, and no INSYNC wait started.
    expect(server.count('ChangeResourceRecordSets')).toBe(1);
    expect(server.count('GetChange')).toBe(0);
  });

  test.each([
    ['ListHostedZonesByName', /missing permission route53:ListHostedZonesByName \(/],
    ['ListResourceRecordSets', /missing permission route53:ListResourceRecordSets on hostedzone\/Z1PUBLIC/],
    ['GetChange', /missing permission route53:GetChange on change\/C\w+/],
  ] as const)('AccessDenied on %s names that permission', async (op, pattern) => {
    provider = providerFor(server, { maxRetries: 8 });
    server.deny(op);
    await expect(
      provider.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toThrow(pattern);
    expect(server.count(op)).toBe(1);
  });

  test('an unknown hostedZoneId fails with the zone named', async () => {
    provider = providerFor(server, { hostedZoneId: 'ZNOSUCHZONE' });
    await expect(
      provider.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_ZONE_NOT_FOUND',
      message: expect.stringMatching(/^route53: hosted zone ZNOSUCHZONE does not exist/),
    });
  });

  test('an explicit hostedZoneId is used without any zone lookup', async () => {
    provider = providerFor(server, { hostedZoneId: '/hostedzone/Z3PRIVATE' });
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'pinned', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME, 'Z3PRIVATE')).toEqual(['pinned']);
    expect(server.count('ListHostedZonesByName')).toBe(0);
  });

  test('a record set changed by someone else between our read and write: re-read, nothing lost', async () => {
    provider = providerFor(server);
    server.setTxt(ACME, ['before']);
    server.afterNextRead((s) => s.setTxt(ACME, ['before', 'intruder']));
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'ours', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['before', 'intruder', 'ours']);
    expect(provider.stats.conflicts).toBe(1);

    server.afterNextRead((s) => s.setTxt(ACME, ['before', 'intruder', 'ours', 'late']));
    await provider.deleteRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'ours', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['before', 'intruder', 'late']);
    expect(provider.stats.conflicts).toBe(2);
  });

  test('a set created by someone else before our first write is merged, not overwritten', async () => {
    provider = providerFor(server);
    server.afterNextRead((s) => s.setTxt(ACME, ['raced-in']));
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'ours', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual(['raced-in', 'ours']);
  });

  test('the last value deleted removes the set; the set vanishing under us is fine', async () => {
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'only', ttl: 60 }],
      signal(),
    );
    await provider.deleteRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'only', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual([]);
    server.setTxt(ACME, ['gone-soon']);
    server.afterNextRead((s) => s.setTxt(ACME, []));
    await provider.deleteRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'gone-soon', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME)).toEqual([]);
  });

  test('private zones are skipped unless privateZone is set', async () => {
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'public', ttl: 60 }],
      signal(),
    );
    expect(server.txt(ACME, 'Z1PUBLIC')).toEqual(['public']);
    expect(server.txt(ACME, 'Z3PRIVATE')).toEqual([]);
    await expect(
      provider.appendRecords('internal.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_ZONE_NOT_FOUND',
      message: expect.stringContaining('private zones are skipped unless privateZone is set'),
    });

    const priv = providerFor(server, { privateZone: true });
    try {
      await priv.appendRecords(
        'example.test',
        [{ name: '_acme-challenge', value: 'private', ttl: 60 }],
        signal(),
      );
      await priv.appendRecords(
        'internal.test',
        [{ name: '_acme-challenge', value: 'internal', ttl: 60 }],
        signal(),
      );
    } finally {
      await priv.close();
    }
    expect(server.txt(ACME, 'Z3PRIVATE')).toEqual(['private']);
    expect(server.txt(ACME, 'Z1PUBLIC')).toEqual(['public']);
    expect(server.txt('_acme-challenge.internal.test', 'Z4INTERNAL')).toEqual(['internal']);
  });

  test('the deepest zone that really contains the name is chosen', async () => {
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [
        { name: '_acme-challenge.www.sub', value: 'in-sub', ttl: 60 },
        { name: '_acme-challenge.notsub', value: 'in-parent', ttl: 60 },
      ],
      signal(),
    );
    expect(server.txt('_acme-challenge.www.sub.example.test', 'Z2SUB')).toEqual(['in-sub']);
    expect(server.txt('_acme-challenge.www.sub.example.test', 'Z1PUBLIC')).toEqual([]);
    expect(server.txt('_acme-challenge.notsub.example.test', 'Z1PUBLIC')).toEqual(['in-parent']);
    // Two hosted zones, two change batches.
    expect(server.count('ChangeResourceRecordSets')).toBe(2);
  });

  test('no hosted zone at all: DNS_ZONE_NOT_FOUND, and a look-alike zone is not taken', async () => {
    provider = providerFor(server);
    await expect(
      provider.appendRecords('ample.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_ZONE_NOT_FOUND',
      message: expect.stringMatching(/^route53: no public hosted zone contains _acme-challenge\.ample\.test/),
    });
  });

  test('zone lookups are cached', async () => {
    provider = providerFor(server);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'a', ttl: 60 }],
      signal(),
    );
    const lookups = server.count('ListHostedZonesByName');
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'b', ttl: 60 }],
      signal(),
    );
    expect(server.count('ListHostedZonesByName')).toBe(lookups);
  });

  test('cancelling while backing off from throttling stops at once with ABORTED', async () => {
    provider = providerFor(server, { maxRetries: 50 }, silentLogger, {
      ...FAST,
      retryBaseMs: 60_000,
      retryCapMs: 60_000,
    });
    server.failNext('ListHostedZonesByName', 'Throttling', 1000);
    const ac = new AbortController();
    const call = provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      ac.signal,
    );
    // Abort once the SDK's first round of 3 attempts is through and our backoff has begun.
    const poll = setInterval(() => {
      if (server.count('ListHostedZonesByName') >= 3) ac.abort();
    }, 5);
    try {
      await expect(call).rejects.toMatchObject({ code: 'ABORTED', message: 'route53: cancelled' });
    } finally {
      clearInterval(poll);
    }
  });

  test('roleArn: credentials come from STS AssumeRole (with externalId) and sign the Route 53 calls', async () => {
    provider = providerFor(server, {
      roleArn: 'arn:aws:iam::123456789012:role/certpilot-dns',
      externalId: 'ext-123',
      sessionName: 'certpilot-test',
      stsEndpoint: server.endpoint,
    });
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'assumed', ttl: 60 }],
      signal(),
    );
    expect(server.assumeRoleCalls).toEqual([
      {
        roleArn: 'arn:aws:iam::123456789012:role/certpilot-dns',
        externalId: 'ext-123',
        sessionName: 'certpilot-test',
      },
    ]);
    // The source (static) key signed AssumeRole only; every Route 53 call used the temporary key.
    expect(server.accessKeys[0]).toBe('AKIATESTSTATIC');
    expect(new Set(server.accessKeys.slice(1))).toEqual(new Set([server.assumedAccessKeyId]));
    expect(server.txt(ACME)).toEqual(['assumed']);
  });

  test('secrets never reach logs or error messages', async () => {
    const log = memoryLogger();
    provider = providerFor(server, { maxRetries: 2 }, log);
    server.failNext('ListResourceRecordSets', 'Throttling', 3);
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      signal(),
    );
    server.deny('ChangeResourceRecordSets');
    const err = await provider
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'w', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect(log.records.length).toBeGreaterThan(0);
    expect(JSON.stringify(log.records)).not.toContain(SECRET);
    expect(String((err as Error).message)).not.toContain(SECRET);
  });
});

describe('config/iam/route53-policy.json', () => {
  interface Statement {
    Action: string | string[];
    Condition?: Record<string, Record<string, string[]>>;
  }
  const policy = JSON.parse(
    readFileSync(path.join(__dirname, '..', '..', 'config', 'iam', 'route53-policy.json'), 'utf8'),
  ) as {
    Statement: Statement[];
  };
  const actions = policy.Statement.flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]));
  const change = policy.Statement.find((st) => st.Action === 'route53:ChangeResourceRecordSets');
  const cond = (op: string, key: string): string[] => change?.Condition?.[op]?.[key] ?? [];
  const glob = (pattern: string): RegExp =>
    new RegExp(
      '^' +
        pattern
          .split('*')
          .map((p) => p.replace(/[.?+^$()[\]{}|\\]/g, '\\$&'))
          .join('.*') +
        '$',
    );

  test('allows exactly the calls the provider makes, and every change it sends', async () => {
    const server = await startRoute53Server({ zones: [{ id: 'Z1', name: 'example.test' }] });
    const p = providerFor(server);
    try {
      server.setTxt('_acme-challenge.example.test', ['foreign']);
      server.afterNextRead((s) => s.setTxt('_acme-challenge.example.test', ['foreign', 'raced']));
      const recs = [
        { name: '_acme-challenge', value: 'a', ttl: 60 },
        { name: '_acme-challenge.www', value: 'b', ttl: 60 },
      ];
      await p.appendRecords('example.test', recs, signal());
      await p.deleteRecords('example.test', recs, signal());
    } finally {
      await p.close();
      await server.stop();
    }
    const used = (
      ['ListHostedZonesByName', 'ListResourceRecordSets', 'ChangeResourceRecordSets', 'GetChange'] as const
    ).filter((op) => server.count(op) > 0);
    expect(new Set(actions)).toEqual(new Set(used.map((op) => `route53:${op}`)));
    expect(server.changeLog.length).toBeGreaterThan(0);
    for (const c of server.changeLog) {
      expect(cond('ForAllValues:StringEquals', 'route53:ChangeResourceRecordSetsActions')).toContain(
        c.action,
      );
      expect(cond('ForAllValues:StringEquals', 'route53:ChangeResourceRecordSetsRecordTypes')).toContain(
        c.type,
      );
      expect(
        cond('ForAllValues:StringLike', 'route53:ChangeResourceRecordSetsNormalizedRecordNames').some((g) =>
          glob(g).test(c.name),
        ),
      ).toBe(true);
    }
  });
});

describe('route53 definition', () => {
  test('is registered under its code and aliases', () => {
    expect(findProvider('route53')).toBe(route53Definition);
    expect(findProvider('AWS')).toBe(route53Definition);
  });

  test.each([
    [{}, []],
    [{ accessKeyId: 'AKIA' }, ['secretAccessKey']],
    [{ secretAccessKey: 's' }, ['accessKeyId']],
    [{ sessionToken: 't' }, ['sessionToken']],
    [{ profile: 'p', accessKeyId: 'AKIA', secretAccessKey: 's' }, ['profile']],
    [{ externalId: 'x' }, ['externalId']],
    [{ roleArn: 'role/x' }, ['roleArn']],
    [{ roleArn: 'arn:aws:iam::123456789012:role/dns', externalId: 'x' }, []],
    [{ hostedZoneId: 'z-lower' }, ['hostedZoneId']],
    [{ hostedZoneId: '/hostedzone/Z0123ABC' }, []],
  ] as const)('validate(%j) flags %j', (options, fields) => {
    expect((route53Definition.validate?.(options) ?? []).map(([f]) => f)).toEqual(fields);
  });

  test('create() returns a working provider', async () => {
    // INSYNC at once: create() uses the default (real-world) polling interval.
    const server = await startRoute53Server({ zones: [{ id: 'Z1', name: 'example.test' }], pendingPolls: 0 });
    const p = route53Definition.create(
      { endpoint: server.endpoint, accessKeyId: 'AKIADEF', secretAccessKey: SECRET, region: 'us-east-1' },
      ctx(),
    );
    try {
      await p.appendRecords('example.test', [{ name: '@', value: 'apex', ttl: 60 }], signal());
      expect(server.txt('example.test')).toEqual(['apex']);
    } finally {
      await p.close?.();
      await server.stop();
    }
  });
});
