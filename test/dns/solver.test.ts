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
        {
          name: 'example.test',
          records: [
            '_acme-challenge IN TXT "unrelated"',
            '_acme-challenge.cn IN CNAME _acme-challenge.target.other.test.',
            '_acme-challenge.samezone IN CNAME _acme-challenge.elsewhere.example.test.',
          ],
        },
        { name: 'sub.example.test' },
        { name: 'other.test' },
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

  /** A factory that counts every write and delete, and does them for real. */
  const counting = (): {
    factory: (i: DnsProviderInstance) => DnsProvider;
    appends: string[];
  } => {
    const appends: string[] = [];
    return {
      appends,
      factory: (i) => {
        const p = real(i);
        return {
          appendRecords: (zone, recs, sig) => {
            appends.push(...recs.map((r) => `${i.name}:${r.name}.${zone}`));
            return p.appendRecords(zone, recs, sig);
          },
          deleteRecords: (zone, recs, sig) => p.deleteRecords(zone, recs, sig),
        };
      },
    };
  };

  test('a CNAME into a zone no provider lists is refused before any write, even for a provider with zones: []', async () => {
    const { factory, appends } = counting();
    const solver = new Dns01Solver({
      dns: settings({ any: instance('any') }),
      log: silentLogger,
      providerFactory: factory,
    });
    const expected = {
      code: 'DNS_NO_PROVIDER',
      message:
        'dns: no DNS provider may write zone other.test (_acme-challenge.cn.example.test is a CNAME to _acme-challenge.target.other.test); no provider lists it in its zones, and a CNAME alone (it may be stale or spoofed) does not allow a write into an unlisted zone: list it in the zones of the provider that may write it (zones: [other.test]), or set cnameToAnyZone: true on provider "any"',
    };
    await expect(
      solver.preflight([{ domain: 'cn.example.test', provider: 'any' }], signal()),
    ).rejects.toMatchObject(expected);
    const journaled: PresentedRecord[] = [];
    await expect(
      solver.present(
        [{ domain: 'cn.example.test', value: 'cn-value', provider: 'any' }],
        signal(),
        undefined,
        async (r) => {
          journaled.push(...r);
        },
      ),
    ).rejects.toMatchObject(expected);
    expect(appends).toEqual([]);
    expect(journaled).toEqual([]);
    expect(await bind.queryTxt('_acme-challenge.target.other.test')).toEqual([]);
  });

  test('the CNAME target is written when its zone is listed, or with cnameToAnyZone: true', async () => {
    const configs: Record<string, DnsProviderInstance>[] = [
      { any: instance('any'), other: instance('other', ['other.test']) },
      { any: { ...instance('any'), cnameToAnyZone: true } },
    ];
    for (const providers of configs) {
      const { factory, appends } = counting();
      const solver = new Dns01Solver({
        dns: settings(providers),
        log: silentLogger,
        providerFactory: factory,
      });
      const presented = await solver.present(
        [{ domain: 'cn.example.test', value: 'cn-value', provider: 'any' }],
        signal(),
      );
      const writer = 'other' in providers ? 'other' : 'any';
      expect(appends).toEqual([`${writer}:_acme-challenge.target.other.test`]);
      expect(await bind.queryTxt('_acme-challenge.target.other.test')).toEqual(['cn-value']);
      await solver.cleanup(presented, AbortSignal.timeout(10_000));
      expect(await bind.queryTxt('_acme-challenge.target.other.test')).toEqual([]);
    }
  });

  test('a CNAME that stays in the zone of the name itself needs no listing', async () => {
    const { factory, appends } = counting();
    const solver = new Dns01Solver({
      dns: settings({ any: instance('any') }),
      log: silentLogger,
      providerFactory: factory,
    });
    const [target] = await solver.preflight([{ domain: 'samezone.example.test', provider: 'any' }], signal());
    expect(target).toEqual({
      challengeFqdn: '_acme-challenge.samezone.example.test',
      fqdn: '_acme-challenge.elsewhere.example.test',
      zone: 'example.test',
      provider: 'any',
      delegated: true,
    });
    expect(appends).toEqual([]);
  });

  test('a name the resolvers serve no zone for: "no zone found" with what each resolver answered', async () => {
    const solver = new Dns01Solver({ dns: settings({ bind: instance('bind') }), log: silentLogger });
    await expect(
      solver.preflight([{ domain: 'mail.notours.test', provider: 'bind' }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_ZONE_NOT_FOUND',
      message: `dns: no zone found for mail.notours.test: no resolver serves it (CNAME query for _acme-challenge.mail.notours.test: 127.0.0.1:${bind.port} answered REFUSED)`,
    });
  });

  test('a write the server refused is not reported as presented: nothing to clean up', async () => {
    const log = memoryLogger();
    const solver = new Dns01Solver({ dns: settings({ bind: instance('bind') }), log });
    const reported: PresentedRecord[] = [];
    await bind.freeze('example.test');
    let err: CertpilotError;
    try {
      err = (await solver
        .present(
          [{ domain: 'refused.example.test', value: 'refused-value', provider: 'bind' }],
          signal(),
          (r) => reported.push(...r),
        )
        .catch((e: unknown) => e)) as CertpilotError;
    } finally {
      await bind.thaw('example.test');
    }
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err.message).toMatch(/failed: REFUSED/);
    expect(reported).toEqual([]);
    expect(err.details.presented).toEqual([]);
    expect(log.records.map((r) => r.message)).not.toContain('challenge records written');
  });
});
