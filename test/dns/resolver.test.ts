import dns from 'node:dns';
import { CertpilotError } from '../../src/core/errors';
import { DnsResolver } from '../../src/dns/resolver';
import { txtValues } from '../../src/dns/wire';
import { type BindServer, startBind } from '../helpers/bind';
import { freePort } from '../helpers/ports';

describe('DnsResolver against BIND', () => {
  let bind: BindServer;
  let resolver: DnsResolver;
  const signal = (): AbortSignal => AbortSignal.timeout(15_000);

  beforeAll(async () => {
    bind = await startBind({
      zones: [
        {
          name: 'example.test',
          records: ['www IN A 127.0.0.1', 'alias IN CNAME www', 'txt IN TXT "hello" "world"'],
        },
        { name: 'sub.example.test' },
      ],
    });
    resolver = new DnsResolver({
      resolvers: [`127.0.0.1:${bind.port}`],
      nameserverPort: bind.port,
      queryTimeoutMs: 2000,
    });
  });
  afterAll(async () => {
    await bind?.stop();
  });

  test.each([
    ['_acme-challenge.www.example.test', 'example.test'],
    ['_acme-challenge.example.test', 'example.test'],
    ['example.test', 'example.test'],
    ['WWW.Example.Test.', 'example.test'],
    ['_acme-challenge.alias.example.test', 'example.test'],
    // Zone cut: sub.example.test is delegated from example.test and has its own SOA.
    ['sub.example.test', 'sub.example.test'],
    ['_acme-challenge.sub.example.test', 'sub.example.test'],
    ['_acme-challenge.a.b.sub.example.test', 'sub.example.test'],
    ['ns1.sub.example.test', 'sub.example.test'],
  ])('findZone(%j) = %j', async (fqdn, zone) => {
    expect(await resolver.findZone(fqdn, signal())).toBe(zone);
  });

  test('a name no resolver serves: no zone found, with what each resolver answered', async () => {
    const err = (await resolver
      .findZone('www.nowhere.invalid', signal())
      .catch((e: unknown) => e)) as CertpilotError;
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err.code).toBe('DNS_ZONE_NOT_FOUND');
    expect(err.message).toBe(
      `dns: no zone found for www.nowhere.invalid: no resolver serves it (SOA query for www.nowhere.invalid: 127.0.0.1:${bind.port} answered REFUSED)`,
    );
  });

  test('a refusal by one resolver and no answer from another stays a query failure (may be passing)', async () => {
    const dead = await freePort();
    const r = new DnsResolver({
      resolvers: [`127.0.0.1:${dead}`, `127.0.0.1:${bind.port}`],
      nameserverPort: bind.port,
      queryTimeoutMs: 2000,
    });
    const err = (await r
      .findZone('www.nowhere.invalid', signal())
      .catch((e: unknown) => e)) as CertpilotError;
    expect(err.code).toBe('DNS_QUERY_FAILED');
    expect(err.message).toContain(`127.0.0.1:${bind.port} answered REFUSED`);
    expect(err.message).toContain(`127.0.0.1:${dead}: `);
  });

  test.each([
    ['example.test', [{ name: 'ns1.example.test', addresses: ['127.0.0.1'] }]],
    ['sub.example.test', [{ name: 'ns1.sub.example.test', addresses: ['127.0.0.1'] }]],
  ])('nameservers(%j)', async (zone, expected) => {
    expect(await resolver.nameservers(zone, signal())).toEqual(expected);
  });

  test('queryAuthoritative asks with RD=0 and gets an authoritative, uncached answer', async () => {
    const r = await resolver.queryAuthoritative('127.0.0.1', undefined, 'txt.example.test', 'TXT', signal());
    expect(r.rcode).toBe('NOERROR');
    expect(r.flags.aa).toBe(true);
    expect(r.flags.rd).toBe(false);
    // Two character-strings form one value.
    expect(txtValues(r, 'txt.example.test')).toEqual(['helloworld']);
    const missing = await resolver.queryAuthoritative(
      '127.0.0.1',
      bind.port,
      'none.example.test',
      'TXT',
      signal(),
    );
    expect(missing.rcode).toBe('NXDOMAIN');
  });

  test('a resolver that does not answer is skipped for the next one', async () => {
    // Nothing listens on a free port: the connected UDP socket gets ECONNREFUSED at once.
    const dead = await freePort();
    const r = new DnsResolver({
      resolvers: [`127.0.0.1:${dead}`, `127.0.0.1:${bind.port}`],
      nameserverPort: bind.port,
      queryTimeoutMs: 2000,
    });
    expect(await r.findZone('_acme-challenge.sub.example.test', signal())).toBe('sub.example.test');
  });

  test('an aborted signal stops the lookup', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(resolver.findZone('example.test', ac.signal)).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('DnsResolver settings', () => {
  test('no configured resolvers means the system resolvers', () => {
    const r = new DnsResolver({ resolvers: [], nameserverPort: 53, queryTimeoutMs: 1000 });
    const system = dns.getServers();
    expect(r.resolvers.length).toBe(system.length);
  });

  test.each([
    [
      ['192.0.2.1', '[2001:db8::1]:5353', '2001:db8::2'],
      ['192.0.2.1:53', '[2001:db8::1]:5353', '[2001:db8::2]:53'],
    ],
  ])('parses %j', (resolvers, expected) => {
    expect(new DnsResolver({ resolvers, nameserverPort: 53, queryTimeoutMs: 1000 }).resolvers).toEqual(
      expected,
    );
  });
});
