import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { ConfigError } from '../../src/core/errors';
import { freePort } from '../helpers/ports';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';
import { BIN, get, runProgram, startDaemon, type Run } from '../helpers/daemon-child';

/**
 * Issue #13 items 4 and 7 against real processes: `certpilot run` as a child process with a
 * heartbeat URL on a local receiver, its /metrics and `certpilot check --prometheus` checked by
 * `promtool check metrics`, the last successful run recorded by the daemon and by `certpilot
 * renew`, and `certpilot check` reporting renewer-silent once that record is too old.
 */
const ROOT = path.join(__dirname, '..', '..');
const DASHBOARD = path.join(ROOT, 'config', 'grafana', 'certpilot-dashboard.json');
const RULES = path.join(ROOT, 'config', 'prometheus', 'certpilot.rules.yml');
/** The heartbeat URL carries its token in the path, like healthchecks.io's ping URLs. */
const PING_TOKEN = 'f3b0c2d1-heartbeat-token-9a7e-do-not-print';

let tb: Testbed;
let receiver: WebhookReceiver;

beforeAll(async () => {
  tb = await startTestbed();
  receiver = await startWebhookReceiver();
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await tb?.stop();
});

const cli = (args: string[]): Promise<Run> => runProgram(process.execPath, [BIN, ...args]);

/** `promtool check metrics` reads the exposition on stdin; it exits non-zero on any problem. */
async function expectPromtoolAccepts(what: string, exposition: string): Promise<void> {
  const r = await runProgram('promtool', ['check', 'metrics'], exposition);
  expect({ what, code: r.code, problems: (r.stdout + r.stderr).trim() }).toEqual({
    what,
    code: 0,
    problems: '',
  });
}

/** Metric names an exposition declares (`# TYPE name kind`). */
function declaredNames(exposition: string): Set<string> {
  return new Set([...exposition.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}

/** Every certpilot metric name a dashboard query or an alert rule uses. */
function usedNames(text: string): Set<string> {
  return new Set([...text.matchAll(/\bcertpilot_[a-z0-9_]+/g)].map((m) => m[0]));
}

/** The dashboard's queries, from its JSON (not a text search: the queries are what Grafana runs). */
function dashboardQueries(): string[] {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  return d.panels.flatMap((p) => p.targets.map((t) => t.expr));
}

test('promtool accepts the exposition of the daemon (a child process) and of check --prometheus', async () => {
  // promtool must accept a broken exposition at least once, or this test proves nothing.
  const broken = await runProgram(
    'promtool',
    ['check', 'metrics'],
    '# HELP certpilot_daemon_cycles_total Check cycles.\n# TYPE certpilot_daemon_cycles_total gauge\ncertpilot_daemon_cycles_total 3\n',
  );
  expect(broken.code).not.toBe(0);
  expect(broken.stdout + broken.stderr).toMatch(/non-counter metrics should not have "_total" suffix/);

  const port = await freePort();
  const stateDir = path.join(tb.dir, 'state-monitoring');
  const config = await tb.writeConfig([{ name: 'mon', domains: ['mon.example.test'] }], {
    storage: { stateDir },
    daemon: {
      listen: `127.0.0.1:${port}`,
      checkInterval: '10m',
      heartbeat: `${receiver.url}/ping/${PING_TOKEN}`,
      heartbeatTimeout: '5s',
    },
  });
  const d = startDaemon(config);
  let daemonExposition: string;
  try {
    // The heartbeat arrives after the first cycle succeeded (the certificate was issued).
    const ping = await receiver.waitFor((r) => r.path === `/hook/ping/${PING_TOKEN}`, 60_000);
    expect(ping.method).toBe('GET');
    const lastRun = JSON.parse(fs.readFileSync(path.join(stateDir, 'last-run.json'), 'utf8')) as {
      lastSuccessAt: string;
      by: string;
    };
    expect(lastRun.by).toBe('run');

    const metrics = await get(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^# TYPE certpilot_daemon_cycles_total counter$/m);
    expect(metrics.body).toMatch(/^certpilot_daemon_cycles_total [1-9]/m);
    expect(metrics.body).toMatch(/^certpilot_daemon_healthy 1$/m);
    expect(metrics.body).toContain(
      `certpilot_last_successful_run_timestamp_seconds ${Math.floor(Date.parse(lastRun.lastSuccessAt) / 1000)}`,
    );
    expect(metrics.body).toMatch(/^certpilot_renewals_total\{name="mon",result="success"\} 1$/m);
    await expectPromtoolAccepts('daemon /metrics', metrics.body);
    daemonExposition = metrics.body;
  } finally {
    d.child.kill('SIGTERM');
  }
  expect(await d.exited).toBe(0);
  // The URL's token never reaches the log; the heartbeat itself is logged (masked).
  expect(d.log()).toContain('"message":"heartbeat sent"');
  expect(d.log()).not.toContain(PING_TOKEN);

  const textfile = path.join(tb.dir, 'certpilot.prom');
  const check = await cli(['check', '--config', config, '--prometheus', textfile]);
  expect(check.code).toBe(0);
  const text = fs.readFileSync(textfile, 'utf8');
  expect(text).toMatch(/^certpilot_last_successful_run_timestamp_seconds \d+$/m);
  await expectPromtoolAccepts('check --prometheus', text);

  // The Grafana dashboard and the alert rules use only metrics that the two expositions declare.
  const exposed = new Set([...declaredNames(daemonExposition), ...declaredNames(text)]);
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThanOrEqual(9);
  const unknown = (used: Set<string>): string[] => [...used].filter((n) => !exposed.has(n));
  expect({ dashboard: unknown(usedNames(queries.join('\n'))) }).toEqual({ dashboard: [] });
  expect({ rules: unknown(usedNames(fs.readFileSync(RULES, 'utf8'))) }).toEqual({ rules: [] });
  // And between them they show every metric certpilot exports.
  const shown = new Set([...usedNames(queries.join('\n')), ...usedNames(fs.readFileSync(RULES, 'utf8'))]);
  expect([...exposed].filter((n) => !shown.has(n)).sort()).toEqual([
    'certpilot_certificate_not_before_timestamp_seconds',
  ]);
}, 120_000);

test('renew records its successful run; check reports renewer-silent once the record is older than daemon.silentAfter', async () => {
  const stateDir = path.join(tb.dir, 'state-silent');
  const config = await tb.writeConfig([{ name: 'quiet', domains: ['quiet.example.test'] }], {
    storage: { stateDir },
    daemon: { listen: '', silentAfter: '2h' },
  });
  const record = path.join(stateDir, 'last-run.json');
  const before = Date.now();
  const renew = await cli(['renew', '--config', config]);
  expect(renew.code).toBe(0);
  const recorded = JSON.parse(fs.readFileSync(record, 'utf8')) as { lastSuccessAt: string; by: string };
  expect(recorded.by).toBe('renew');
  expect(Date.parse(recorded.lastSuccessAt)).toBeGreaterThanOrEqual(before - 1_000);

  // Fresh: the renewer row is OK and the check passes.
  const fresh = await cli(['check', '--config', config, '--json']);
  expect(fresh.code).toBe(0);
  const freshRow = (JSON.parse(fresh.stdout) as { results: { name: string; status: string }[] }).results.find(
    (r) => r.name === 'renewer',
  );
  expect(freshRow).toMatchObject({ status: 'ok' });

  // The timer stopped firing three hours ago: the record ages, as it would on a dead host.
  const threeHoursAgo = new Date(Date.now() - 3 * 3_600_000).toISOString();
  fs.writeFileSync(record, JSON.stringify({ lastSuccessAt: threeHoursAgo, by: 'renew' }));
  const silent = await cli(['check', '--config', config]);
  expect(silent.code).toBe(2); // Nagios CRITICAL
  expect(silent.stdout).toMatch(/^CERTPILOT CRITICAL/);
  expect(silent.stdout).toMatch(/renewer.*no successful renewal run for 3 h .*limit 2 h/);
  const json = await cli(['check', '--config', config, '--json']);
  const row = (
    JSON.parse(json.stdout) as { results: { name: string; findings: { code: string; severity: string }[] }[] }
  ).results.find((r) => r.name === 'renewer');
  expect(row?.findings).toEqual([expect.objectContaining({ code: 'renewer-silent', severity: 'critical' })]);

  // A dry run or a run limited to some certificates is not a full run: the record stays.
  expect((await cli(['renew', '--dry-run', '--config', config])).code).toBe(0);
  expect((await cli(['renew', 'quiet', '--config', config])).code).toBe(0);
  expect(JSON.parse(fs.readFileSync(record, 'utf8'))).toEqual({ lastSuccessAt: threeHoursAgo, by: 'renew' });
}, 120_000);

test('daemon.heartbeat: a URL like any credential URL (http:// only to this host), masked in config check', async () => {
  const config = await tb.writeConfig([], {
    daemon: { listen: '', heartbeat: `http://hc.example.test/ping/${PING_TOKEN}` },
  });
  await expect(loadConfig({ path: config })).rejects.toThrow(ConfigError);
  await expect(loadConfig({ path: config })).rejects.toThrow(
    /daemon\.heartbeat: http:\/\/ to hc\.example\.test would send credentials in the clear/,
  );
  const ok = await tb.writeConfig([], {
    daemon: { listen: '', heartbeat: `https://hc.example.test/ping/${PING_TOKEN}` },
  });
  const shown = await cli(['config', 'check', '--config', ok]);
  expect(shown.code).toBe(0);
  expect(shown.stdout + shown.stderr).not.toContain(PING_TOKEN);
});
