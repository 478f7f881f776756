import dns from 'node:dns';
import net from 'node:net';
import { silentLogger } from '../../src/core/logger';
import { useResolversForConnections } from '../../src/dns/host-lookup';
import type { DnsProvider, ProviderContext } from '../../src/dns/provider';
import { CloudflareProvider } from '../../src/dns/providers/cloudflare/provider';
import { Route53Provider } from '../../src/dns/providers/route53/provider';
import { type BindServer, startBind } from '../helpers/bind';
import { startCloudflareServer } from '../helpers/cloudflare-server';
import { startRoute53Server } from '../helpers/route53-server';

/**
 * The HTTP-API providers with dns.resolvers set: their API host, given by NAME, is resolved
 * through the configured resolvers (BIND serves `api.example.test`), never through getaddrinfo.
 * Cloudflare goes through src/core/http.ts; the Route 53 SDK through agents with the lookup.
 */

process.env.AWS_EC2_METADATA_DISABLED = 'true';

const ctx: ProviderContext = { log: silentLogger, instance: 'lookup-test', requestTimeoutMs: 10_000 };
const record = { name: '_acme-challenge.www', value: 'token-by-name', ttl: 60 };

let bind: BindServer;
let systemLookups: jest.SpyInstance;

beforeAll(async () => {
  bind = await startBind({ zones: [{ name: 'example.test', records: ['api IN A 127.0.0.1'] }] });
  useResolversForConnections({
    resolvers: [`127.0.0.1:${bind.port}`],
    nameserverPort: bind.port,
    queryTimeoutMs: 2000,
  });
});
afterAll(async () => {
  await bind?.stop();
});
const realLookup = dns.lookup.bind(dns);
beforeEach(() => {
  // A tripwire: a NAME given to getaddrinfo fails at once (and never leaves the machine).
  systemLookups = jest.spyOn(dns, 'lookup').mockImplementation(((host: string, ...rest: unknown[]) => {
    if (net.isIP(host) !== 0) return (realLookup as (...a: unknown[]) => void)(host, ...rest);
    const cb = rest[rest.length - 1] as (err: Error) => void;
    process.nextTick(() =>
      cb(Object.assign(new Error(`system resolver asked for ${host}`), { code: 'ETRIPWIRE' })),
    );
  }) as unknown as typeof dns.lookup);
});
afterEach(() => {
  // Test servers call dns.lookup on their listen address (an IP); no NAME may go there.
  const names = systemLookups.mock.calls.map((c) => String(c[0])).filter((h) => net.isIP(h) === 0);
  systemLookups.mockRestore();
  expect(names).toEqual([]);
});

/** `url` with its host replaced by api.example.test (same port and path). */
function byName(url: string): string {
  const u = new URL(url);
  u.hostname = 'api.example.test';
  return u.toString().replace(/\/$/, '');
}

async function appendAndDelete(provider: DnsProvider): Promise<void> {
  const signal = AbortSignal.timeout(30_000);
  expect(await provider.appendRecords('example.test', [record], signal)).toEqual([record]);
  await provider.deleteRecords('example.test', [record], signal);
}

test('cloudflare: the API by name', async () => {
  const server = await startCloudflareServer({
    token: 'cf-token-by-name',
    zones: [{ name: 'example.test' }],
  });
  try {
    const provider = new CloudflareProvider(
      { apiToken: 'cf-token-by-name', baseUrl: byName(server.baseUrl) },
      ctx,
    );
    await appendAndDelete(provider);
    expect(server.count('createRecord')).toBe(1);
    expect(server.count('deleteRecord')).toBe(1);
  } finally {
    await server.stop();
  }
});

test('route53: the API by name', async () => {
  const server = await startRoute53Server({ zones: [{ id: 'Z1BYNAME', name: 'example.test' }] });
  const provider = new Route53Provider(
    {
      endpoint: byName(server.endpoint),
      region: 'us-east-1',
      accessKeyId: 'AKIATESTSTATIC',
      secretAccessKey: 'test-secret-key-by-name',
    },
    ctx,
    { retryBaseMs: 5, retryCapMs: 40, insyncPollMs: 5, insyncTimeoutMs: 10_000 },
  );
  try {
    await appendAndDelete(provider);
    expect(server.txt('_acme-challenge.www.example.test')).toEqual([]);
  } finally {
    await provider.close();
    await server.stop();
  }
});
