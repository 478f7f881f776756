import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { BIN, get, runProgram, startDaemon } from '../helpers/daemon-child';
import { freePort } from '../helpers/ports';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Issue #13 item 1 (renewal state on /metrics) against real processes: Pebble behind the ARI
 * proxy, BIND and `certpilot run` as a child process. One certificate has an ARI window from
 * the CA, one fails its order (a zone nobody serves) and backs off. /metrics carries backoff,
 * guard, ARI window and next renewal after the first cycle, and the same values at the first
 * cycle after a restart (read from the persisted state); `check --prometheus` exports none of
 * them; promtool accepts both.
 */
const HOUR = 3_600_000;
const RENEWAL_STATE =
  /^certpilot_(certificate_(backoff_until_seconds|guarded|ari_window_(start|end)_seconds)|next_renewal_timestamp_seconds)\{/;

let tb: Testbed;
let ari: AriProxy;
let stateDir: string;
const window = { start: new Date(Date.now() + 48 * HOUR), end: new Date(Date.now() + 50 * HOUR) };

function writeConfig(file: string, certificates: unknown[], daemon: Record<string, unknown> = {}): string {
  const config = {
    acme: {
      directory: ari.directoryUrl,
      caBundle: tb.pebble.tlsCaPath,
      termsAgreed: true,
      email: 'ops@example.test',
      requestTimeout: '10s',
    },
    storage: { stateDir },
    dns: {
      resolvers: [`127.0.0.1:${tb.bind.port}`],
      nameserverPort: tb.bind.port,
      providers: { bind: tb.bindProvider({ propagationTimeout: '2s' }) },
    },
    daemon: { listen: '', checkInterval: '10m', ...daemon },
    certificates,
  };
  const target = path.join(tb.dir, file);
  fs.writeFileSync(target, stringify(config));
  return target;
}

const good = { name: 'windowed', domains: ['windowed.example.test'], dns: { provider: 'bind' } };
// No zone serves nowhere.test: the order fails and the certificate backs off.
const bad = { name: 'failing', domains: ['failing.nowhere.test'], dns: { provider: 'bind' } };

/** The renewal-state series of an exposition, sorted, values included. */
function renewalState(exposition: string): string[] {
  return exposition
    .split('\n')
    .filter((l) => RENEWAL_STATE.test(l))
    .sort();
}

async function expectPromtoolAccepts(what: string, exposition: string): Promise<void> {
  const r = await runProgram('promtool', ['check', 'metrics'], exposition);
  expect({ what, code: r.code, problems: (r.stdout + r.stderr).trim() }).toEqual({
    what,
    code: 0,
    problems: '',
  });
}

beforeAll(async () => {
  tb = await startTestbed();
  ari = await startAriProxy(tb.pebble);
  ari.setWindow('*', window);
  stateDir = path.join(tb.dir, 'state');
  // Issued, then a second run polls renewalInfo and persists the window.
  const setup = writeConfig('setup.yaml', [good]);
  for (let i = 0; i < 2; i++) {
    const r = await runProgram(process.execPath, [BIN, 'renew', '--config', setup]);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  }
}, 120_000);

afterAll(async () => {
  await ari?.stop();
  await tb?.stop();
});

test('run exports backoff, guard, ARI window and next renewal from persisted state, again at the first cycle after a restart', async () => {
  const port = await freePort();
  const config = writeConfig('run.yaml', [good, bad], { listen: `127.0.0.1:${port}` });
  const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);
  const rounds: string[][] = [];
  for (const round of ['first start', 'restart']) {
    const d = startDaemon(config);
    try {
      await d.cycles(1);
      const body = (await get(`http://127.0.0.1:${port}/metrics`)).body;
      await expectPromtoolAccepts(round, body);
      rounds.push(renewalState(body));
    } finally {
      d.child.kill('SIGTERM');
    }
    expect(await d.exited).toBe(0);
  }
  const [first, restart] = rounds as [string[], string[]];
  const value = (lines: string[], metric: string, name: string): number | undefined => {
    const line = lines.find((l) => l.startsWith(`${metric}{name="${name}"}`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  const now = seconds(new Date());
  expect({
    windowStart: value(first, 'certpilot_certificate_ari_window_start_seconds', 'windowed'),
    windowEnd: value(first, 'certpilot_certificate_ari_window_end_seconds', 'windowed'),
    windowedBackoff: value(first, 'certpilot_certificate_backoff_until_seconds', 'windowed'),
    windowedGuarded: value(first, 'certpilot_certificate_guarded', 'windowed'),
    failingGuarded: value(first, 'certpilot_certificate_guarded', 'failing'),
    failingWindow: value(first, 'certpilot_certificate_ari_window_start_seconds', 'failing'),
  }).toEqual({
    windowStart: seconds(window.start),
    windowEnd: seconds(window.end),
    windowedBackoff: 0,
    windowedGuarded: 0,
    failingGuarded: 0,
    failingWindow: undefined,
  });
  const backoff = value(first, 'certpilot_certificate_backoff_until_seconds', 'failing')!;
  expect(backoff).toBeGreaterThan(now);
  // Its next renewal is the end of that backoff, not the plan the failed order was made under.
  expect(value(first, 'certpilot_next_renewal_timestamp_seconds', 'failing')).toBe(backoff);
  // The next renewal of the windowed certificate lies inside the CA's window.
  const next = value(first, 'certpilot_next_renewal_timestamp_seconds', 'windowed')!;
  expect(next).toBeGreaterThanOrEqual(seconds(window.start));
  expect(next).toBeLessThanOrEqual(seconds(window.end));
  // After the restart, at its first cycle: the same series with the same values (the failing
  // certificate is still backing off, so it was not ordered again).
  expect(restart).toEqual(first);

  // check --prometheus does not plan renewals: none of these series.
  const textfile = path.join(tb.dir, 'check.prom');
  await runProgram(process.execPath, [BIN, 'check', '--config', config, '--prometheus', textfile]);
  const text = fs.readFileSync(textfile, 'utf8');
  expect(renewalState(text)).toEqual([]);
  expect(text).not.toMatch(/certpilot_(certificate_redeploy_failures|redeploys_total)/);
  await expectPromtoolAccepts('check --prometheus', text);
}, 120_000);
