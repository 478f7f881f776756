import { startNginx, type Nginx } from '../helpers/nginx';
import { NAMES, makePki, type Pki } from '../inspect/fixtures';
import { DNS_SECTION, check, checkJson, endpointFor, install, workspace, type Workspace } from './helpers';

/**
 * The same checks against a real nginx (Debian's package, high loopback ports, started and
 * stopped by this file): what nginx sends is what clients see, including a chain it was
 * given without its intermediate and a managed certificate it was never reloaded for.
 */

const pki: Pki = makePki(new Date());
let ws: Workspace;
let nginx: Nginx;
const SITES = ['valid', 'two-days', 'expired', 'no-chain', 'stale'] as const;
const port = (site: (typeof SITES)[number]): { port: number } => ({
  port: nginx.ports[SITES.indexOf(site)] as number,
});

beforeAll(async () => {
  ws = workspace(pki);
  const chain = pki.intermediate.certPem;
  // The managed certificate: version 1 is what nginx was started with, version 2 was installed
  // afterwards and nginx never reloaded (the "renewed but still serving the old one" complaint).
  const stateDir = ws.stateDir;
  await install(stateDir, 'www', pki.valid, [chain]);
  const files = {
    valid: [pki.valid.certPem + chain, pki.valid.keyPem],
    'two-days': [pki.twoDays.certPem + chain, pki.twoDays.keyPem],
    expired: [pki.expired.certPem + chain, pki.expired.keyPem],
    'no-chain': [pki.valid.certPem, pki.valid.keyPem],
    stale: [pki.valid.certPem + chain, pki.valid.keyPem],
  } as const;
  const sites = SITES.map((site) => ({
    serverName: 'example.test',
    certPath: ws.write(`${site}.crt`, files[site][0]),
    keyPath: ws.write(`${site}.key`, files[site][1]),
  }));
  nginx = await startNginx({ sites });
  await install(stateDir, 'www', pki.fifteenDays, [chain]);
});

afterAll(async () => {
  await nginx?.stop();
  ws?.cleanup();
});

test.each([
  ['valid', 'ok', 0, []],
  ['two-days', 'critical', 2, ['critical']],
  ['expired', 'critical', 2, ['expired', 'untrusted']],
  ['no-chain', 'critical', 2, ['chain-missing', 'untrusted']],
] as const)('nginx serving %s → %s, exit %d', async (site, status, exit, findings) => {
  const config = ws.config({ watch: { endpoints: [endpointFor(port(site), ws, { names: NAMES })] } });
  const { code, report } = await checkJson(config);
  expect(code).toBe(exit);
  expect(report.results[0]?.status).toBe(status);
  expect(report.results[0]?.findings.map((f) => f.code)).toEqual(expect.arrayContaining([...findings]));
});

test('nginx not reloaded after a renewal: served-stale', async () => {
  const config = ws.config({
    storage: { stateDir: ws.stateDir },
    dns: DNS_SECTION,
    certificates: [
      { name: 'www', domains: NAMES, dns: { provider: 'bind' }, endpoints: [endpointFor(port('stale'), ws)] },
    ],
  });
  const { code, report } = await checkJson(config);
  // The stored version has 15 days left (WARNING) and the endpoint serves the older one.
  expect(code).toBe(1);
  expect(report.results.map((r) => [r.source, r.status, r.served])).toEqual([
    ['file', 'warning', null],
    ['endpoint', 'warning', 'served-stale'],
  ]);
  expect(report.results[1]?.findings.map((f) => f.code)).toEqual(['served-stale']);
});

test('all sites at once: the table lists each, the worst decides', async () => {
  const config = ws.config({
    watch: { endpoints: SITES.slice(0, 4).map((s) => endpointFor(port(s), ws, { name: s })) },
  });
  const r = await check(config);
  expect(r.code).toBe(2);
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^CERTPILOT CRITICAL - 4 checked: 3 critical, 0 warning, 0 unknown, 1 ok; /);
  expect(lines[1]).toMatch(/^NAME\s+SOURCE\s+EXPIRES\s+LEFT\s+STATUS\s+FINDING$/);
  expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(['valid', 'two-days', 'expired', 'no-chain']);
  expect(lines[2]).toContain(`endpoint example.test:${port('valid').port}@127.0.0.1`);
});
