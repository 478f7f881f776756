import type { DnsProviderInstance, DnsSettings } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { memoryLogger } from '../helpers/memory-logger';
import type { DnsProvider } from '../../src/dns/provider';
import { findProvider } from '../../src/dns/registry';
import { type Dns01Challenge, Dns01Solver, type PresentedRecord } from '../../src/dns/solver';
import { type BindServer, startBind } from '../helpers/bind';

describe('Dns01Solver against BIND', () => {
  let bind: BindServer;
  const signal = (): AbortSignal => AbortSignal.timeout(20_000);

  const instance = (name: string, zones: readonly string[] = []): DnsProviderInstance => ({
    name,
    type: 'rfc2136',
    options: {
      server: '127.0.0.1',
      port: bind.port,
      tsigKeyName: bind.tsig.name,
      tsigSecret: bind.tsig.secret,
    },
    zones,
    ttl: 60,
    propagationTimeoutMs: 10_000,
    propagationIntervalMs: 100,
  });
  const settings = (providers: Record<string, DnsProviderInstance>): DnsSettings => ({
    resolvers: [`127.0.0.1:${bind.port}`],
    nameserverPort: bind.port,
    queryTimeoutMs: 2000,
    providers,
  });
  const allValues = async (fqdns: readonly string[]): Promise<string[]> =>
    (await Promise.all(fqdns.map((f) => bind.queryTxt(f)))).flat();
  /** The real provider, created the way the solver's default factory does. */
  const real = (i: DnsProviderInstance): DnsProvider =>
    findProvider(i.type)!.create(i.options, { log: silentLogger, instance: i.name, requestTimeoutMs: 5000 });

  beforeAll(async () => {
    bind = await startBind({
      zones: [
        { name: 'example.test', records: ['_acme-challenge IN TXT "unrelated"'] },
        { name: 'sub.example.test' },
      ],
    });
  });
  afterAll(async () => {
    await bind?.stop();
  });

  test('present writes grouped records, waits for propagation; cleanup leaves nothing of ours', async () => {
    const log = memoryLogger();
    const appendCalls: { zone: string; names: string[] }[] = [];
    const solver = new Dns01Solver({
      dns: settings({ bind: instance('bind') }),
      log,
      providerFactory: (i) => {
        const p = real(i);
        return {
          appendRecords: (zone, recs, s) => {
            appendCalls.push({ zone, names: recs.map((r) => `${r.name}=${r.value}`) });
            return p.appendRecords(zone, recs, s);
          },
          deleteRecords: (zone, recs, s) => p.deleteRecords(zone, recs, s),
        };
      },
    });
    const challenges: Dns01Challenge[] = [
      { domain: 'example.test', value: 'apex-value', provider: 'bind' },
      // The wildcard's authorization is for the same name: same TXT name, another value.
      { domain: 'example.test', value: 'wildcard-value', provider: 'bind' },
      { domain: 'www.example.test', value: 'www-value', provider: 'bind' },
      { domain: 'x.sub.example.test', value: 'sub-value', provider: 'bind' },
    ];
    const reported: PresentedRecord[] = [];
    const presented = await solver.present(challenges, signal(), (recs) => reported.push(...recs));

    expect(presented).toHaveLength(4);
    expect([...reported].sort((a, b) => a.record.value.localeCompare(b.record.value))).toEqual(
      [...presented].sort((a, b) => a.record.value.localeCompare(b.record.value)),
    );
    // One call per provider+zone, with both values of _acme-challenge.example.test together.
    expect(appendCalls.sort((a, b) => a.zone.localeCompare(b.zone))).toEqual([
      {
        zone: 'example.test',
        names: [
          '_acme-challenge=apex-value',
          '_acme-challenge=wildcard-value',
          '_acme-challenge.www=www-value',
        ],
      },
      { zone: 'sub.example.test', names: ['_acme-challenge.x=sub-value'] },
    ]);
    expect(presented.find((p) => p.record.value === 'sub-value')).toEqual({
      provider: 'bind',
      zone: 'sub.example.test',
      fqdn: '_acme-challenge.x.sub.example.test',
      record: { name: '_acme-challenge.x', value: 'sub-value', ttl: 60 },
    });
    expect((await bind.queryTxt('_acme-challenge.example.test')).sort()).toEqual([
      'apex-value',
      'unrelated',
      'wildcard-value',
    ]);

    await solver.cleanup(presented, AbortSignal.timeout(10_000));
    const fqdns = [...new Set(presented.map((p) => p.fqdn))];
    // Only the record we did not write is left.
    expect(await allValues(fqdns)).toEqual(['unrelated']);
    expect(JSON.stringify(log.records)).not.toContain(bind.tsig.secret);
    await solver.close();
  });

  test('cancelled after the writes: onPresented already has them, and cleanup removes them', async () => {
    const ac = new AbortController();
    const solver = new Dns01Solver({
      dns: settings({ bind: instance('bind') }),
      log: silentLogger,
      providerFactory: (i) => {
        const p = real(i);
        return {
          appendRecords: async (zone, recs, s) => {
            const out = await p.appendRecords(zone, recs, s);
            // The order is cancelled right after the write, before propagation is confirmed.
            ac.abort();
            return out;
          },
          deleteRecords: (zone, recs, s) => p.deleteRecords(zone, recs, s),
        };
      },
    });
    const reported: PresentedRecord[] = [];
    const err = (await solver
      .present(
        [{ domain: 'cancel.example.test', value: 'cancel-value', provider: 'bind' }],
        ac.signal,
        (recs) => reported.push(...recs),
      )
      .catch((e: unknown) => e)) as CertpilotError;
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err.code).toBe('ABORTED');
    expect(reported.map((r) => r.fqdn)).toEqual(['_acme-challenge.cancel.example.test']);
    expect(err.details.presented).toEqual(reported);
    expect(await bind.queryTxt('_acme-challenge.cancel.example.test')).toEqual(['cancel-value']);

    await solver.cleanup(reported, AbortSignal.timeout(10_000));
    expect(await bind.queryTxt('_acme-challenge.cancel.example.test')).toEqual([]);
  });

  test('a failed write is still reported, because it may have reached the server', async () => {
    const solver = new Dns01Solver({
      dns: settings({ bind: instance('bind') }),
      log: silentLogger,
      providerFactory: (i) => {
        const p = real(i);
        return {
          appendRecords: async (zone, recs, s) => {
            await p.appendRecords(zone, recs, s);
            throw new CertpilotError('DNS_UPDATE_FAILED', 'test: answer lost after the write');
          },
          deleteRecords: (zone, recs, s) => p.deleteRecords(zone, recs, s),
        };
      },
    });
    const reported: PresentedRecord[] = [];
    await expect(
      solver.present(
        [{ domain: 'lost.example.test', value: 'lost-value', provider: 'bind' }],
        signal(),
        (recs) => reported.push(...recs),
      ),
    ).rejects.toMatchObject({ code: 'DNS_UPDATE_FAILED', message: 'test: answer lost after the write' });
    expect(reported).toHaveLength(1);
    await solver.cleanup(reported, AbortSignal.timeout(10_000));
    expect(await bind.queryTxt('_acme-challenge.lost.example.test')).toEqual([]);
  });

  test('propagation timeout carries what was presented', async () => {
    const solver = new Dns01Solver({
      dns: settings({ bind: { ...instance('bind'), propagationTimeoutMs: 500 } }),
      log: silentLogger,
      providerFactory: (i) => {
        const p = real(i);
        return {
          // Pretends to write but does not: the value never shows up.
          appendRecords: async (_zone, recs) => recs,
          deleteRecords: (zone, recs, s) => p.deleteRecords(zone, recs, s),
        };
      },
    });
    const err = (await solver
      .present([{ domain: 'ghost.example.test', value: 'ghost-value', provider: 'bind' }], signal())
      .catch((e: unknown) => e)) as CertpilotError;
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
    expect(err.message).toContain('lacks "ghost-value" at _acme-challenge.ghost.example.test');
    expect(err.details.presented).toHaveLength(1);
  });

  test('cleanup attempts every group and reports the ones that failed', async () => {
    const solver = new Dns01Solver({
      dns: settings({ good: instance('good'), bad: instance('bad') }),
      log: silentLogger,
      providerFactory: (i) => {
        const p = real(i);
        if (i.name === 'good') return p;
        return {
          appendRecords: (zone, recs, s) => p.appendRecords(zone, recs, s),
          deleteRecords: async () => {
            throw new CertpilotError('DNS_UPDATE_FAILED', 'test: delete failed');
          },
        };
      },
    });
    const presented = await solver.present(
      [
        { domain: 'good.example.test', value: 'good-value', provider: 'good' },
        { domain: 'bad.sub.example.test', value: 'bad-value', provider: 'bad' },
      ],
      signal(),
    );
    const err = (await solver
      .cleanup(presented, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as CertpilotError;
    expect(err).toMatchObject({ code: 'DNS_UPDATE_FAILED', message: 'test: delete failed' });
    expect(await bind.queryTxt('_acme-challenge.good.example.test')).toEqual([]);
    expect(await bind.queryTxt('_acme-challenge.bad.sub.example.test')).toEqual(['bad-value']);
    await real(instance('bad')).deleteRecords('sub.example.test', [presented[1].record], signal());
  });

  test('an unknown provider instance or a zone outside the instance’s zones writes nothing', async () => {
    const solver = new Dns01Solver({
      dns: settings({ bind: instance('bind', ['sub.example.test']) }),
      log: silentLogger,
    });
    await expect(
      solver.present([{ domain: 'x.example.test', value: 'v', provider: 'nope' }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_NO_PROVIDER',
      message: 'dns: no DNS provider instance named "nope" is configured',
    });
    await expect(
      solver.present([{ domain: 'x.example.test', value: 'v', provider: 'bind' }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_NO_PROVIDER',
      message: expect.stringContaining('may not write zone example.test'),
    });
    expect(await bind.queryTxt('_acme-challenge.x.example.test')).toEqual([]);
  });
});
