import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeDeployState } from '../../src/state/deploy-state';
import { parseCertificate } from '../../src/x509';
import { makeCertificate, type KeyPairPem } from '../helpers/certs';
import { startSmtpServer } from '../helpers/smtp-server';
import {
  closedPort,
  startHttpServer,
  startSilentServer,
  startTlsServer,
  serverTracker,
  type RunningServer,
  type ServedIdentity,
} from '../helpers/tls-servers';
import { DAY_MS, NAMES, makePki, type Pki } from '../inspect/fixtures';
import {
  DNS_SECTION,
  check,
  checkJson,
  endpointFor,
  install,
  workspace,
  type JsonRow,
  type Workspace,
} from './helpers';

// `check` must work without an ACME account: loading the ACME client at all fails the test.
jest.mock('acme-client', () => {
  throw new Error('certpilot check must not load acme-client');
});
jest.mock('../../src/acme/service', () => {
  throw new Error('certpilot check must not load the ACME service');
});

// OpenSSL verifies validity against the real clock, so the certificates are dated from now.
const pki: Pki = makePki(new Date());
let ws: Workspace;
beforeAll(() => {
  ws = workspace(pki);
});
afterAll(() => ws.cleanup());

/** Servers are closed after every test, passed or failed, so no port or socket outlives it. */
const servers = serverTracker();
afterEach(() => servers.closeAll());
const serve = servers.serve;

const withChain = (leaf: KeyPairPem): ServedIdentity => ({ ...leaf, chainPems: [pki.intermediate.certPem] });
const codes = (row: JsonRow | undefined): string[] => (row?.findings ?? []).map((f) => f.code);

describe('watched endpoints served by Node TLS servers: one row, one exit code each', () => {
  const rows: {
    case: string;
    id: (p: Pki) => ServedIdentity;
    status: string;
    exit: number;
    has: string[];
  }[] = [
    { case: '60 days left', id: (p) => withChain(p.valid), status: 'ok', exit: 0, has: [] },
    {
      case: '15 days left',
      id: (p) => withChain(p.fifteenDays),
      status: 'warning',
      exit: 1,
      has: ['warning'],
    },
    { case: '2 days left', id: (p) => withChain(p.twoDays), status: 'critical', exit: 2, has: ['critical'] },
    {
      case: 'expired',
      id: (p) => withChain(p.expired),
      status: 'critical',
      exit: 2,
      has: ['expired', 'untrusted'],
    },
    {
      case: 'not yet valid',
      id: (p) => withChain(p.notYetValid),
      status: 'critical',
      exit: 2,
      has: ['not-yet-valid', 'untrusted'],
    },
    {
      case: 'wrong SAN',
      id: (p) => withChain(p.wrongSan),
      status: 'critical',
      exit: 2,
      has: ['names-differ', 'untrusted'],
    },
    {
      case: 'self-signed',
      id: (p) => p.selfSigned,
      status: 'critical',
      exit: 2,
      has: ['self-signed', 'untrusted'],
    },
    {
      case: 'incomplete chain (no intermediate)',
      id: (p) => p.valid,
      status: 'critical',
      exit: 2,
      has: ['chain-missing', 'untrusted'],
    },
  ];

  test.each(rows)('$case → $status, exit $exit', async (row) => {
    const server = await serve(startTlsServer(row.id(pki)));
    const config = ws.config({
      watch: { endpoints: [endpointFor(server, ws, { name: 'site', names: NAMES })] },
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(row.exit);
    expect(report.results).toHaveLength(1);
    const [only] = report.results;
    expect(only?.status).toBe(row.status);
    expect(only?.probe?.success).toBe(true);
    expect(codes(only)).toEqual(expect.arrayContaining(row.has));
    if (row.has.length === 0) expect(codes(only)).toEqual([]);
    // The plain output agrees: status line first, then the table.
    const text = await check(config);
    expect(text.code).toBe(row.exit);
    expect(text.stdout.split('\n')[0]).toMatch(
      new RegExp(`^CERTPILOT ${row.status.toUpperCase()} - 1 checked`),
    );
  });

  test('warning below the ratio threshold of the entry, not the global days', async () => {
    // 15 days left of 90: OK once the entry warns only below 10 days.
    const server = await serve(startTlsServer(withChain(pki.fifteenDays)));
    const config = ws.config({
      watch: { endpoints: [endpointFor(server, ws, { warningDays: 10, criticalDays: 5 })] },
    });
    expect((await check(config)).code).toBe(0);
  });
});

describe('endpoints that cannot be checked are UNKNOWN (exit 3)', () => {
  test('closed port', async () => {
    const port = await closedPort();
    const { code, report } = await checkJson(
      ws.config({ watch: { endpoints: [endpointFor({ port }, ws)] } }),
    );
    expect(code).toBe(3);
    expect(report.results[0]).toMatchObject({
      status: 'unknown',
      probe: { success: false },
      certificate: null,
    });
    expect(codes(report.results[0])).toEqual(['unreachable']);
  });

  test('a server that accepts TCP and never finishes the handshake: bounded by --handshake-timeout', async () => {
    const server = await serve(startSilentServer());
    const config = ws.config({ watch: { endpoints: [endpointFor(server, ws)] } });
    const { code, report } = await checkJson(config, '--handshake-timeout', '300ms');
    expect(code).toBe(3);
    expect(codes(report.results[0])).toEqual(['handshake-timeout']);
    expect(report.results[0]?.findings[0]?.message).toContain('300 ms');
  });

  test('the handshake timeout also comes from the config (check.handshakeTimeout)', async () => {
    const server = await serve(startSilentServer());
    const config = ws.config({
      check: { handshakeTimeout: '250ms' },
      watch: { endpoints: [endpointFor(server, ws)] },
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(3);
    expect(report.results[0]?.findings[0]?.message).toContain('250 ms');
  });

  test('a service that does not speak TLS', async () => {
    const server = await serve(startHttpServer());
    const { code, report } = await checkJson(ws.config({ watch: { endpoints: [endpointFor(server, ws)] } }));
    expect(code).toBe(3);
    expect(codes(report.results[0])).toEqual(['not-tls']);
  });
});

describe('SMTP with STARTTLS', () => {
  test('reads the certificate after STARTTLS', async () => {
    const server = await serve(startSmtpServer(withChain(pki.valid)));
    const config = ws.config({
      watch: { endpoints: [endpointFor(server, ws, { starttls: 'smtp', name: 'mx' })] },
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(0);
    expect(report.results[0]).toMatchObject({
      name: 'mx',
      status: 'ok',
      probe: { success: true, trusted: true },
    });
    expect(report.results[0]?.certificate?.names).toEqual(NAMES);
  });

  test('expiring certificate behind STARTTLS is CRITICAL', async () => {
    const server = await serve(startSmtpServer(withChain(pki.twoDays)));
    const config = ws.config({ watch: { endpoints: [endpointFor(server, ws, { starttls: 'smtp' })] } });
    expect((await check(config)).code).toBe(2);
  });

  test('a server that does not offer STARTTLS is UNKNOWN', async () => {
    const server = await serve(startSmtpServer({ ...withChain(pki.valid), withoutStarttls: true }));
    const config = ws.config({ watch: { endpoints: [endpointFor(server, ws, { starttls: 'smtp' })] } });
    const { code, report } = await checkJson(config);
    expect(code).toBe(3);
    expect(report.results[0]?.findings[0]?.message).toContain('does not offer STARTTLS');
  });
});

describe('watched files', () => {
  test('a glob over files of every kind; a pattern matching nothing is UNKNOWN', async () => {
    const dir = path.join(ws.dir, 'files');
    await fs.mkdir(dir, { recursive: true });
    const bundle = (leaf: KeyPairPem, chain = true): string =>
      leaf.certPem + (chain ? pki.intermediate.certPem : '');
    await fs.writeFile(path.join(dir, 'a-valid.pem'), bundle(pki.valid));
    await fs.writeFile(path.join(dir, 'b-fifteen.pem'), bundle(pki.fifteenDays));
    await fs.writeFile(path.join(dir, 'c-expired.pem'), bundle(pki.expired));
    await fs.writeFile(path.join(dir, 'd-nochain.pem'), bundle(pki.valid, false));
    const config = ws.config({
      watch: { files: [path.join(dir, '*.pem'), { path: path.join(dir, 'none-*.pem'), name: 'gone' }] },
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(2);
    expect(report.results.map((r) => [path.basename(r.target), r.status])).toEqual([
      ['a-valid.pem', 'ok'],
      ['b-fifteen.pem', 'warning'],
      ['c-expired.pem', 'critical'],
      ['d-nochain.pem', 'warning'],
      ['none-*.pem', 'unknown'],
    ]);
    expect(codes(report.results[3])).toEqual(['chain-missing']);
    expect(codes(report.results[4])).toEqual(['missing']);
    expect(report.summary).toEqual({ total: 5, ok: 1, warning: 2, critical: 1, unknown: 1 });
  });

  test('a key that does not match is CRITICAL', async () => {
    const cert = ws.write('pair.pem', pki.valid.certPem + pki.intermediate.certPem);
    const key = ws.write('other.key', pki.twoDays.keyPem);
    const { code, report } = await checkJson(ws.config({ watch: { files: [{ path: cert, key }] } }));
    expect(code).toBe(2);
    expect(codes(report.results[0])).toEqual(['key-mismatch']);
  });
});

describe('managed certificates: stored version, endpoints, served-stale', () => {
  const NAME = 'www';
  let stateDir: string;
  let current: KeyPairPem;

  beforeAll(async () => {
    stateDir = path.join(ws.dir, 'managed-state');
    // Version 1 (30 days old), then a renewal (version 2, a day old) that is now current.
    await install(stateDir, NAME, pki.valid, [pki.intermediate.certPem]);
    const t = Date.now();
    current = makeCertificate({
      names: NAMES,
      notBefore: new Date(t - DAY_MS),
      notAfter: new Date(t + 89 * DAY_MS),
      issuer: pki.intermediate,
    });
    await install(stateDir, NAME, current, [pki.intermediate.certPem]);
  });

  const managedConfig = (server: Pick<RunningServer, 'port'>, extra: Record<string, unknown> = {}): string =>
    ws.config({
      storage: { stateDir },
      dns: DNS_SECTION,
      certificates: [
        {
          name: NAME,
          domains: NAMES,
          dns: { provider: 'bind' },
          endpoints: [endpointFor(server, ws)],
          ...extra,
        },
      ],
    });

  test('an endpoint still serving the previous version is served-stale (WARNING, exit 1)', async () => {
    const server = await serve(startTlsServer(withChain(pki.valid)));
    const { code, report } = await checkJson(managedConfig(server));
    expect(code).toBe(1);
    const [stored, endpoint] = report.results;
    expect(stored).toMatchObject({ name: NAME, managed: true, source: 'file', status: 'ok', served: null });
    expect(stored?.target).toBe(path.join(stateDir, 'certs', NAME, 'fullchain.pem'));
    expect(stored?.certificate?.serial).toBe(parseCertificate(current.certPem).serial);
    expect(endpoint).toMatchObject({
      name: NAME,
      managed: true,
      source: 'endpoint',
      status: 'warning',
      served: 'served-stale',
    });
    expect(codes(endpoint)).toEqual(['served-stale']);
  });

  test('serving the current version is OK', async () => {
    const server = await serve(startTlsServer(withChain(current)));
    const { code, report } = await checkJson(managedConfig(server));
    expect(code).toBe(0);
    expect(report.results[1]?.served).toBe('current');
  });

  test('serving something else entirely is served-mismatch', async () => {
    const server = await serve(startTlsServer(withChain(pki.wrongSan)));
    const { code, report } = await checkJson(managedConfig(server));
    expect(code).toBe(2); // the served certificate is also not valid for the name
    expect(report.results[1]?.served).toBe('served-mismatch');
    expect(codes(report.results[1])).toEqual(expect.arrayContaining(['served-mismatch', 'untrusted']));
  });

  test('a deploy that was never verified is served-stale even before any endpoint is asked', async () => {
    const info = parseCertificate(current.certPem);
    await writeDeployState(stateDir, NAME, {
      serial: info.serial,
      fingerprint: info.fingerprint256,
      status: 'verify-failed',
      updatedAt: new Date().toISOString(),
      endpoints: {},
      attempts: 1,
    });
    try {
      const config = ws.config({
        storage: { stateDir },
        dns: DNS_SECTION,
        certificates: [{ name: NAME, domains: NAMES, dns: { provider: 'bind' } }],
      });
      const { code, report } = await checkJson(config);
      expect(code).toBe(1);
      expect(report.results).toHaveLength(1);
      expect(codes(report.results[0])).toEqual(['served-stale']);
      expect(report.results[0]?.findings[0]?.message).toContain('verify-failed');
    } finally {
      await fs.rm(path.join(stateDir, 'deploy'), { recursive: true, force: true });
    }
  });

  test('per-certificate thresholds (certificates[].check) apply to its rows', async () => {
    const server = await serve(startTlsServer(withChain(current)));
    // 89 days left: WARNING once the certificate asks for 100 days' notice.
    const config = managedConfig(server, { check: { warningDays: 100, warningRatio: 1 } });
    const { code, report } = await checkJson(config);
    expect(code).toBe(1);
    expect(report.results.map((r) => r.status)).toEqual(['warning', 'warning']);
  });

  test('a managed certificate never installed is CRITICAL (missing)', async () => {
    const config = ws.config({
      storage: { stateDir },
      dns: DNS_SECTION,
      certificates: [{ name: 'never', domains: ['never.example.test'], dns: { provider: 'bind' } }],
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(2);
    expect(codes(report.results[0])).toEqual(['missing']);
  });
});

describe('overall status, selection and errors', () => {
  test('precedence: CRITICAL > WARNING > UNKNOWN > OK', async () => {
    const port = await closedPort();
    const warn = await serve(startTlsServer(withChain(pki.fifteenDays)));
    const crit = await serve(startTlsServer(withChain(pki.expired)));
    const ok = await serve(startTlsServer(withChain(pki.valid)));
    const down = endpointFor({ port }, ws, { name: 'down' });
    const cfg = (...eps: Record<string, unknown>[]): string => ws.config({ watch: { endpoints: eps } });
    expect((await check(cfg(down, endpointFor(ok, ws)))).code).toBe(3);
    expect((await check(cfg(down, endpointFor(warn, ws)))).code).toBe(1);
    expect((await check(cfg(down, endpointFor(warn, ws), endpointFor(crit, ws)))).code).toBe(2);
    expect((await check(cfg(endpointFor(ok, ws)))).code).toBe(0);
  });

  test('NAME selects entries; --only-problems hides OK rows but not their effect on the exit code', async () => {
    const port = await closedPort();
    const ok = await serve(startTlsServer(withChain(pki.valid)));
    const config = ws.config({
      watch: {
        endpoints: [endpointFor(ok, ws, { name: 'good' }), endpointFor({ port }, ws, { name: 'down' })],
      },
    });
    expect((await check(config, 'good')).code).toBe(0);
    const all = await check(config, '--only-problems');
    expect(all.code).toBe(3);
    expect(all.stdout).toContain('down');
    expect(all.stdout).not.toMatch(/^good /m);
    const json = await checkJson(config, '--only-problems');
    expect(json.report.results.map((r) => r.name)).toEqual(['down']);
    expect(json.report.summary).toMatchObject({ total: 2, ok: 1, unknown: 1 });
  });

  test('an unknown NAME is UNKNOWN (3), not a usage error (2)', async () => {
    const r = await check(ws.config({ watch: { files: ['/nonexistent.pem'] } }), 'nope');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CERTPILOT UNKNOWN - check: unknown name "nope"/);
  });

  test('an invalid configuration is UNKNOWN (3), every problem listed', async () => {
    const config = ws.config({ watch: { files: ['relative.pem'], endpoints: [{ port: 1 }] } });
    const r = await check(config);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CERTPILOT UNKNOWN - config: .* is invalid\n/);
    expect(r.stdout).toContain('watch.files[0]: must be an absolute path');
    const { code, report } = await checkJson(config);
    expect(code).toBe(3);
    expect(report.status).toBe('unknown');
    expect(report.error?.issues.map((i) => i.path)).toEqual(['watch.files[0]', 'watch.endpoints[0].host']);
  });

  test('a missing configuration file and a bad option value are UNKNOWN too', async () => {
    expect((await check(path.join(ws.dir, 'absent.yaml'))).code).toBe(3);
    const config = ws.config({ watch: { files: ['/nonexistent.pem'] } });
    expect((await check(config, '--connect-timeout', 'soon')).code).toBe(3);
    expect((await check(config, '--concurrency', '0')).code).toBe(3);
  });

  test('nothing configured is UNKNOWN: a check that checks nothing must not look healthy', async () => {
    const r = await check(ws.config({}));
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CERTPILOT UNKNOWN - nothing to check/);
  });
});
