import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, type DaemonOptions } from '../../src/daemon/daemon';
import type { FileInspection } from '../../src/inspect/local';
import type { EndpointAssessment, ProbeResult } from '../../src/inspect/remote';
import {
  buildMetricsRegistry,
  endpointMetrics,
  fileMetrics,
  writeTextfile,
  type CertificateMetrics,
} from '../../src/metrics/registry';
import { CERTIFICATE_NOT_AFTER, METRIC_DEFINITIONS } from '../../src/metrics/definitions';
import { parseCertificate } from '../../src/x509';
import { makePki } from './fixtures';

const NOW = new Date('2026-11-15T12:00:00Z');
const pki = makePki(NOW);
const leaf = parseCertificate(pki.valid.certPem);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format's sample lines (labels without escaped quotes suffice here). */
function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k as string] = v as string;
      return { name: m[1] as string, labels, value: Number(m[3]) };
    });
}

const find = (all: Sample[], name: string, labels: Record<string, string>): Sample[] =>
  all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

const file: FileInspection = {
  path: '/etc/ssl/example/fullchain.pem',
  status: 'warning',
  certificate: leaf,
  chain: [],
  findings: [{ code: 'warning', severity: 'warning', message: '' }],
};
const probe: ProbeResult = { ok: true, chain: [leaf], trusted: true, elapsedMs: 3 };
const served: EndpointAssessment = { status: 'ok', served: 'current', findings: [] };
const failedProbe: ProbeResult = {
  ok: false,
  chain: [],
  trusted: false,
  error: { code: 'unreachable', message: 'refused' },
  elapsedMs: 1,
};

const results: CertificateMetrics[] = [
  fileMetrics('example', file),
  endpointMetrics('example', 'example.test:443', probe, served),
  endpointMetrics('example', 'down.example.test:443', failedProbe, { status: 'unknown', findings: [] }),
  endpointMetrics('unmanaged', 'other.test:8443', probe, {
    status: 'critical',
    served: 'served-stale',
    findings: [],
  }),
];

describe('buildMetricsRegistry', () => {
  let all: Sample[];
  let text: string;
  beforeAll(async () => {
    text = await (await buildMetricsRegistry(results)).metrics();
    all = samples(text);
  });

  it('exports expiry and start of validity as Unix seconds per certificate source', () => {
    const expect1 = (name: string, labels: Record<string, string>, value: number): void =>
      expect(find(all, name, labels).map((s) => s.value)).toEqual([value]);
    const notAfter = leaf.notAfter.getTime() / 1000;
    const notBefore = leaf.notBefore.getTime() / 1000;
    const fileLabels = { name: 'example', source: 'file', endpoint: file.path };
    const epLabels = { name: 'example', source: 'endpoint', endpoint: 'example.test:443' };
    expect1('certpilot_certificate_not_after_timestamp_seconds', fileLabels, notAfter);
    expect1('certpilot_certificate_not_before_timestamp_seconds', fileLabels, notBefore);
    expect1('certpilot_certificate_not_after_timestamp_seconds', epLabels, notAfter);
  });

  it('omits expiry series for what could not be read, rather than exporting 0', () => {
    expect(
      find(all, 'certpilot_certificate_not_after_timestamp_seconds', { endpoint: 'down.example.test:443' }),
    ).toEqual([]);
  });

  it('exports check status as 0 ok, 1 warning, 2 critical, 3 unknown', () => {
    const status = (endpoint: string): number[] =>
      find(all, 'certpilot_check_status', { endpoint }).map((s) => s.value);
    expect(status(file.path)).toEqual([1]);
    expect(status('example.test:443')).toEqual([0]);
    expect(status('other.test:8443')).toEqual([2]);
    expect(status('down.example.test:443')).toEqual([3]);
  });

  it('exports probe success and serves-current for endpoints only', () => {
    expect(
      find(all, 'certpilot_endpoint_probe_success', {}).map((s) => [s.labels.endpoint, s.value]),
    ).toEqual(
      expect.arrayContaining([
        ['example.test:443', 1],
        ['down.example.test:443', 0],
        ['other.test:8443', 1],
      ]),
    );
    expect(find(all, 'certpilot_endpoint_probe_success', {})).toHaveLength(3);
    expect(
      find(all, 'certpilot_endpoint_serves_current', {}).map((s) => [s.labels.endpoint, s.value]),
    ).toEqual(
      expect.arrayContaining([
        ['example.test:443', 1],
        ['other.test:8443', 0],
      ]),
    );
    // Unknown for an endpoint that was not reached: no series rather than a misleading 0.
    expect(find(all, 'certpilot_endpoint_serves_current', { endpoint: 'down.example.test:443' })).toEqual([]);
    expect(
      find(all, 'certpilot_endpoint_probe_success', {}).every((s) => s.labels.source === undefined),
    ).toBe(true);
  });

  it('documents each metric with HELP and TYPE gauge', () => {
    for (const name of [
      'certpilot_certificate_not_after_timestamp_seconds',
      'certpilot_certificate_not_before_timestamp_seconds',
      'certpilot_endpoint_probe_success',
      'certpilot_endpoint_serves_current',
      'certpilot_check_status',
    ]) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} gauge`);
    }
  });

  it('builds independent registries (no global state between runs)', async () => {
    const again = samples(await (await buildMetricsRegistry(results.slice(0, 1))).metrics());
    expect(find(again, 'certpilot_check_status', {})).toHaveLength(1);
  });
});

describe('writeTextfile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'certpilot-metrics-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('replaces the file atomically, readable by node_exporter, leaving no temp files', async () => {
    const target = path.join(dir, 'certpilot.prom');
    await fs.writeFile(target, 'old content\n');
    const registry = await buildMetricsRegistry(results);
    await writeTextfile(registry, target);
    expect(await fs.readFile(target, 'utf8')).toBe(await registry.metrics());
    expect((await fs.stat(target)).mode & 0o777).toBe(0o644);
    expect(await fs.readdir(dir)).toEqual(['certpilot.prom']);
  });

  it('fails without touching anything when the directory is missing', async () => {
    const registry = await buildMetricsRegistry(results);
    await expect(writeTextfile(registry, path.join(dir, 'missing', 'certpilot.prom'))).rejects.toMatchObject({
      code: 'STORE_IO',
    });
  });
});

describe('one definition per metric', () => {
  /** name -> "help|type" from the HELP and TYPE lines of an exposition. */
  function declared(text: string): Map<string, string> {
    const help = new Map<string, string>();
    const type = new Map<string, string>();
    for (const m of text.matchAll(/^# (HELP|TYPE) (\S+) (.*)$/gm))
      (m[1] === 'HELP' ? help : type).set(m[2]!, m[3]!);
    return new Map([...help].map(([name, h]) => [name, `${h}|${type.get(name) ?? '?'}`]));
  }
  const defined = new Map(METRIC_DEFINITIONS.map((d) => [d.name, `${d.help}|${d.type}`]));

  it('the check textfile and the daemon declare every metric exactly as defined', async () => {
    const textfile = declared(await (await buildMetricsRegistry(results, { checkedAt: NOW })).metrics());
    // metrics() reads only the daemon's counters, none of its collaborators.
    const daemon = declared(await new Daemon({} as DaemonOptions).metrics());
    expect(textfile.size).toBeGreaterThan(4);
    expect(daemon.size).toBeGreaterThan(4);
    for (const [name, decl] of [...textfile, ...daemon])
      expect({ name, decl }).toEqual({ name, decl: defined.get(name) });
    // The expiry series is exported by both, from one definition.
    expect(textfile.get(CERTIFICATE_NOT_AFTER.name)).toBe(daemon.get(CERTIFICATE_NOT_AFTER.name));
  });

  it('no counter-style name on a gauge (promtool rejects *_total gauges)', () => {
    const wrong = METRIC_DEFINITIONS.filter((d) => d.name.endsWith('_total') !== (d.type === 'counter'));
    expect(wrong.map((d) => d.name)).toEqual([]);
  });
});
