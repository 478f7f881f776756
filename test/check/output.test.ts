import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseCertificate } from '../../src/x509';
import { makeCertificate } from '../helpers/certs';
import { closedPort, startTlsServer, type RunningServer } from '../helpers/tls-servers';
import { DAY_MS, NAMES, makePki, type Pki } from '../inspect/fixtures';
import {
  DNS_SECTION,
  check,
  checkJson,
  endpointFor,
  install,
  workspace,
  type JsonReport,
  type Workspace,
} from './helpers';

/**
 * The machine-readable outputs of `certpilot check`: the `--json` document (schema version 1,
 * documented in README.md) and the node_exporter textfile written by `--prometheus FILE`.
 */

const pki: Pki = makePki(new Date());
let ws: Workspace;
const running: RunningServer[] = [];
let config: string;
let downPort: number;
let stalePort: number;

beforeAll(async () => {
  ws = workspace(pki);
  const chain = [pki.intermediate.certPem];
  await install(ws.stateDir, 'www', pki.valid, chain);
  const t = Date.now();
  const current = makeCertificate({
    names: NAMES,
    notBefore: new Date(t - DAY_MS),
    notAfter: new Date(t + 89 * DAY_MS),
    issuer: pki.intermediate,
  });
  await install(ws.stateDir, 'www', current, chain);
  const stale = await startTlsServer({ ...pki.valid, chainPems: chain });
  const warn = await startTlsServer({ ...pki.fifteenDays, chainPems: chain });
  running.push(stale, warn);
  stalePort = stale.port;
  downPort = await closedPort();
  const file = ws.write('expired.pem', pki.expired.certPem + pki.intermediate.certPem);
  config = ws.config({
    storage: { stateDir: ws.stateDir },
    dns: DNS_SECTION,
    certificates: [
      { name: 'www', domains: NAMES, dns: { provider: 'bind' }, endpoints: [endpointFor(stale, ws)] },
    ],
    watch: {
      files: [{ path: file, name: 'legacy' }],
      endpoints: [
        endpointFor(warn, ws, { name: 'shop' }),
        endpointFor({ port: downPort }, ws, { name: 'down' }),
      ],
    },
  });
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.close()));
  ws.cleanup();
});

// ---- JSON schema, version 1 ---------------------------------------------------------------

const STATUSES = ['ok', 'warning', 'critical', 'unknown'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const bool: Check = (v) => typeof v === 'boolean';
const nullable =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const oneOf =
  (...xs: unknown[]): Check =>
  (v) =>
    xs.includes(v);
const iso: Check = (v) => typeof v === 'string' && ISO.test(v);
const arrayOf =
  (c: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every(c);

/** Exactly these keys, each passing its check; returns the offending keys. */
function shapeErrors(value: unknown, shape: Record<string, Check>, at: string): string[] {
  if (typeof value !== 'object' || value === null) return [`${at}: not an object`];
  const o = value as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !(k in shape));
  const bad = Object.entries(shape)
    .filter(([k, c]) => !(k in o) || !c(o[k]))
    .map(([k]) => `${at}.${k}: ${JSON.stringify(o[k])}`);
  return [...extra.map((k) => `${at}.${k}: not in the schema`), ...bad];
}

const CERTIFICATE: Record<string, Check> = {
  subject: str,
  issuer: str,
  serial: (v) => typeof v === 'string' && /^[0-9A-F]+$/.test(v),
  names: arrayOf(str),
  keyType: str,
  notBefore: iso,
  notAfter: iso,
  fingerprint256: (v) => typeof v === 'string' && /^[0-9A-F]{64}$/.test(v),
  selfSigned: bool,
};
const PROBE: Record<string, Check> = {
  success: bool,
  trusted: nullable(bool),
  trustError: nullable(str),
  elapsedMs: nullable(num),
};
const FINDING: Record<string, Check> = {
  code: str,
  severity: oneOf('info', 'unknown', 'warning', 'critical'),
  message: str,
};

function rowErrors(row: unknown, i: number): string[] {
  const at = `results[${i}]`;
  const r = row as Record<string, unknown>;
  const errors = shapeErrors(
    row,
    {
      name: str,
      managed: bool,
      source: oneOf('file', 'endpoint'),
      target: str,
      status: oneOf(...STATUSES),
      certificate: (v) => v === null || shapeErrors(v, CERTIFICATE, '').length === 0,
      daysLeft: nullable(num),
      lifetimeLeftRatio: nullable((v) => num(v) && (v as number) >= 0 && (v as number) <= 1),
      probe: (v) => (r.source === 'endpoint' ? shapeErrors(v, PROBE, '').length === 0 : v === null),
      served: oneOf(null, 'current', 'served-stale', 'served-mismatch'),
      findings: (v) => Array.isArray(v) && v.every((f) => shapeErrors(f, FINDING, '').length === 0),
    },
    at,
  );
  return errors;
}

function reportErrors(doc: unknown): string[] {
  const d = doc as JsonReport;
  return [
    ...shapeErrors(
      doc,
      {
        schemaVersion: oneOf(1),
        status: oneOf(...STATUSES),
        exitCode: oneOf(0, 1, 2, 3),
        checkedAt: iso,
        summary: (v) =>
          shapeErrors(v, { total: num, ok: num, warning: num, critical: num, unknown: num }, '').length === 0,
        results: Array.isArray,
        error: (v) =>
          v === null ||
          shapeErrors(
            v,
            {
              message: str,
              issues: arrayOf((i) => shapeErrors(i, { path: str, message: str }, '').length === 0),
            },
            '',
          ).length === 0,
      },
      '',
    ),
    ...(Array.isArray(d.results) ? d.results.flatMap(rowErrors) : []),
  ];
}

describe('--json', () => {
  test('every document follows schema version 1', async () => {
    const { code, report } = await checkJson(config);
    expect(reportErrors(report)).toEqual([]);
    expect(code).toBe(2);
    expect(report).toMatchObject({ status: 'critical', exitCode: 2, error: null });
    expect(report.summary).toEqual({ total: 5, ok: 1, warning: 2, critical: 1, unknown: 1 });
    expect(report.results.map((r) => [r.name, r.source, r.managed, r.status, r.served])).toEqual([
      ['www', 'file', true, 'ok', null],
      ['www', 'endpoint', true, 'warning', 'served-stale'],
      ['legacy', 'file', false, 'critical', null],
      ['shop', 'endpoint', false, 'warning', null],
      ['down', 'endpoint', false, 'unknown', null],
    ]);
    // Dates are the certificate's own, to the second.
    const legacy = report.results[2];
    expect(legacy?.certificate?.notAfter).toBe(parseCertificate(pki.expired.certPem).notAfter.toISOString());
    expect(legacy?.daysLeft).toBeLessThan(0);
  });

  test('the error document of an invalid configuration follows the same schema', async () => {
    const { code, report } = await checkJson(ws.config({ watch: { endpoints: ['bad host!'] } }));
    expect(code).toBe(3);
    expect(reportErrors(report)).toEqual([]);
    expect(report.error?.issues[0]?.path).toBe('watch.endpoints[0]');
  });
});

// ---- Prometheus textfile ----------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

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

const value = (all: Sample[], name: string, labels: Record<string, string>): number[] =>
  all
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => s.value);

describe('--prometheus FILE', () => {
  test('writes the textfile atomically, readable by node_exporter, with every row', async () => {
    const dir = path.join(ws.dir, 'textfile');
    await fs.mkdir(dir);
    const file = path.join(dir, 'certpilot.prom');
    const before = Date.now();
    // --only-problems trims the printed table, never the metrics.
    const r = await check(config, '--prometheus', file, '--only-problems');
    expect(r.code).toBe(2);
    expect(await fs.readdir(dir)).toEqual(['certpilot.prom']); // no temp file left behind
    expect((await fs.stat(file)).mode & 0o777).toBe(0o644);
    const text = await fs.readFile(file, 'utf8');
    const all = samples(text);

    const storeFile = path.join(ws.stateDir, 'certs', 'www', 'fullchain.pem');
    const staleEndpoint = `example.test:${stalePort}@127.0.0.1`;
    const downEndpoint = `example.test:${downPort}@127.0.0.1`;
    expect(
      value(all, 'certpilot_check_status', { name: 'www', source: 'file', endpoint: storeFile }),
    ).toEqual([0]);
    expect(
      value(all, 'certpilot_check_status', { name: 'www', source: 'endpoint', endpoint: staleEndpoint }),
    ).toEqual([1]);
    expect(value(all, 'certpilot_check_status', { name: 'legacy', source: 'file' })).toEqual([2]);
    expect(value(all, 'certpilot_check_status', { name: 'down', source: 'endpoint' })).toEqual([3]);

    const notAfter = Math.floor(parseCertificate(pki.valid.certPem).notAfter.getTime() / 1000);
    expect(
      value(all, 'certpilot_certificate_not_after_timestamp_seconds', {
        name: 'www',
        endpoint: staleEndpoint,
      }),
    ).toEqual([notAfter]);
    // Nothing was read from the closed port: no expiry series rather than a zero.
    expect(value(all, 'certpilot_certificate_not_after_timestamp_seconds', { name: 'down' })).toEqual([]);
    expect(value(all, 'certpilot_endpoint_probe_success', { name: 'down', endpoint: downEndpoint })).toEqual([
      0,
    ]);
    expect(value(all, 'certpilot_endpoint_probe_success', { name: 'shop' })).toEqual([1]);
    expect(value(all, 'certpilot_endpoint_serves_current', { name: 'www', endpoint: staleEndpoint })).toEqual(
      [0],
    );
    // Unmanaged endpoints have no "current" to compare with.
    expect(value(all, 'certpilot_endpoint_serves_current', { name: 'shop' })).toEqual([]);
    const [ts] = value(all, 'certpilot_check_timestamp_seconds', {});
    expect(ts).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(text).toContain('# TYPE certpilot_certificate_not_after_timestamp_seconds gauge');
  });

  test('a metrics file that cannot be written makes the result UNKNOWN (3), as README says, even with a CRITICAL row', async () => {
    const unwritable = path.join(ws.dir, 'no-such-dir', 'certpilot.prom');
    expect((await check(config)).code).toBe(2);
    const worse = await check(config, '--prometheus', unwritable);
    expect(worse.code).toBe(3);
    // The rows' own state is still on the status line.
    expect(worse.stdout.split('\n')[0]).toMatch(/^CERTPILOT UNKNOWN - .*1 critical.*cannot write metrics/);
    const json = await checkJson(config, '--prometheus', unwritable);
    expect([json.code, json.report.status, json.report.exitCode]).toEqual([3, 'unknown', 3]);
    expect(json.report.summary).toMatchObject({ critical: 1 });
    expect(json.report.error?.message).toContain('cannot write metrics');
    const okOnly = ws.config({
      watch: { files: [ws.write('ok.pem', pki.valid.certPem + pki.intermediate.certPem)] },
    });
    expect((await check(okOnly)).code).toBe(0);
    expect((await check(okOnly, '--prometheus', unwritable)).code).toBe(3);
  });
});
