import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { memoryLogger } from '../helpers/memory-logger';
import { waitForPropagation } from '../../src/dns/propagation';
import { Rfc2136Provider } from '../../src/dns/providers/rfc2136/provider';
import { DnsResolver } from '../../src/dns/resolver';
import { type BindServer, startBind } from '../helpers/bind';

describe('waitForPropagation against BIND', () => {
  let bind: BindServer;
  let resolver: DnsResolver;
  let provider: Rfc2136Provider;
  const signal = (): AbortSignal => AbortSignal.timeout(15_000);

  beforeAll(async () => {
    bind = await startBind({ zones: [{ name: 'example.test' }, { name: 'sub.example.test' }] });
    resolver = new DnsResolver({
      resolvers: [`127.0.0.1:${bind.port}`],
      nameserverPort: bind.port,
      queryTimeoutMs: 2000,
    });
    provider = new Rfc2136Provider(
      { server: '127.0.0.1', port: bind.port, tsigKeyName: bind.tsig.name, tsigSecret: bind.tsig.secret },
      { log: silentLogger, instance: 'bind', requestTimeoutMs: 5000 },
    );
  });
  afterAll(async () => {
    await bind?.stop();
  });

  test('resolves once every nameserver serves every value', async () => {
    await provider.appendRecords(
      'example.test',
      [
        { name: '_acme-challenge', value: 'apex', ttl: 60 },
        { name: '_acme-challenge', value: 'wild', ttl: 60 },
        { name: '_acme-challenge.www', value: 'www', ttl: 60 },
      ],
      signal(),
    );
    const log = memoryLogger();
    await waitForPropagation(
      { '_acme-challenge.example.test': ['apex', 'wild'], '_acme-challenge.www.example.test.': ['www'] },
      'example.test',
      { resolver, timeoutMs: 10_000, intervalMs: 100, signal: signal(), log },
    );
    expect(log.records.some((r) => r.level === 'debug' && r.message === 'propagated')).toBe(true);
  });

  test('works in a delegated child zone', async () => {
    await provider.appendRecords(
      'sub.example.test',
      [{ name: '_acme-challenge', value: 'child', ttl: 60 }],
      signal(),
    );
    await waitForPropagation(new Map([['_acme-challenge.sub.example.test', ['child']]]), 'sub.example.test', {
      resolver,
      timeoutMs: 10_000,
      intervalMs: 100,
      signal: signal(),
      log: silentLogger,
    });
  });

  test('times out naming the lagging nameserver, its address and the missing value', async () => {
    await provider.appendRecords(
      'example.test',
      [{ name: '_acme-challenge.lag', value: 'present', ttl: 60 }],
      signal(),
    );
    const started = Date.now();
    const err = (await waitForPropagation(
      { '_acme-challenge.lag.example.test': ['present', 'never-written'] },
      'example.test',
      {
        resolver,
        timeoutMs: 800,
        intervalMs: 100,
        signal: signal(),
        log: silentLogger,
      },
    ).catch((e: unknown) => e)) as CertpilotError;
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
    expect(err.message).toMatch(/^dns: /);
    expect(err.message).toContain(
      'ns1.example.test (127.0.0.1) lacks "never-written" at _acme-challenge.lag.example.test',
    );
    expect(err.message).not.toContain('"present"');
    expect(err.details.lagging).toEqual([
      {
        nameserver: 'ns1.example.test',
        address: '127.0.0.1',
        fqdn: '_acme-challenge.lag.example.test',
        missing: ['never-written'],
        problem: undefined,
      },
    ]);
    // Bounded by the timeout (generous upper bound: this is not a timing assertion).
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("the caller's cancellation ends the wait with ABORTED, not a propagation timeout", async () => {
    const ac = new AbortController();
    const wait = waitForPropagation({ '_acme-challenge.cancel.example.test': ['never'] }, 'example.test', {
      resolver,
      timeoutMs: 30_000,
      intervalMs: 50,
      signal: ac.signal,
      log: {
        ...silentLogger,
        // Cancel once the first round has reported the value missing: the wait is then in progress.
        debug: (message) => {
          if (message === 'not yet propagated') ac.abort();
        },
      },
    });
    await expect(wait).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
