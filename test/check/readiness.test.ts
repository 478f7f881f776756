import { cp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * `certpilot check --readiness` against a real BIND and Pebble (behind the ARI proxy): each
 * readiness check is broken for real (a CAA record naming another CA, a CNAME pointing into a
 * zone no provider may write, a wrong TSIG secret, a deactivated account, an ARI window that
 * has started) and must come back as its own finding, while the certificate where nothing is
 * broken stays OK and its canary TXT value is written, served and removed.
 */

interface JsonRow {
  name: string;
  source: string;
  status: string;
  findings: { code: string; severity: string; message: string }[];
}

let tb: Testbed;
let proxy: AriProxy;
let config: string;
let ACME: Record<string, unknown>;
let PROVIDERS: Record<string, unknown>;
/** An ARI window weeks ahead: nothing to replace yet. */
const FUTURE = { start: new Date(Date.now() + 30 * 86_400_000), end: new Date(Date.now() + 40 * 86_400_000) };

const ZONES = [
  {
    name: 'example.test',
    records: [
      // Tree climbing: www.climb.example.test has no CAA, its parent names another CA.
      'climb 60 IN CAA 0 issue "otherca.test"',
      'allowed 60 IN CAA 0 issue "pebble.test; accounturi=https://ca.test/acct/1"',
      // Delegation into a zone the provider may write (sub.example.test is below example.test).
      '_acme-challenge.delegated 60 IN CNAME _acme-challenge.delegated.sub.example.test.',
      // Delegation into a zone no provider lists: a renewal would refuse to write there.
      '_acme-challenge.moved 60 IN CNAME _acme-challenge.moved.other.test.',
    ],
  },
  { name: 'sub.example.test' },
  { name: 'other.test' },
];

const CERTS = [
  { name: 'ready', domains: ['ready.example.test'], dns: { provider: 'bind' } },
  { name: 'allowed', domains: ['allowed.example.test'], dns: { provider: 'bind' } },
  { name: 'delegated', domains: ['delegated.example.test'], dns: { provider: 'bind' } },
  { name: 'caa', domains: ['www.climb.example.test'], dns: { provider: 'bind' } },
  { name: 'moved', domains: ['moved.example.test'], dns: { provider: 'bind' } },
  { name: 'badtsig', domains: ['badtsig.example.test'], dns: { provider: 'badkey' } },
];

beforeAll(async () => {
  tb = await startTestbed({ zones: ZONES });
  proxy = await startAriProxy(tb.pebble);
  ACME = {
    directory: proxy.directoryUrl,
    caBundle: tb.pebble.tlsCaPath,
    termsAgreed: true,
    requestTimeout: '10s',
    // Pebble's directory publishes no caaIdentities.
    caaIdentities: ['pebble.test'],
  };
  PROVIDERS = {
    bind: tb.bindProvider({ zones: ['example.test'] }),
    badkey: tb.bindProvider({
      zones: ['example.test'],
      tsigSecret_file: undefined,
      tsigSecret: Buffer.alloc(32, 7).toString('base64'),
    }),
  };
  config = await tb.writeConfig(CERTS, { acme: ACME }, PROVIDERS);
  // A registered account and a stored certificate (for the account and ARI checks).
  const r = await runCli(['renew', 'ready', '--config', config, '--log-level', 'error']);
  expect(r).toMatchObject({ code: 0 });
}, 120_000);
afterAll(async () => {
  await proxy?.stop();
  await tb?.stop();
});

async function readiness(...args: string[]): Promise<{ code: number; rows: Map<string, JsonRow> }> {
  const r = await runCli([
    'check',
    '--readiness',
    '--json',
    '--config',
    config,
    '--log-level',
    'error',
    ...args,
  ]);
  const doc = JSON.parse(r.stdout) as { results: JsonRow[] };
  const rows = new Map(doc.results.filter((x) => x.source === 'readiness').map((x) => [x.name, x]));
  return { code: r.code, rows };
}

function codes(row: JsonRow | undefined): string[] {
  return (row?.findings ?? []).map((f) => f.code);
}

test('every check passes where nothing is broken; the canary is written, served by BIND and removed', async () => {
  proxy.setWindow('*', FUTURE);
  const { rows } = await readiness();
  for (const name of ['ready', 'allowed', 'delegated']) {
    expect({ name, findings: rows.get(name)?.findings }).toEqual({ name, findings: [] });
    expect(rows.get(name)?.status).toBe('ok');
  }
  // named logged the canary update at the delegation's target, and the value is gone again.
  expect(tb.bind.log()).toMatch(
    /adding an RR at '_acme-challenge\.delegated\.sub\.example\.test' TXT "certpilot-readiness-[0-9a-f]{16}"/,
  );
  expect(tb.bind.log()).toMatch(
    /adding an RR at '_acme-challenge\.ready\.example\.test' TXT "certpilot-readiness-/,
  );
  expect(await tb.bind.queryTxt('_acme-challenge.ready.example.test')).toEqual([]);
  expect(await tb.bind.queryTxt('_acme-challenge.delegated.sub.example.test')).toEqual([]);
  // The ARI endpoint was asked for the stored certificate.
  expect(proxy.counts['GET /renewal-info'] ?? 0).toBeGreaterThan(0);
}, 120_000);

test('a CAA record naming another CA, found by climbing to the parent, is readiness-caa', async () => {
  const metrics = path.join(tb.dir, 'readiness.prom');
  const { rows } = await readiness('caa', '--prometheus', metrics);
  expect(rows.get('caa')?.status).toBe('warning');
  const text = await readFile(metrics, 'utf8');
  expect(text).toContain('certpilot_readiness_status{name="caa",check="caa"} 0');
  expect(text).toContain('certpilot_readiness_status{name="caa",check="cname"} 1');
  expect(text).toContain('certpilot_readiness_status{name="caa",check="dns-write"} 1');
  expect(codes(rows.get('caa'))).toEqual(['readiness-caa']);
  expect(rows.get('caa')!.findings[0]!.message).toContain(
    'www.climb.example.test: CAA at climb.example.test allows issue only by otherca.test, not this CA (pebble.test)',
  );
}, 60_000);

test('a CNAME pointing into a zone no provider may write is readiness-cname, and nothing is written', async () => {
  const { rows } = await readiness('moved');
  expect(codes(rows.get('moved'))).toEqual(['readiness-cname']);
  expect(rows.get('moved')!.findings[0]!.message).toMatch(/other\.test/);
  expect(tb.bind.log()).not.toMatch(/adding an RR at '_acme-challenge\.moved/);
}, 60_000);

test('a wrong TSIG secret is readiness-dns-write, without the secret in the message', async () => {
  const { rows } = await readiness('badtsig');
  expect(codes(rows.get('badtsig'))).toEqual(['readiness-dns-write']);
  const message = rows.get('badtsig')!.findings[0]!.message;
  expect(message).toMatch(/canary TXT record failed/);
  expect(message).toMatch(/BADSIG|BADKEY|NOTAUTH|TSIG/i);
  expect(message).not.toContain(Buffer.alloc(32, 7).toString('base64'));
  expect(await tb.bind.queryTxt('_acme-challenge.badtsig.example.test')).toEqual([]);
}, 60_000);

test('an ARI window that has started is ari-replace', async () => {
  proxy.setWindow('*', { start: new Date(Date.now() - 86_400_000), end: new Date(Date.now() + 86_400_000) });
  try {
    const { rows } = await readiness('ready');
    expect(codes(rows.get('ready'))).toEqual(['ari-replace']);
    expect(rows.get('ready')!.findings[0]!.message).toMatch(/asks for this certificate to be replaced/);
  } finally {
    proxy.setWindow('*', FUTURE);
  }
}, 60_000);

test('a watched copy of a certificate from the configured CA gets ari-replace once its window started', async () => {
  // The same certificate watched as a plain file (e.g. copied to another service by hand).
  const copy = path.join(tb.dir, 'watched.pem');
  await cp(path.join(tb.dir, 'state', 'certs', 'ready', 'fullchain.pem'), copy);
  // `ready` is listed so its stored certificate tells which issuer is the configured CA.
  const watching = await tb.writeConfig(
    [CERTS[0]],
    { acme: ACME, watch: { files: [{ path: copy, name: 'copied' }] } },
    PROVIDERS,
  );
  const run = async (): Promise<JsonRow | undefined> => {
    const r = await runCli(['check', '--readiness', '--json', '--config', watching, '--log-level', 'error']);
    return (JSON.parse(r.stdout) as { results: JsonRow[] }).results.find((x) => x.name === 'copied');
  };
  expect(codes(await run())).toEqual([]);
  proxy.setWindow('*', { start: new Date(Date.now() - 3_600_000), end: new Date(Date.now() + 86_400_000) });
  try {
    const row = await run();
    expect(codes(row)).toEqual(['ari-replace']);
    expect(row?.status).toBe('warning');
  } finally {
    proxy.setWindow('*', FUTURE);
  }
}, 60_000);

test('an ARI endpoint that has no answer for the certificate is readiness-ari', async () => {
  proxy.setWindow('*', null);
  try {
    const { rows } = await readiness('ready');
    expect(codes(rows.get('ready'))).toEqual(['readiness-ari']);
    expect(rows.get('ready')!.findings[0]!.message).toMatch(/renewalInfo endpoint did not answer/);
  } finally {
    proxy.setWindow('*', FUTURE);
  }
}, 60_000);

test('a deactivated account is readiness-account', async () => {
  // Another host sharing this account deactivated it: keep a copy of the account directory,
  // deactivate (which moves the directory aside), and put the copy back.
  const accounts = path.join(tb.dir, 'state', 'accounts');
  const [dir] = (await readdir(accounts)).filter((d) => !d.includes('.deactivated-'));
  const copy = path.join(tb.dir, 'account-copy');
  await cp(path.join(accounts, dir!), copy, { recursive: true });
  const d = await runCli(['account', 'deactivate', '--yes', '--config', config, '--log-level', 'error']);
  expect(d.code).toBe(0);
  await rm(path.join(accounts, dir!), { recursive: true, force: true });
  await cp(copy, path.join(accounts, dir!), { recursive: true });

  const { code, rows } = await readiness('ready');
  // The stored certificate is fine: the readiness row alone makes the check WARNING.
  expect(code).toBe(1);
  expect(codes(rows.get('ready'))).toEqual(['readiness-account']);
  expect(rows.get('ready')!.findings[0]!.message).toMatch(
    /ACME account https:\/\/\S+ (cannot be used|is deactivated)/,
  );
}, 60_000);
