import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { systemClock } from '../../src/core/clock';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger';
import { loadConfig } from '../../src/config/load';
import type { AgentConfig } from '../../src/config/types';
import { AcmeService } from '../../src/acme/service';
import { Dns01Solver } from '../../src/dns/solver';
import { Daemon, type CycleRecord } from '../../src/daemon/daemon';
import { CertStore } from '../../src/store/cert-store';
import { StateStore } from '../../src/state/store';
import { freePort } from '../helpers/ports';
import { startTestbed, runCli, type Testbed } from '../helpers/testbed';

/**
 * `certpilot run` against real Pebble + BIND: short-lived certificates kept renewed over
 * several lifetimes, /metrics and /healthz, SIGHUP and SIGTERM on the real process, a
 * concurrent `renew` that never double-orders, and backoff that survives a restart.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
/** Pebble issues certificates living this long: renewal every ~5 s (half the lifetime). */
const LIFETIME_S = 10;
let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed({ certificateValidityPeriod: LIFETIME_S });
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

function daemonFor(configPath: string, log: MemoryLogger): Daemon {
  return new Daemon({
    loadConfig: () => loadConfig({ path: configPath }),
    log,
    clock: systemClock,
    openAcme: (c: AgentConfig) => AcmeService.open(c.acme, c.storage.stateDir, log),
    openSolver: (c: AgentConfig) => new Dns01Solver({ dns: c.dns, log }),
  });
}

async function cyclesUntil(d: Daemon, done: (c: CycleRecord) => boolean, max = 40): Promise<CycleRecord[]> {
  const seen: CycleRecord[] = [];
  for (let i = 0; i < max; i++) {
    const c = await d.nextCycle();
    seen.push(c);
    if (done(c)) return seen;
  }
  throw new Error(`condition not reached in ${max} cycles`);
}

test('keeps short-lived certificates renewed over several lifetimes; serves /metrics and /healthz', async () => {
  const port = await freePort();
  const stateDir = path.join(tb.dir, 'state-short');
  const config = await tb.writeConfig([{ name: 'short', domains: ['short.example.test'] }], {
    storage: { stateDir },
    daemon: { checkInterval: '10m', listen: `127.0.0.1:${port}` },
    // Ten-second certificates need more than 3 orders a week; the guard scales with lifetime.
  });
  const log = memoryLogger();
  const d = daemonFor(config, log);
  const store = new CertStore({ stateDir, archiveDepth: 5 });
  const serials = new Set<string>();
  await d.start();
  try {
    // Every cycle ends with a certificate in date: renewal always comes before expiry.
    const cycles = await cyclesUntil(d, (c) => {
      for (const o of c.report?.outcomes ?? []) {
        expect(o.status === 'renewed' || o.status === 'valid').toBe(true);
        expect(o.notAfter!.getTime()).toBeGreaterThan(c.finishedAt.getTime());
        if (o.serial) serials.add(o.serial);
      }
      return serials.size >= 4; // the first issuance and three renewals: over three lifetimes
    });
    expect(cycles.length).toBeGreaterThanOrEqual(4);
    // It slept between cycles until each certificate's renewal time: no busy loop.
    expect(cycles.length).toBeLessThan(4 * 6);
    const current = (await store.read('short'))!;
    expect(serials.has(current.info.serial)).toBe(true);

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const renewed = Number(
      /certpilot_renewals_total\{name="short",result="success"\} (\d+)/.exec(metrics)?.[1],
    );
    expect(renewed).toBe(serials.size);
    expect(metrics).toMatch(/certpilot_next_renewal_timestamp_seconds\{name="short"\} \d+/);
    expect(metrics).toMatch(/certpilot_last_success_timestamp_seconds\{name="short"\} \d+/);
    expect(metrics).toMatch(
      /certpilot_certificate_not_after_timestamp_seconds\{name="short",source="store",endpoint=""\} \d+/,
    );
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', failing: [] });
  } finally {
    await d.stop();
  }
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
}, 120_000);

test('a renew running next to the daemon never orders the same certificate twice', async () => {
  const stateDir = path.join(tb.dir, 'state-race');
  const config = await tb.writeConfig([{ name: 'race', domains: ['race.example.test'] }], {
    storage: { stateDir },
    daemon: { checkInterval: '10m', listen: '' },
  });
  const log = memoryLogger();
  const d = daemonFor(config, log);
  const first = d.nextCycle();
  await d.start();
  // Both start with the certificate missing; whoever takes the lock second sees it issued.
  const cli = await runCli(['renew', '--config', config, '--log-format', 'json']);
  await first;
  await d.stop();
  expect(cli.code).toBe(0);
  const cliOrders = cli.stderr.split('\n').filter((l) => l.includes('"message":"order created"')).length;
  const daemonOrders = log.records.filter((r) => r.message === 'order created').length;
  expect(cliOrders + daemonOrders).toBe(1);
}, 60_000);

test('backoff is persisted: after a failure, a restarted daemon does not ask the CA again at once', async () => {
  const stateDir = path.join(tb.dir, 'state-backoff');
  await tb.bind.freeze('example.test');
  try {
    const config = await tb.writeConfig([{ name: 'flaky', domains: ['flaky.example.test'] }], {
      storage: { stateDir },
      daemon: { checkInterval: '10m', listen: '' },
    });
    const log1 = memoryLogger();
    const d1 = daemonFor(config, log1);
    const c1 = d1.nextCycle();
    await d1.start();
    const r1 = await c1;
    await d1.stop();
    expect(r1.report?.outcomes[0]).toMatchObject({ status: 'failed' });
    const { state } = await new StateStore(stateDir).read('flaky');
    expect(state.failures.count).toBe(1);
    const retryAt = state.failures.nextRetryAt!.getTime();
    // First step of the backoff: about a minute (with jitter).
    expect(retryAt - r1.finishedAt.getTime()).toBeGreaterThan(50_000);
    expect(r1.nextAt.getTime()).toBe(retryAt);

    const log2 = memoryLogger();
    const d2 = daemonFor(config, log2);
    const c2 = d2.nextCycle();
    await d2.start();
    const r2 = await c2;
    await d2.stop();
    expect(r2.report?.outcomes[0]).toMatchObject({ status: 'waiting', decision: { reason: 'backoff' } });
    expect(log2.records.map((r) => r.message)).not.toContain('renewing');
    expect(r2.nextAt.getTime()).toBe(retryAt);
  } finally {
    await tb.bind.thaw('example.test');
  }
}, 60_000);

test('/healthz: 503 with the reasons while a renewal fails, 200 again once it recovers', async () => {
  const port = await freePort();
  const stateDir = path.join(tb.dir, 'state-health');
  const config = await tb.writeConfig([{ name: 'sick', domains: ['sick.example.test'] }], {
    storage: { stateDir },
    daemon: { checkInterval: '10m', listen: `127.0.0.1:${port}` },
  });
  const health = async (): Promise<{
    code: number;
    body: { status: string; reasons: string[]; failing: string[] };
  }> => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    return {
      code: res.status,
      body: (await res.json()) as { status: string; reasons: string[]; failing: string[] },
    };
  };
  const d = daemonFor(config, memoryLogger());
  await tb.bind.freeze('example.test');
  let thawed = false;
  try {
    const first = d.nextCycle();
    await d.start();
    expect((await first).report?.outcomes[0]).toMatchObject({ status: 'failed' });
    const failed = await health();
    expect(failed.code).toBe(503);
    expect(failed.body.status).toBe('failing');
    expect(failed.body.failing).toEqual(['sick']);
    expect(failed.body.reasons).toEqual([expect.stringMatching(/^sick: renewal failed: .*REFUSED/)]);

    // The next cycle holds the certificate back (backoff): still failing, and it says until when.
    const second = d.nextCycle();
    await d.reload();
    expect((await second).report?.outcomes[0]).toMatchObject({ status: 'waiting' });
    const waiting = await health();
    expect(waiting.code).toBe(503);
    expect(waiting.body.reasons).toEqual([
      expect.stringMatching(
        /^sick: renewal due but held back: .*held back until .* after 1 failed attempt\(s\)/,
      ),
    ]);

    // The operator fixes DNS and forces a renewal; the daemon's next cycle finds all well.
    await tb.bind.thaw('example.test');
    thawed = true;
    expect((await runCli(['renew', '--config', config, '--force'])).code).toBe(0);
    const third = d.nextCycle();
    await d.reload();
    expect((await third).report?.outcomes[0]).toMatchObject({ status: 'valid' });
    const healed = await health();
    expect(healed.code).toBe(200);
    expect(healed.body).toMatchObject({ status: 'ok', reasons: [], failing: [] });

    // Every metric the daemon serves is documented in README.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const names = [...metrics.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThanOrEqual(7);
    const readme = await readFile(path.join(__dirname, '../../README.md'), 'utf8');
    for (const n of names)
      expect(`${n}: ${new RegExp(`^\\| \`${n}\` +\\|`, 'm').test(readme)}`).toBe(`${n}: true`);
  } finally {
    await d.stop();
    if (!thawed) await tb.bind.thaw('example.test');
  }
}, 90_000);

test('/healthz: 503 "stale" when no cycle finished for three check intervals (a stuck loop)', async () => {
  const stateDir = path.join(tb.dir, 'state-stuck');
  const config = await tb.writeConfig([{ name: 'stuck', domains: ['stuck.example.test'] }], {
    storage: { stateDir },
    daemon: { checkInterval: '10m', listen: '' },
  });
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  const d = new Daemon({
    loadConfig: () => loadConfig({ path: config }),
    log: memoryLogger(),
    clock,
    openAcme: (c: AgentConfig) => AcmeService.open(c.acme, c.storage.stateDir, memoryLogger()),
    openSolver: (c: AgentConfig) => new Dns01Solver({ dns: c.dns, log: memoryLogger() }),
  });
  const first = d.nextCycle();
  await d.start();
  try {
    await first;
    expect(d.health()).toMatchObject({ ok: true, body: { status: 'ok' } });
    offsetMs = 30 * 60_000 - 1_000; // just under three 10-minute intervals since the last cycle
    expect(d.health().ok).toBe(true);
    offsetMs = 30 * 60_000 + 1_000;
    expect(d.health()).toMatchObject({
      ok: false,
      body: {
        status: 'stale',
        reasons: [expect.stringMatching(/^no check cycle finished since .*: the loop is stuck$/)],
      },
    });
  } finally {
    await d.stop();
  }
}, 60_000);

interface Proc {
  child: ChildProcess;
  lines: { message: string; [k: string]: unknown }[];
  /** The first line with this message at index `from` or later (already logged, or the next one). */
  waitFor(message: string, from?: number): Promise<{ message: string; [k: string]: unknown }>;
  exited: Promise<number | null>;
}

function startProcess(config: string): Proc {
  const child = spawn(process.execPath, [
    BIN,
    'run',
    '--config',
    config,
    '--log-format',
    'json',
    '--log-level',
    'debug',
  ]);
  const lines: Proc['lines'] = [];
  const waiters: { message: string; from: number; resolve: (l: Proc['lines'][number]) => void }[] = [];
  let buf = '';
  child.stderr!.on('data', (c: Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.startsWith('{')) continue;
      const rec = JSON.parse(line) as Proc['lines'][number];
      lines.push(rec);
      for (const w of [...waiters]) {
        if (w.message === rec.message && lines.length - 1 >= w.from) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(rec);
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor: (message, from = 0) => {
      const seen = lines.slice(from).find((l) => l.message === message);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ message, from, resolve }));
    },
  };
}

test('SIGHUP: an invalid config is refused and the old one kept; a valid one is taken; SIGTERM exits 0', async () => {
  const stateDir = path.join(tb.dir, 'state-hup');
  const configPath = path.join(tb.dir, 'hup.yaml');
  const one = await tb.writeConfig([{ name: 'hup1', domains: ['hup1.example.test'] }], {
    storage: { stateDir },
    daemon: { listen: '' },
  });
  await writeFile(configPath, await import('node:fs/promises').then((f) => f.readFile(one, 'utf8')));
  const p = startProcess(configPath);
  try {
    await p.waitFor('check cycle done');
    // Invalid: an unknown key. Logged, and the daemon keeps running with the old config.
    await writeFile(configPath, stringify({ nonsense: true }));
    p.child.kill('SIGHUP');
    const refused = await p.waitFor('configuration reload failed; keeping the running configuration');
    expect(String(refused.error)).toMatch(/nonsense: unknown key/);
    // Valid, with a second certificate: reloaded and issued.
    const two = await tb.writeConfig(
      [
        { name: 'hup1', domains: ['hup1.example.test'] },
        { name: 'hup2', domains: ['hup2.example.test'] },
      ],
      { storage: { stateDir }, daemon: { listen: '' } },
    );
    await writeFile(configPath, await import('node:fs/promises').then((f) => f.readFile(two, 'utf8')));
    p.child.kill('SIGHUP');
    await p.waitFor('configuration reloaded');
    // The reload starts a new cycle at once.
    await p.waitFor('check cycle done', p.lines.length);
    const store = new CertStore({ stateDir, archiveDepth: 5 });
    expect((await store.read('hup2'))?.info.names).toEqual(['hup2.example.test']);
  } finally {
    p.child.kill('SIGTERM');
  }
  expect(await p.exited).toBe(0);
}, 60_000);

test('SIGTERM in the middle of an order cancels it, removes its TXT values and exits 0', async () => {
  const stateDir = path.join(tb.dir, 'state-term');
  // Propagation is checked on a port where no nameserver answers, so the order stalls right
  // after its TXT value was written: exactly the moment to be stopped.
  const dead = await freePort();
  const config = await tb.writeConfig([{ name: 'term', domains: ['term.example.test'] }], {
    storage: { stateDir },
    daemon: { listen: '' },
  });
  const text = (await import('node:fs/promises').then((f) => f.readFile(config, 'utf8'))).replace(
    `nameserverPort: ${tb.bind.port}`,
    `nameserverPort: ${dead}`,
  );
  await writeFile(config, text);
  const p = startProcess(config);
  const written = await p.waitFor('challenge records written');
  expect(written.names).toEqual(['_acme-challenge.term.example.test']);
  expect(await tb.bind.queryTxt('_acme-challenge.term.example.test')).toHaveLength(1);
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
  expect(p.lines.map((l) => l.message)).toContain('challenge records removed');
  expect(await tb.bind.queryTxt('_acme-challenge.term.example.test')).toEqual([]);
}, 60_000);
