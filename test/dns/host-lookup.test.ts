import dns, { type LookupAddress } from 'node:dns';
import net from 'node:net';
import { CertpilotError } from '../../src/core/errors';
import { httpRequest } from '../../src/core/http';
import { createHostLookup, type HostLookup, hostLookupFor } from '../../src/dns/host-lookup';
import { DnsResolver } from '../../src/dns/resolver';
import { type BindServer, startBind } from '../helpers/bind';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/** One lookup call as a promise: [address, family] or, with `all`, the list. */
function lookupOnce(
  lookup: HostLookup,
  host: string,
  options: dns.LookupOptions,
): Promise<{ address: string | LookupAddress[]; family: number | undefined }> {
  return new Promise((resolve, reject) => {
    lookup(host, options, (err, address, family) => (err ? reject(err) : resolve({ address, family })));
  });
}

describe('host lookup through the configured resolvers (BIND)', () => {
  let bind: BindServer;
  let resolver: DnsResolver;
  let queries: string[];
  let now: number;
  let lookup: HostLookup;
  let systemLookups: jest.SpyInstance;

  beforeAll(async () => {
    bind = await startBind({
      zones: [
        {
          name: 'example.test',
          records: [
            'v4 30 IN A 127.0.0.1',
            'v6 IN AAAA ::1',
            'both IN A 127.0.0.1',
            'both IN AAAA ::1',
            'alias IN CNAME v4',
            'txt-only IN TXT "no address"',
          ],
        },
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

  beforeEach(() => {
    queries = [];
    now = 1_000_000;
    // Counts what reaches the resolvers, so "no query" and "cached" are observable.
    const counting = {
      recursive: (name: string, type: Parameters<DnsResolver['recursive']>[1], signal: AbortSignal) => {
        queries.push(`${type} ${name}`);
        return resolver.recursive(name, type, signal);
      },
    };
    lookup = createHostLookup(counting, () => now);
    // A host name given to getaddrinfo in these tests is a failure of the thing under test.
    systemLookups = jest.spyOn(dns, 'lookup');
  });
  afterEach(() => {
    // Servers in the test call dns.lookup on their listen address (an IP); no NAME may go there.
    const names = systemLookups.mock.calls.map((c) => String(c[0])).filter((h) => net.isIP(h) === 0);
    expect(names).toEqual([]);
    systemLookups.mockRestore();
  });

  test('family 4 asks A only and answers one address with its family', async () => {
    expect(await lookupOnce(lookup, 'v4.example.test', { family: 4 })).toEqual({
      address: '127.0.0.1',
      family: 4,
    });
    expect(queries).toEqual(['A v4.example.test']);
  });

  test('family 6 asks AAAA only', async () => {
    expect(await lookupOnce(lookup, 'V6.Example.Test.', { family: 6 })).toEqual({
      address: '::1',
      family: 6,
    });
    expect(queries).toEqual(['AAAA v6.example.test']);
  });

  test('all: every address, IPv4 first; a CNAME is followed', async () => {
    expect((await lookupOnce(lookup, 'both.example.test', { all: true })).address).toEqual([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
    expect((await lookupOnce(lookup, 'alias.example.test', { all: true })).address).toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);
  });

  test('IP literals and localhost are answered without a query', async () => {
    expect(await lookupOnce(lookup, '192.0.2.7', {})).toEqual({ address: '192.0.2.7', family: 4 });
    expect(await lookupOnce(lookup, '2001:db8::1', { all: true })).toEqual({
      address: [{ address: '2001:db8::1', family: 6 }],
      family: undefined,
    });
    expect((await lookupOnce(lookup, 'localhost', { all: true })).address).toEqual([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
    expect(await lookupOnce(lookup, 'localhost', { family: 6 })).toEqual({ address: '::1', family: 6 });
    expect(queries).toEqual([]);
  });

  test('answers are cached for their TTL, then asked again', async () => {
    await lookupOnce(lookup, 'v4.example.test', { family: 4 });
    now += 29_000;
    await lookupOnce(lookup, 'v4.example.test', { family: 4 });
    expect(queries).toEqual(['A v4.example.test']);
    now += 2_000; // past the record's TTL of 30 s
    await lookupOnce(lookup, 'v4.example.test', { family: 4 });
    expect(queries).toEqual(['A v4.example.test', 'A v4.example.test']);
  });

  test('a name without addresses (NODATA, NXDOMAIN) fails with a typed error naming it', async () => {
    for (const name of ['txt-only.example.test', 'missing.example.test']) {
      const err = (await lookupOnce(lookup, name, {}).catch((e: unknown) => e)) as CertpilotError;
      expect(err).toBeInstanceOf(CertpilotError);
      expect(err.code).toBe('DNS_QUERY_FAILED');
      expect(err.message).toBe(`dns: ${name} has no A or AAAA record at the configured resolvers`);
    }
  });

  test('a resolver that does not serve the name: the query failure, not a system lookup', async () => {
    const err = (await lookupOnce(lookup, 'www.elsewhere.invalid', {}).catch(
      (e: unknown) => e,
    )) as CertpilotError;
    expect(err.code).toBe('DNS_QUERY_FAILED');
    expect(err.message).toContain('answered REFUSED');
  });

  test('net.connect by name connects to the address the resolvers gave', async () => {
    const server = net.createServer((s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const sock = net.connect({ host: 'v4.example.test', port, lookup });
        let data = '';
        sock.on('data', (c: Buffer) => (data += c.toString()));
        sock.on('end', () => resolve(data));
        sock.on('error', reject);
      });
      expect(text).toBe('hello');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  describe('httpRequest (src/core/http.ts) with the lookup', () => {
    let receiver: WebhookReceiver;
    beforeAll(async () => {
      receiver = await startWebhookReceiver({ respond: () => 202 });
    });
    afterAll(async () => {
      await receiver.close();
    });

    test('a URL by name reaches the server; the Host header keeps the name', async () => {
      const url = new URL(receiver.url);
      url.hostname = 'both.example.test';
      const res = await httpRequest({
        url: url.toString(),
        method: 'POST',
        body: '{"a":1}',
        headers: { 'content-type': 'application/json' },
        timeoutMs: 5000,
        lookup,
      });
      expect(res.status).toBe(202);
      const got = await receiver.waitFor((r) => r.body === '{"a":1}');
      expect(got.headers.host).toBe(`both.example.test:${url.port}`);
    });
  });
});

describe('hostLookupFor', () => {
  test('no resolvers configured: undefined (the system resolver is the documented behaviour)', () => {
    expect(hostLookupFor({ resolvers: [], nameserverPort: 53, queryTimeoutMs: 1000 })).toBeUndefined();
  });

  test('one lookup (and cache) per resolver list', () => {
    const a = hostLookupFor({ resolvers: ['127.0.0.1:5353'], nameserverPort: 53, queryTimeoutMs: 1000 });
    const b = hostLookupFor({ resolvers: ['127.0.0.1:5353'], nameserverPort: 53, queryTimeoutMs: 1000 });
    const c = hostLookupFor({ resolvers: ['127.0.0.2:5353'], nameserverPort: 53, queryTimeoutMs: 1000 });
    expect(a).toBeDefined();
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });
});
