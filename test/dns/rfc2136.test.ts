import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { memoryLogger } from '../helpers/memory-logger';
import { Rfc2136Provider } from '../../src/dns/providers/rfc2136/provider';
import type { ProviderContext } from '../../src/dns/provider';
import { type BindServer, startBind } from '../helpers/bind';
import { freePort } from '../helpers/ports';
import { runProviderConformance } from './conformance';

const ctx = (log = silentLogger): ProviderContext => ({ log, instance: 'test-bind', requestTimeoutMs: 5000 });

function providerFor(
  bind: BindServer,
  extra: Record<string, unknown> = {},
  log = silentLogger,
): Rfc2136Provider {
  return new Rfc2136Provider(
    {
      server: bind.address,
      port: bind.port,
      tsigKeyName: bind.tsig.name,
      tsigAlgorithm: bind.tsig.algorithm,
      tsigSecret: bind.tsig.secret,
      ...extra,
    },
    ctx(log),
  );
}

for (const protocol of ['tcp', 'udp'] as const) {
  runProviderConformance(`rfc2136 over ${protocol}`, async () => {
    const bind = await startBind({ zones: [{ name: 'example.test' }] });
    return {
      provider: providerFor(bind, { protocol }),
      zone: 'example.test',
      readValues: (fqdn) => bind.queryTxt(fqdn),
      teardown: () => bind.stop(),
    };
  });
}

runProviderConformance('rfc2136 with hmac-sha512', async () => {
  const bind = await startBind({ zones: [{ name: 'sub.example.test' }], tsigAlgorithm: 'hmac-sha512' });
  return {
    provider: providerFor(bind),
    zone: 'sub.example.test',
    readValues: (fqdn) => bind.queryTxt(fqdn),
    teardown: () => bind.stop(),
  };
});

describe('rfc2136 errors', () => {
  let bind: BindServer;
  const signal = (): AbortSignal => AbortSignal.timeout(15_000);
  const rec = { name: '_acme-challenge.err', value: 'v', ttl: 60 };

  beforeAll(async () => {
    bind = await startBind({ zones: [{ name: 'example.test' }] });
  });
  afterAll(async () => {
    await bind?.stop();
  });

  test('a wrong secret gives BADSIG, names the server, and never shows a secret', async () => {
    const wrongSecret = Buffer.alloc(32, 9).toString('base64');
    const log = memoryLogger();
    const err = await providerFor(bind, { tsigSecret: wrongSecret }, log)
      .appendRecords('example.test', [rec], signal())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    const e = err as CertpilotError;
    expect(e.code).toBe('DNS_UPDATE_FAILED');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/^rfc2136: /);
    expect(e.message).toContain(`127.0.0.1:${bind.port}`);
    expect(e.message).toContain('NOTAUTH');
    expect(e.message).toContain('BADSIG');
    const everything = JSON.stringify([e.message, e.details, log.records]);
    expect(everything).not.toContain(wrongSecret);
    expect(everything).not.toContain(bind.tsig.secret);
    expect(await bind.queryTxt('_acme-challenge.err.example.test')).toEqual([]);
  });

  test('an unknown key name gives BADKEY', async () => {
    await expect(
      providerFor(bind, { tsigKeyName: 'nobody' }).appendRecords('example.test', [rec], signal()),
    ).rejects.toThrow(/rfc2136: .*NOTAUTH.*BADKEY/);
  });

  test('a zone the server does not serve gives NOTAUTH', async () => {
    await expect(providerFor(bind).appendRecords('other.test', [rec], signal())).rejects.toThrow(
      new RegExp(`^rfc2136: update of zone other.test at 127.0.0.1:${bind.port} failed: NOTAUTH`),
    );
  });

  test('a frozen zone refuses updates with a clear error; thawed, it accepts them again', async () => {
    await bind.freeze('example.test');
    try {
      const err = (await providerFor(bind)
        .appendRecords('example.test', [rec], signal())
        .catch((e: unknown) => e)) as CertpilotError;
      expect(err).toBeInstanceOf(CertpilotError);
      expect(err.code).toBe('DNS_UPDATE_FAILED');
      expect(err.message).toMatch(
        /^rfc2136: update of zone example.test at 127\.0\.0\.1:\d+ failed: REFUSED \(.*frozen/,
      );
      expect(err.details).toMatchObject({ rcode: 'REFUSED', zone: 'example.test' });
    } finally {
      await bind.thaw('example.test');
    }
    await providerFor(bind).appendRecords('example.test', [rec], signal());
    expect(await bind.queryTxt('_acme-challenge.err.example.test')).toEqual(['v']);
  });

  test('no server listening is a retryable error naming the server', async () => {
    const port = await freePort();
    const p = new Rfc2136Provider(
      { server: '127.0.0.1', port, tsigKeyName: 'k', tsigSecret: Buffer.alloc(32).toString('base64') },
      ctx(),
    );
    await expect(p.appendRecords('example.test', [rec], signal())).rejects.toMatchObject({
      code: 'DNS_UPDATE_FAILED',
      retryable: true,
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
  });

  test('invalid options are reported together, without the secret', () => {
    const secret = 'not*base64*but*secret';
    expect(
      () => new Rfc2136Provider({ port: 99999, tsigSecret: secret, tsigAlgorithm: 'hmac-md5' }, ctx()),
    ).toThrow(
      /rfc2136: provider "test-bind": server is required; port must be 1-65535; tsigKeyName is required; tsigAlgorithm "hmac-md5" is not supported; tsigSecret is not valid base64/,
    );
    try {
      new Rfc2136Provider({ tsigSecret: secret }, ctx());
    } catch (e) {
      expect((e as Error).message).not.toContain(secret);
    }
  });
});
