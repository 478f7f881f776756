import path from 'node:path';
import { AcmeService } from '../../src/acme/service';
import { ariCertId, fetchRenewalInfo } from '../../src/acme/ari';
import { loadConfig } from '../../src/config/load';
import type { AgentConfig, CertificateSpec } from '../../src/config/types';
import { memoryLogger } from '../helpers/memory-logger';
import { Dns01Solver } from '../../src/dns/solver';
import { DEFAULT_SCHEDULE_POLICY, nextAction, withOrder, withRenewalInfo } from '../../src/plan/schedule';
import { emptyState } from '../../src/state/store';
import { generatePrivateKey, parseCertificate, type CertInfo } from '../../src/x509';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * ARI against a real CA: Pebble 2.4 (no ARI of its own) behind test/helpers/ari-proxy.ts,
 * which adds `renewalInfo` and `meta.profiles` and records every newOrder payload. BIND
 * answers Pebble's DNS-01 lookups, as in the renew integration test.
 */
let tb: Testbed;
let proxy: AriProxy;
let config: AgentConfig;
let spec: CertificateSpec;
const log = memoryLogger();
const services: AcmeService[] = [];

const HOUR = 3_600_000;

beforeAll(async () => {
  tb = await startTestbed();
  proxy = await startAriProxy(tb.pebble);
  const file = await tb.writeConfig(
    [{ name: 'ari', domains: ['ari.example.test', 'www.ari.example.test'], dns: { provider: 'bind' } }],
    {
      acme: {
        directory: proxy.directoryUrl,
        caBundle: tb.pebble.tlsCaPath,
        termsAgreed: true,
        requestTimeout: '10s',
      },
    },
  );
  config = await loadConfig({ path: file });
  spec = config.certificates[0]!;
}, 60_000);

afterAll(async () => {
  for (const s of services) s.close();
  await proxy?.stop();
  await tb?.stop();
});

/** A fresh service each time: acme-client caches the directory for a day. */
async function openService(): Promise<AcmeService> {
  const s = await AcmeService.open(config.acme, config.storage.stateDir, log);
  services.push(s);
  return s;
}

async function issue(
  service: AcmeService,
  extra: { replaces?: string; profile?: string } = {},
): Promise<CertInfo> {
  const result = await service.issue({
    name: spec.name,
    domains: spec.domains,
    keyPem: await generatePrivateKey('ec-p256'),
    providerFor: () => 'bind',
    solver: new Dns01Solver({ dns: config.dns, log }),
    signal: AbortSignal.timeout(60_000),
    ...extra,
  });
  return parseCertificate(result.cert);
}

describe('ARI through the proxy in front of Pebble', () => {
  let first: CertInfo;
  let firstId: string;

  test('the directory advertises renewalInfo; a first order carries no replaces', async () => {
    const service = await openService();
    const dir = await service.directoryInfo(AbortSignal.timeout(10_000));
    expect(dir).toEqual({ renewalInfo: proxy.renewalInfoUrl, profiles: {} });

    first = await issue(service);
    expect(first.names.sort()).toEqual([...spec.domains].sort());
    expect(proxy.orders).toHaveLength(1);
    expect(proxy.orders[0]!.status).toBe(201);
    expect(proxy.orders[0]!.payload).not.toHaveProperty('replaces');
    // Pebble's leaf certificates carry an AKI, so they have an ARI id.
    firstId = ariCertId(first);
    expect(firstId).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  test('a window in the future: no renewal, the renewal is scheduled inside the window, the next poll per Retry-After', async () => {
    const now = new Date();
    const window = { start: new Date(now.getTime() + 48 * HOUR), end: new Date(now.getTime() + 50 * HOUR) };
    proxy.setWindow(firstId, window, 3600, 'https://ca.example/normal');
    const before = proxy.renewalInfoRequests(firstId);

    const info = await fetchRenewalInfo(proxy.renewalInfoUrl, firstId, {
      ca: tb.pebble.tlsCaPem,
      timeoutMs: 10_000,
    });
    expect(proxy.renewalInfoRequests(firstId)).toBe(before + 1);
    expect(info).toEqual({
      window,
      explanationURL: 'https://ca.example/normal',
      retryAfterMs: HOUR,
      retryAfterFromServer: true,
    });

    const state = withRenewalInfo(emptyState(spec.name), firstId, info, now);
    const action = nextAction(spec, first, state, now, DEFAULT_SCHEDULE_POLICY, { supported: true });
    expect(action.renewNow).toBe(false);
    expect(action.at.getTime()).toBeGreaterThanOrEqual(window.start.getTime());
    expect(action.at.getTime()).toBeLessThan(window.end.getTime());
    expect(action.pollAriAt).toEqual(new Date(now.getTime() + HOUR));
    expect(action.wakeAt).toEqual(action.pollAriAt);
    expect(proxy.orders).toHaveLength(1);
  });

  test('a window in the past: renew now, and the order carries replaces = the certificate id', async () => {
    const now = new Date();
    proxy.setWindow(
      firstId,
      { start: new Date(now.getTime() - 2 * HOUR), end: new Date(now.getTime() - HOUR) },
      120,
    );
    const info = await fetchRenewalInfo(proxy.renewalInfoUrl, firstId, { ca: tb.pebble.tlsCaPem });
    expect(info.retryAfterMs).toBe(2 * 60_000);

    let state = withOrder(emptyState(spec.name), spec.domains, new Date(now.getTime() - 24 * HOUR));
    state = withRenewalInfo(state, firstId, info, now);
    const action = nextAction(spec, first, state, now, DEFAULT_SCHEDULE_POLICY, { supported: true });
    expect(action).toMatchObject({ renewNow: true, reason: 'ari', replaces: firstId });

    const second = await issue(await openService(), { replaces: action.replaces });
    const order = proxy.orders.at(-1)!;
    expect(order.payload.replaces).toBe(firstId);
    expect(order.status).toBe(201); // Pebble 2.4 accepts (and ignores) the field
    // ...and does not echo it: its order object has no `replaces`. Its URLs name the proxy.
    expect(order.response).not.toHaveProperty('replaces');
    expect(JSON.stringify(order.response)).toContain(proxy.origin);
    expect(JSON.stringify(order.response)).not.toContain(new URL(tb.pebble.directoryUrl).origin);
    expect(second.serial).not.toBe(first.serial);
    expect(log.records.some((r) => r.message === 'order created' && r.meta.replaces === firstId)).toBe(true);
  });

  test('alreadyReplaced: the order is placed again without replaces', async () => {
    proxy.setReplacesProblem({
      status: 409,
      type: 'urn:ietf:params:acme:error:alreadyReplaced',
      detail: 'certificate already replaced',
    });
    try {
      const n = proxy.orders.length;
      await issue(await openService(), { replaces: firstId });
      const [refused, placed] = proxy.orders.slice(n);
      expect(refused).toMatchObject({ status: 409, payload: { replaces: firstId } });
      expect(placed!.status).toBe(201);
      expect(placed!.payload).not.toHaveProperty('replaces');
    } finally {
      proxy.setReplacesProblem(null);
    }
  });

  test('profiles: an offered profile is sent in newOrder; one not offered fails before ordering', async () => {
    proxy.setProfiles({ classic: 'the default', shortlived: '160 hours' });
    try {
      const service = await openService();
      expect((await service.directoryInfo()).profiles).toEqual({
        classic: 'the default',
        shortlived: '160 hours',
      });
      await issue(service, { profile: 'shortlived' });
      expect(proxy.orders.at(-1)).toMatchObject({ status: 201, payload: { profile: 'shortlived' } });
      expect(proxy.orders.at(-1)!.response).not.toHaveProperty('profile'); // Pebble 2.4 ignores it

      const n = proxy.orders.length;
      await expect(issue(service, { profile: 'tlsserver' })).rejects.toMatchObject({
        code: 'ACME_PROBLEM',
        message: expect.stringContaining('profile "tlsserver" is not offered by the CA'),
      });
      expect(proxy.orders).toHaveLength(n);
    } finally {
      proxy.setProfiles(undefined);
    }
  });

  test('the proxy counted what went through it', () => {
    expect(proxy.counts['GET /renewal-info']).toBeGreaterThanOrEqual(2);
    expect(proxy.counts['GET /dir']).toBeGreaterThanOrEqual(1);
    expect(path.isAbsolute(config.storage.stateDir)).toBe(true);
  });
});
