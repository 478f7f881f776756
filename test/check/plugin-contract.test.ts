import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseCliDuration } from '../../src/cli/check';
import { runCli } from '../helpers/testbed';
import { closedPort, serverTracker, startSilentServer } from '../helpers/tls-servers';
import { makePki, type Pki } from '../inspect/fixtures';
import { check, checkJson, endpointFor, workspace, type Workspace } from './helpers';

/**
 * `certpilot check` as a monitoring plugin: whatever keeps it from checking is UNKNOWN (3),
 * never 2 (which would page someone about a certificate); durations read the way plugins take
 * them; a glob over a certificate directory does not report the keys next to the certificates;
 * a finding's severity agrees with its row's status.
 */

const pki: Pki = makePki(new Date());
let ws: Workspace;
let okFile: string;
beforeAll(() => {
  ws = workspace(pki);
  okFile = ws.write('ok-fullchain.pem', pki.valid.certPem + pki.intermediate.certPem);
});
afterAll(() => ws.cleanup());

const servers = serverTracker();
afterEach(() => servers.closeAll());

describe('a command line check cannot use exits 3 (UNKNOWN), never 2', () => {
  test('an unknown flag: the status line names it, --json gets the JSON document', async () => {
    const config = ws.config({ watch: { files: [okFile] } });
    const text = await check(config, '--frobnicate');
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^CERTPILOT UNKNOWN - certpilot: Unknown option '--frobnicate'/);
    const json = await checkJson(config, '--frobnicate');
    expect(json.code).toBe(3);
    expect(json.report).toMatchObject({ status: 'unknown', exitCode: 3, results: [] });
    expect(json.report.error?.message).toContain("'--frobnicate'");
  });

  test('a bad global option value (--log-level) and a bad check option value', async () => {
    const config = ws.config({ watch: { files: [okFile] } });
    const r = await runCli(['check', '--config', config, '--log-level', 'loud']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CERTPILOT UNKNOWN - certpilot: --log-level must be one of/);
    expect((await check(config, '--handshake-timeout', '5 minutes')).code).toBe(3);
    expect((await check(config, '--connect-timeout', '0')).code).toBe(3);
    expect((await check(config, '--concurrency', 'many')).code).toBe(3);
    // The same mistakes on another command stay usage errors (2): only the plugin differs.
    expect((await runCli(['renew', '--config', config, '--frobnicate'])).code).toBe(2);
  });

  test('the same line without the mistake is OK (0): the 3 above came from the mistake', async () => {
    const config = ws.config({ watch: { files: [okFile] } });
    expect((await check(config, '--connect-timeout', '14d', '--handshake-timeout', '30s')).code).toBe(0);
  });
});

describe('durations on the command line', () => {
  test('units as plugins write them, and a bare number is seconds', () => {
    expect(parseCliDuration('30s')).toBe(30_000);
    expect(parseCliDuration('5m')).toBe(300_000);
    expect(parseCliDuration('14d')).toBe(14 * 86_400_000);
    expect(parseCliDuration('1h30m')).toBe(5_400_000);
    expect(parseCliDuration('500ms')).toBe(500);
    expect(parseCliDuration('10')).toBe(10_000);
    expect(parseCliDuration('2.5')).toBe(2_500);
    for (const bad of ['0', '0s', 'soon', '-5', '5 s', '', '25d'])
      expect(() => parseCliDuration(bad)).toThrow(/must be/);
  });

  test('--handshake-timeout 1 waits one second on a server that never answers (not 1 ms)', async () => {
    const silent = await startSilentServer();
    servers.keep(silent);
    const config = ws.config({ watch: { endpoints: [endpointFor(silent, ws)] } });
    const started = Date.now();
    const { code, report } = await checkJson(config, '--handshake-timeout', '1');
    const elapsed = Date.now() - started;
    expect(code).toBe(3);
    expect(report.results[0]?.findings[0]).toMatchObject({ code: 'handshake-timeout', severity: 'unknown' });
    expect(report.results[0]?.findings[0]?.message).toContain('within 1000 ms');
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
  });
});

describe('a glob that also matches private keys', () => {
  test('files holding only a key are skipped; a literal path to one is still reported', async () => {
    const dir = path.join(ws.dir, 'live-www');
    mkdirSync(dir);
    ws.write('live-www/fullchain.pem', pki.valid.certPem + pki.intermediate.certPem);
    const key = ws.write('live-www/privkey.pem', pki.valid.keyPem);
    ws.write('live-www/junk.pem', 'not a certificate\n');

    const globbed = await checkJson(ws.config({ watch: { files: [path.join(dir, '*.pem')] } }));
    // junk.pem holds neither a certificate nor a key: that is still a problem worth a row.
    expect(globbed.report.results.map((r) => [path.basename(r.target), r.status])).toEqual([
      ['fullchain.pem', 'ok'],
      ['junk.pem', 'unknown'],
    ]);

    const literal = await checkJson(ws.config({ watch: { files: [key] } }));
    expect(literal.code).toBe(3);
    expect(literal.report.results[0]?.findings[0]).toMatchObject({ code: 'unreadable', severity: 'unknown' });
    expect(literal.report.results[0]?.findings[0]?.message).toContain('only a private key');

    const onlyKeys = await checkJson(ws.config({ watch: { files: [path.join(dir, 'priv*.pem')] } }));
    expect(onlyKeys.code).toBe(3);
    expect(onlyKeys.report.results[0]?.findings[0]?.message).toMatch(
      /no certificate file matches .*priv\*\.pem \(1 file\(s\) hold only a private key\)/,
    );
  });
});

describe("a finding's severity agrees with its row's status", () => {
  test('unreachable, unreadable and missing rows are UNKNOWN with unknown findings; the table names them', async () => {
    const port = await closedPort();
    const config = ws.config({
      watch: {
        files: [path.join(ws.dir, 'absent.pem'), path.join(ws.dir, 'nothing-here-*.pem')],
        endpoints: [endpointFor({ port }, ws)],
      },
    });
    const { code, report } = await checkJson(config);
    expect(code).toBe(3);
    expect(report.results.map((r) => [r.status, r.findings.map((f) => `${f.code}/${f.severity}`)])).toEqual([
      ['unknown', ['unreadable/unknown']],
      ['unknown', ['missing/unknown']],
      ['unknown', ['unreachable/unknown']],
    ]);
    const text = await check(config);
    expect(text.stdout).toMatch(/UNKNOWN\s+unreachable: probe: cannot connect/);
  });
});
