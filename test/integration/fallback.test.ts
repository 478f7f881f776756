import { randomBytes, X509Certificate } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ariCertId } from '../../src/acme/ari';
import { StateStore } from '../../src/state/store';
import { CertStore } from '../../src/store/cert-store';
import { splitPemChain } from '../../src/x509';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { faults, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { httpsGet, startPebble, type Pebble } from '../helpers/pebble';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * acme.fallback end to end: two real Pebbles (each makes its own roots at start), BIND with
 * CAA records, the primary made to fail through test/helpers/fault-proxy.ts, alerts to a
 * webhook receiver, and the real CLI.
 *
 *   primary  = fault proxy -> Pebble A        (CAA identity "ca-a.test")
 *   fallback = ARI proxy   -> Pebble B (EAB)  (CAA identity "ca-b.test"; the proxy records
 *                                              every newOrder payload B receives)
 *
 * Pebble 2.4 publishes no `caaIdentities` in its directory meta (asserted below), so both CAs
 * get theirs from the configuration (`acme.caaIdentities`, `acme.fallback[0].caaIdentities`).
 * Pebble does not check CAA itself: what CAA allows here is certpilot's own decision.
 */

let tb: Testbed;
let pebbleB: Pebble;
let primary: FaultProxy;
let fallback: AriProxy;
let hooks: WebhookReceiver;
let eabFile: string;

const KID = 'kid-b';
const HMAC = randomBytes(32).toString('base64url');

const CAA_ZONE = [
  'only-a IN CAA 0 issue "ca-a.test"',
  'only-b IN CAA 0 issue "ca-b.test"',
  'nobody IN CAA 0 issue "ca-c.test"',
];

beforeAll(async () => {
  tb = await startTestbed({ zones: [{ name: 'example.test', records: CAA_ZONE }] });
  pebbleB = await startPebble({ dnsServer: `127.0.0.1:${tb.bind.port}`, eabKeys: { [KID]: HMAC } });
  primary = await startFaultProxy(tb.pebble);
  fallback = await startAriProxy(pebbleB);
  hooks = await startWebhookReceiver();
  eabFile = path.join(tb.dir, 'b.hmac');
  await writeFile(eabFile, HMAC + '\n', { mode: 0o600 });
}, 90_000);

afterAll(async () => {
  await hooks?.close();
  await fallback?.stop();
  await primary?.stop();
  await pebbleB?.stop();
  await tb?.stop();
});

afterEach(() => primary.clearFaults());

interface JsonCert {
  name: string;
  status: string;
  serial: string | null;
  error: string | null;
  errorCode: string | null;
  ca: string | null;
}

interface Case {
  name: string;
  stateDir: string;
  configPath: string;
}

let n = 0;

/** A certificate of its own (own state directory, so no backoff or account is shared). */
async function newCase(
  label: string,
  primaryDirectory = primary.directoryUrl,
  requestTimeout = '10s',
): Promise<Case> {
  const name = `${label}${++n}`;
  const stateDir = path.join(tb.dir, `state-${name}`);
  const domain = ['only-a', 'only-b', 'nobody'].includes(label)
    ? `${label}.example.test`
    : `${name}.example.test`;
  const configPath = await tb.writeConfig([{ name, domains: [domain] }], {
    acme: {
      directory: primaryDirectory,
      caBundle: tb.pebble.tlsCaPath,
      termsAgreed: true,
      email: 'ops@example.test',
      requestTimeout,
      caaIdentities: ['ca-a.test'],
      fallback: [
        {
          directory: fallback.directoryUrl,
          caBundle: pebbleB.tlsCaPath,
          termsAgreed: true,
          caaIdentities: ['ca-b.test'],
          requestTimeout: '10s',
          eab: { keyId: KID, hmacKey_file: eabFile },
        },
      ],
    },
    storage: { stateDir },
    notify: { webhooks: [{ url: hooks.url, retries: 0 }] },
  });
  return { name, stateDir, configPath };
}

async function renew(c: Case, ...extra: string[]): Promise<{ code: number; cert: JsonCert; text: string }> {
  const r = await runCli(['renew', '--config', c.configPath, '--json', '--log-format', 'json', ...extra]);
  expect(r.stderr).not.toMatch(/unexpected error/);
  const report = JSON.parse(r.stdout) as { certificates: JsonCert[] };
  return { code: r.code, cert: report.certificates[0]!, text: r.stderr };
}

function alerts(kind: string, cert: string): Record<string, unknown>[] {
  return hooks.requests
    .map((r) => r.json as Record<string, unknown>)
    .filter((j) => j?.kind === kind && j?.certificate === cert);
}

/** newOrder requests Pebble B received (the ARI proxy in front of it records each). */
function ordersAtB(): number {
  return fallback.orders.length;
}

function totalAtB(): number {
  return Object.values(fallback.counts).reduce((a, b) => a + b, 0);
}

/** True when the issued chain leads to `pebble`'s root (each Pebble makes its own). */
async function chainsTo(stateDir: string, name: string, pebble: Pebble): Promise<boolean> {
  const stored = (await new CertStore({ stateDir, archiveDepth: 5 }).read(name))!;
  const blocks = splitPemChain(stored.fullchain);
  const top = new X509Certificate(blocks[blocks.length - 1]!);
  const root = new X509Certificate(await pebble.issuingRoot());
  return top.checkIssued(root) && top.verify(root.publicKey);
}

async function registeredAccounts(stateDir: string): Promise<number> {
  const root = path.join(stateDir, 'accounts');
  let count = 0;
  for (const d of await readdir(root).catch(() => [] as string[]))
    if ((await readdir(path.join(root, d))).includes('account.json')) count++;
  return count;
}

test('Pebble 2.4 publishes no caaIdentities: the tests configure them', async () => {
  const dir = JSON.parse(await httpsGet(tb.pebble.directoryUrl, tb.pebble.tlsCaPem)) as {
    meta?: Record<string, unknown>;
  };
  expect(dir.meta).toBeDefined();
  expect(dir.meta!.caaIdentities).toBeUndefined();
});

test('the primary answers newOrder with 500: issued by the fallback CA, one ca-failover alert', async () => {
  const c = await newCase('fail');
  primary.inject({ method: 'POST', path: primary.paths.newOrder, action: faults.serverError() });
  const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
  const atB = ordersAtB();

  const r = await renew(c);
  expect(r.cert).toMatchObject({ status: 'renewed', ca: fallback.directoryUrl });
  expect(r.code).toBe(0);
  // The primary was tried with the normal retries (4 attempts), none reached Pebble A.
  expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(4);
  expect(ordersAtB() - atB).toBe(1);
  expect(await chainsTo(c.stateDir, c.name, pebbleB)).toBe(true);
  expect(await chainsTo(c.stateDir, c.name, tb.pebble)).toBe(false);

  const failovers = alerts('ca-failover', c.name);
  expect(failovers).toHaveLength(1);
  expect(failovers[0]!.message).toContain(`from ${primary.directoryUrl} to ${fallback.directoryUrl}`);
  expect(failovers[0]!.message).toMatch(/server error/);
  expect(alerts('renewal-failed', c.name)).toHaveLength(0);
  // One account per CA, the fallback's registered on first use with its EAB.
  expect(await registeredAccounts(c.stateDir)).toBe(2);

  const { state } = await new StateStore(c.stateDir).read(c.name);
  expect(state.lastSuccess).toMatchObject({ serial: r.cert.serial, ca: fallback.directoryUrl });
  expect(state.orders.map((o) => o.ca)).toEqual([fallback.directoryUrl]);
  const listed = await runCli(['certificates', '--config', c.configPath, '--json']);
  const rows = (JSON.parse(listed.stdout) as { certificates: { ca: string }[] }).certificates;
  expect(rows[0]!.ca).toBe(fallback.directoryUrl);

  // Nothing due: the next run sends nothing to either CA.
  const seen = [primary.count(), totalAtB()];
  expect((await renew(c)).cert).toMatchObject({ status: 'valid' });
  expect([primary.count(), totalAtB()]).toEqual(seen);
}, 90_000);

test('a rateLimited primary (Retry-After beyond the inline cap) fails over at once', async () => {
  const c = await newCase('limited');
  primary.inject({ method: 'POST', path: primary.paths.newOrder, action: faults.rateLimited(7200) });
  const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
  const r = await renew(c);
  expect(r.cert).toMatchObject({ status: 'renewed', ca: fallback.directoryUrl });
  expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(1);
  expect(alerts('ca-failover', c.name)).toHaveLength(1);
  expect(alerts('ca-failover', c.name)[0]!.message).toMatch(/rate limited/);
}, 90_000);

test.each([
  ['never answers (request timeouts)', faults.hang(), /connection failed or timed out/],
  ['resets the connection', faults.reset(), /connection failed or timed out: .*ECONNRESET/],
])(
  'a primary that %s fails over after the normal retries',
  async (_what, action, reason) => {
    // The smallest request timeout certpilot accepts: the primary's four attempts take seconds.
    const c = await newCase('net', primary.directoryUrl, '1s');
    primary.inject({ method: 'POST', path: primary.paths.newOrder, action });
    const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
    const r = await renew(c);
    expect(r.cert).toMatchObject({ status: 'renewed', ca: fallback.directoryUrl });
    expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(4);
    const failovers = alerts('ca-failover', c.name);
    expect(failovers).toHaveLength(1);
    expect(failovers[0]!.message).toMatch(reason);
  },
  90_000,
);

test('CAA allows only the primary: no failover, and the error quotes the record', async () => {
  const c = await newCase('only-a');
  primary.inject({ method: 'POST', path: primary.paths.newOrder, action: faults.serverError() });
  const atB = ordersAtB();
  const r = await renew(c);
  expect(r.code).toBe(1);
  expect(r.cert.status).toBe('failed');
  expect(r.cert.errorCode).toBe('ACME_PROBLEM');
  expect(r.cert.error).toContain('no fallback CA may take the order');
  expect(r.cert.error).toContain('only-a.example.test. CAA 0 issue "ca-a.test"');
  expect(r.cert.error).toContain('not this CA (ca-b.test)');
  expect(ordersAtB() - atB).toBe(0);
  expect(alerts('ca-failover', c.name)).toHaveLength(0);
  expect(alerts('renewal-failed', c.name)).toHaveLength(1);
}, 90_000);

test('CAA forbids every configured CA: fails before any order, quoting the record', async () => {
  const c = await newCase('nobody');
  const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
  const atB = ordersAtB();
  const r = await renew(c);
  expect(r.code).toBe(1);
  expect(r.cert.errorCode).toBe('CAA_FORBIDDEN');
  expect(r.cert.error).toContain('CAA forbids every configured CA for nobody.example.test');
  expect(r.cert.error).toContain('nobody.example.test. CAA 0 issue "ca-c.test"');
  expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(0);
  expect(ordersAtB() - atB).toBe(0);
  expect(alerts('ca-failover', c.name)).toHaveLength(0);
}, 90_000);

test('CAA forbids the primary only: ordered at the fallback at once, with an alert', async () => {
  const c = await newCase('only-b');
  const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
  const r = await renew(c);
  expect(r.cert).toMatchObject({ status: 'renewed', ca: fallback.directoryUrl });
  expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(0);
  const failovers = alerts('ca-failover', c.name);
  expect(failovers).toHaveLength(1);
  expect(failovers[0]!.message).toContain('only-b.example.test. CAA 0 issue "ca-b.test"');
}, 90_000);

test('a non-retryable failure (rejectedIdentifier) does not fail over', async () => {
  const c = await newCase('rejected');
  primary.inject({
    method: 'POST',
    path: primary.paths.newOrder,
    action: {
      kind: 'status',
      status: 400,
      body: {
        type: 'urn:ietf:params:acme:error:rejectedIdentifier',
        detail: 'injected: policy forbids this name',
        status: 400,
      },
    },
  });
  const atA = primary.count({ method: 'POST', path: primary.paths.newOrder });
  const atB = ordersAtB();
  const r = await renew(c);
  expect(r.code).toBe(1);
  expect(r.cert.error).toContain('rejectedIdentifier');
  expect(primary.count({ method: 'POST', path: primary.paths.newOrder }) - atA).toBe(1);
  expect(ordersAtB() - atB).toBe(0);
  expect(alerts('ca-failover', c.name)).toHaveLength(0);
}, 90_000);

describe('ARI and replaces stay with the issuing CA', () => {
  let ariA: AriProxy;
  beforeAll(async () => {
    ariA = await startAriProxy(tb.pebble);
  });
  afterAll(async () => {
    await ariA?.stop();
  });

  test('replaces goes to the CA that issued, never to the fallback; the next renewal starts at the primary', async () => {
    const c = await newCase('ari', ariA.directoryUrl);
    const first = await renew(c);
    expect(first.cert).toMatchObject({ status: 'renewed', ca: null });
    const stored = (await new CertStore({ stateDir: c.stateDir, archiveDepth: 5 }).read(c.name))!;
    const certId = ariCertId(stored.info);

    // The primary says "renew now", then refuses the order that replaces its certificate.
    const past = Date.now() - 3_600_000;
    ariA.setWindow(certId, { start: new Date(past - 3_600_000), end: new Date(past) });
    ariA.setReplacesProblem({
      status: 500,
      type: 'urn:ietf:params:acme:error:serverInternal',
      detail: 'injected: internal server error',
    });
    const ordersA = ariA.orders.length;
    const ordersB = fallback.orders.length;
    const second = await renew(c);
    expect(second.cert).toMatchObject({ status: 'renewed', ca: fallback.directoryUrl });
    expect(ariA.orders.slice(ordersA).map((o) => o.payload.replaces)).toEqual([
      certId,
      certId,
      certId,
      certId,
    ]);
    const atB = fallback.orders.slice(ordersB);
    expect(atB).toHaveLength(1);
    expect(atB[0]!.payload.replaces).toBeUndefined();
    expect(alerts('ca-failover', c.name)).toHaveLength(1);

    // B's certificate: ARI is asked of nobody (the primary does not know it, B is not asked),
    // and a forced renewal goes to the primary first, without replaces.
    const fromB = (await new CertStore({ stateDir: c.stateDir, archiveDepth: 5 }).read(c.name))!;
    const idB = ariCertId(fromB.info);
    const third = await renew(c, '--force');
    expect(third.cert).toMatchObject({ status: 'renewed', ca: null });
    expect(ariA.renewalInfoRequests(idB)).toBe(0);
    expect(fallback.renewalInfoRequests(idB)).toBe(0);
    const last = ariA.orders[ariA.orders.length - 1]!;
    expect(last.payload.replaces).toBeUndefined();
    expect(fallback.orders.length).toBe(ordersB + 1);
    expect(await chainsTo(c.stateDir, c.name, tb.pebble)).toBe(true);
    ariA.setReplacesProblem(null);
  }, 120_000);
});
