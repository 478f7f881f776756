import path from 'node:path';
import { ariCertId } from '../../src/acme/ari';
import { AcmeService } from '../../src/acme/service';
import { systemClock } from '../../src/core/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { loadConfig } from '../../src/config/load';
import type { AgentConfig } from '../../src/config/types';
import { Daemon, type CycleRecord } from '../../src/daemon/daemon';
import { Dns01Solver } from '../../src/dns/solver';
import { StateStore } from '../../src/state/store';
import { CertStore } from '../../src/store/cert-store';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * ARI end to end through the real CLI and the daemon: Pebble 2.4 + BIND, with
 * test/helpers/ari-proxy.ts as the configured `acme.directory` (it adds `renewalInfo`, serves
 * the windows set here and records every newOrder payload). test/ari/ari-pebble.test.ts covers
 * the same ground at the AcmeService level; this file proves the executor wires it together:
 * the poll, the persisted Retry-After, the chosen time, and `replaces` on the order.
 *
 * Every case has its own state directory (and so its own certificate, scheduling state and
 * 24 h directory cache), so no case sees another's persisted ARI state.
 */
let tb: Testbed;
let proxy: AriProxy;

const HOUR = 3_600_000;
const RENEWAL_INFO = 'GET /renewal-info';

beforeAll(async () => {
  tb = await startTestbed();
  proxy = await startAriProxy(tb.pebble);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await tb?.stop();
});

interface JsonReport {
  ok: boolean;
  certificates: {
    name: string;
    status: string;
    reason: string;
    serial: string | null;
    renewAt: string | null;
  }[];
}

interface Case {
  name: string;
  stateDir: string;
  configPath: string;
  /** ARI id of the certificate issued for the case. */
  certId: string;
  serial: string;
}

let n = 0;

/** A fresh state dir and config pointing at the proxy, and a first certificate issued by `renew`. */
async function issuedCase(extra: Record<string, unknown> = {}): Promise<Case> {
  const name = `ari${++n}`;
  const stateDir = path.join(tb.dir, `state-${name}`);
  const configPath = await tb.writeConfig([{ name, domains: [`${name}.example.test`] }], {
    acme: {
      directory: proxy.directoryUrl,
      caBundle: tb.pebble.tlsCaPath,
      termsAgreed: true,
      requestTimeout: '10s',
    },
    storage: { stateDir },
    ...extra,
  });
  const orders = proxy.orders.length;
  const first = await renew(configPath);
  expect(first.certificates[0]).toMatchObject({ name, status: 'renewed', reason: 'missing' });
  expect(proxy.orders.slice(orders).map((o) => o.payload.replaces)).toEqual([undefined]);
  const stored = (await new CertStore({ stateDir, archiveDepth: 5 }).read(name))!;
  return { name, stateDir, configPath, certId: ariCertId(stored.info), serial: stored.info.serial };
}

async function renew(configPath: string): Promise<JsonReport> {
  const res = await runCli(['renew', '--config', configPath, '--json', '--log-format', 'json']);
  expect(res.stderr).not.toMatch(/unexpected error/);
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as JsonReport;
}

function renewalInfoCount(): number {
  return proxy.counts[RENEWAL_INFO] ?? 0;
}

function totalRequests(): number {
  return Object.values(proxy.counts).reduce((a, b) => a + b, 0);
}

describe('certpilot renew with ARI', () => {
  test('a window in the future: no order, renewAt inside the window, Retry-After persisted and respected', async () => {
    const c = await issuedCase();
    // More than renew's 12 h lookahead ahead: genuinely in the future for a twice-daily timer.
    const now = Date.now();
    const window = { start: new Date(now + 48 * HOUR), end: new Date(now + 50 * HOUR) };
    proxy.setWindow(c.certId, window, 3600);
    const orders = proxy.orders.length;
    const polls = proxy.renewalInfoRequests(c.certId);

    const before = Date.now();
    const report = await renew(c.configPath);
    const after = Date.now();
    const out = report.certificates[0]!;
    expect(out).toMatchObject({ name: c.name, status: 'valid', reason: 'valid', serial: c.serial });
    expect(proxy.orders).toHaveLength(orders);
    expect(proxy.renewalInfoRequests(c.certId)).toBe(polls + 1);
    const renewAt = Date.parse(out.renewAt!);
    expect(renewAt).toBeGreaterThanOrEqual(window.start.getTime());
    expect(renewAt).toBeLessThan(window.end.getTime());

    const { state } = await new StateStore(c.stateDir).read(c.name);
    expect(state.ari).toMatchObject({ certId: c.certId, window, errorCount: 0 });
    expect(state.ari!.chosenAt!.getTime()).toBe(renewAt);
    const nextPoll = state.ari!.nextPollAt.getTime();
    expect(nextPoll).toBeGreaterThanOrEqual(before + HOUR);
    expect(nextPoll).toBeLessThanOrEqual(after + HOUR);

    // Right after: the poll is not due (Retry-After), the directory is cached: no request at all.
    const requests = totalRequests();
    const infos = renewalInfoCount();
    const again = await renew(c.configPath);
    expect(again.certificates[0]).toMatchObject({ status: 'valid', renewAt: out.renewAt });
    expect(renewalInfoCount()).toBe(infos);
    expect(totalRequests()).toBe(requests);
    expect(proxy.orders).toHaveLength(orders);
  }, 60_000);

  test('a window in the past: renewed, and the order carries replaces = the previous certificate id', async () => {
    const c = await issuedCase();
    const now = Date.now();
    proxy.setWindow(c.certId, { start: new Date(now - 2 * HOUR), end: new Date(now - HOUR) }, 3600);
    const orders = proxy.orders.length;

    const report = await renew(c.configPath);
    const out = report.certificates[0]!;
    expect(out).toMatchObject({ name: c.name, status: 'renewed', reason: 'ari' });
    expect(out.serial).not.toBe(c.serial);
    expect(proxy.renewalInfoRequests(c.certId)).toBe(1);
    const placed = proxy.orders.slice(orders);
    expect(placed).toHaveLength(1);
    expect(placed[0]).toMatchObject({ status: 201, payload: { replaces: c.certId } });

    // The new certificate is what is installed, and its ARI state starts afresh (polled next run).
    const stored = (await new CertStore({ stateDir: c.stateDir, archiveDepth: 5 }).read(c.name))!;
    expect(stored.info.serial).toBe(out.serial);
    const { state } = await new StateStore(c.stateDir).read(c.name);
    expect(state.ari).toBeUndefined();
    expect(state.lastSuccess?.serial).toBe(out.serial);
  }, 60_000);

  test('a window starting inside the 12 h lookahead: renew takes it now (the next timer run would be late)', async () => {
    const c = await issuedCase();
    const now = Date.now();
    proxy.setWindow(c.certId, { start: new Date(now + 6 * HOUR), end: new Date(now + 8 * HOUR) }, 3600);
    const orders = proxy.orders.length;

    const out = (await renew(c.configPath)).certificates[0]!;
    expect(out).toMatchObject({ name: c.name, status: 'renewed', reason: 'ari' });
    expect(proxy.orders.slice(orders)).toMatchObject([{ status: 201, payload: { replaces: c.certId } }]);
  }, 60_000);
});

describe('certpilot run (in-process daemon) with ARI', () => {
  test('past window: renewed with replaces on the first cycle; then a future window: no order, wakes for the chosen time', async () => {
    // A check interval longer than the window is away, so the next cycle time can only come
    // from the ARI schedule, not from the interval.
    const c = await issuedCase({ daemon: { checkInterval: '48h', listen: '' } });
    const now = Date.now();
    proxy.setWindow(c.certId, { start: new Date(now - 2 * HOUR), end: new Date(now - HOUR) }, 3600);
    // Whatever certificate replaces it gets a window two to three hours ahead, and a Retry-After
    // (a day) that puts the next poll after the window: the wake-up must be the chosen time.
    const future = { start: new Date(now + 2 * HOUR), end: new Date(now + 3 * HOUR) };
    proxy.setWindow('*', future, 86_400);
    const log = memoryLogger();
    const daemon = new Daemon({
      loadConfig: () => loadConfig({ path: c.configPath }),
      log,
      clock: systemClock,
      openAcme: (cfg: AgentConfig) => AcmeService.open(cfg.acme, cfg.storage.stateDir, log),
      openSolver: (cfg: AgentConfig) => new Dns01Solver({ dns: cfg.dns, log }),
    });
    const orders = proxy.orders.length;
    let first: CycleRecord;
    let second: CycleRecord;
    try {
      const firstCycle = daemon.nextCycle();
      await daemon.start();
      first = await firstCycle;
      // The new certificate has no ARI state yet: the daemon comes back at once to poll it.
      second = await daemon.nextCycle();
    } finally {
      await daemon.stop();
      proxy.setWindow('*', null);
    }

    const renewed = first.report!.outcomes[0]!;
    expect(renewed).toMatchObject({ name: c.name, status: 'renewed', decision: { reason: 'ari' } });
    expect(renewed.serial).not.toBe(c.serial);
    const placed = proxy.orders.slice(orders);
    expect(placed).toHaveLength(1);
    expect(placed[0]).toMatchObject({ status: 201, payload: { replaces: c.certId } });
    const newId = ariCertId(
      (await new CertStore({ stateDir: c.stateDir, archiveDepth: 5 }).read(c.name))!.info,
    );
    expect(newId).not.toBe(c.certId);
    expect(first.nextAt.getTime()).toBeLessThanOrEqual(first.finishedAt.getTime());

    const waiting = second.report!.outcomes[0]!;
    expect(waiting).toMatchObject({ name: c.name, status: 'valid', serial: renewed.serial });
    expect(proxy.renewalInfoRequests(newId)).toBe(1);
    const { state } = await new StateStore(c.stateDir).read(c.name);
    expect(state.ari).toMatchObject({ certId: newId, window: future });
    const chosen = state.ari!.chosenAt!.getTime();
    expect(chosen).toBeGreaterThanOrEqual(future.start.getTime());
    expect(chosen).toBeLessThan(future.end.getTime());
    expect(waiting.decision.renewAt?.getTime()).toBe(chosen);
    // It would wake for the chosen time (not the 48 h interval, not the poll a day later).
    expect(second.nextAt.getTime()).toBeLessThanOrEqual(chosen);
    expect(second.nextAt.getTime()).toBe(chosen);
    expect(proxy.orders).toHaveLength(orders + 1);
    expect(log.records.filter((r) => r.message === 'order created')).toHaveLength(1);
  }, 60_000);
});
