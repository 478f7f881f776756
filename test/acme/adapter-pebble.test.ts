import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type * as AcmeClient from 'acme-client';
import { AcmeAdapter } from '../../src/acme/adapter';
import { AcmeService, type IssueResult } from '../../src/acme/service';
import { AcmeTransport } from '../../src/acme/transport';
import { loadConfig } from '../../src/config/load';
import type { AcmeSettings, AgentConfig } from '../../src/config/types';
import { silentLogger } from '../../src/core/logger';
import { Dns01Solver } from '../../src/dns/solver';
import { generatePrivateKey, splitPemChain } from '../../src/x509';
import { startPebble, type Pebble } from '../helpers/pebble';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Two ACME adapters side by side in one process, on two real Pebbles, each with its own TLS CA
 * (test/helpers/pebble.ts makes a fresh one per start): each trusts only its own CA bundle,
 * both issue at the same time, and acme-client's process-wide axios instance sees no request
 * and keeps its interceptors (nothing process-global is used or changed).
 */
let tb: Testbed;
let pebbleB: Pebble;
let config: AgentConfig;
let acmeA: AcmeSettings;
let acmeB: AcmeSettings;
let acme: typeof AcmeClient;
let globalAxiosRequests = 0;
let interceptorsBefore: number;
const services: AcmeService[] = [];

/** axios keeps its interceptors in `handlers`; null entries are ejected ones. */
function interceptorCount(): number {
  const handlers = (acme.axios.interceptors.request as unknown as { handlers: unknown[] }).handlers;
  return handlers.filter(Boolean).length;
}

beforeAll(async () => {
  tb = await startTestbed();
  pebbleB = await startPebble({ dnsServer: `127.0.0.1:${tb.bind.port}` });
  config = await loadConfig({ path: await tb.writeConfig([]) });
  acmeA = config.acme;
  acmeB = { ...config.acme, directoryUrl: pebbleB.directoryUrl, caBundle: pebbleB.tlsCaPath };
  acme = (await import('acme-client')) as typeof AcmeClient;
  // Test-side only: count what reaches acme-client's shared axios (the adapter must send nothing there).
  acme.axios.interceptors.request.use((c) => {
    globalAxiosRequests++;
    return c;
  });
  interceptorsBefore = interceptorCount();
}, 60_000);

afterAll(async () => {
  for (const s of services) s.close();
  await pebbleB?.stop();
  await tb?.stop();
});

async function open(settings: AcmeSettings, name: string): Promise<AcmeService> {
  const s = await AcmeService.open(settings, path.join(tb.dir, `state-${name}`), silentLogger);
  services.push(s);
  return s;
}

async function issue(service: AcmeService, domain: string): Promise<IssueResult> {
  return service.issue({
    name: domain,
    domains: [domain],
    keyPem: await generatePrivateKey('ec-p256'),
    providerFor: () => 'bind',
    solver: new Dns01Solver({ dns: config.dns, log: silentLogger }),
    signal: AbortSignal.timeout(60_000),
  });
}

/** True when the top of the chain was signed by `rootPem`. */
function signedBy(result: IssueResult, rootPem: string): boolean {
  const top = splitPemChain(result.fullchain).at(-1)!;
  return new X509Certificate(top).verify(new X509Certificate(rootPem).publicKey);
}

describe('two adapters, two CAs, one process', () => {
  test('both issue concurrently, each from its own CA with its own bundle; the shared axios is untouched', async () => {
    expect(await readFile(acmeA.caBundle!, 'utf8')).not.toBe(await readFile(acmeB.caBundle!, 'utf8'));
    const [a, b] = await Promise.all([open(acmeA, 'a'), open(acmeB, 'b')]);
    const [fromA, fromB] = await Promise.all([
      issue(a, 'side-a.example.test'),
      issue(b, 'side-b.example.test'),
    ]);

    expect(new URL(fromA.orderUrl).origin).toBe(new URL(tb.pebble.directoryUrl).origin);
    expect(new URL(fromB.orderUrl).origin).toBe(new URL(pebbleB.directoryUrl).origin);
    const [rootA, rootB] = await Promise.all([tb.pebble.issuingRoot(), pebbleB.issuingRoot()]);
    expect([signedBy(fromA, rootA), signedBy(fromA, rootB)]).toEqual([true, false]);
    expect([signedBy(fromB, rootB), signedBy(fromB, rootA)]).toEqual([true, false]);

    // Each adapter counted its own requests: account, order, authorization, challenge, polls...
    for (const s of [a, b]) {
      expect(s.stats.total).toBeGreaterThanOrEqual(6);
      expect(s.stats.byEndpoint['POST /order-plz']).toBe(1);
    }
    expect(globalAxiosRequests).toBe(0);
    expect(interceptorCount()).toBe(interceptorsBefore);
  });

  test("an adapter given the other CA's bundle is refused by TLS, while the right one works", async () => {
    const crossed = await open({ ...acmeB, caBundle: acmeA.caBundle! }, 'crossed');
    const err = await crossed.directoryInfo(AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ACME_NETWORK', retryable: false });
    expect((err as Error).message).toMatch(
      /^acme: read directory: TLS error: .*is not trusted by this host; .*acme\.caBundle/,
    );
    const right = await open(acmeB, 'right');
    await expect(right.directoryInfo(AbortSignal.timeout(10_000))).resolves.toMatchObject({ profiles: {} });
    expect(globalAxiosRequests).toBe(0);
  });
});

describe('cancellation', () => {
  test('aborting the signal ends a request the CA never answers, long before the request timeout', async () => {
    const [cert, key] = await Promise.all([
      readFile(tb.pebble.tlsCertPath, 'utf8'),
      readFile(tb.pebble.tlsKeyPath, 'utf8'),
    ]);
    const ac = new AbortController();
    // Accepts the request and never answers; aborts the caller when the request has arrived.
    const silent = https.createServer({ cert, key }, () => ac.abort());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const transport = await AcmeTransport.create({ caBundle: acmeA.caBundle!, requestTimeoutMs: 30_000 });
      const adapter = new AcmeAdapter({
        directoryUrl: `https://127.0.0.1:${port}/dir`,
        account: { keyPem: await generatePrivateKey('ec-p256') },
        transport,
        log: silentLogger,
        acme,
      });
      const started = Date.now();
      await expect(adapter.directoryInfo(ac.signal)).rejects.toMatchObject({ code: 'ABORTED' });
      expect(Date.now() - started).toBeLessThan(5_000);
      adapter.close();
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
