/**
 * Peers benchmark: the same N single-name certificates issued by certpilot, lego and certbot
 * against one local Pebble + BIND, then a no-op renewal pass and CLI start-up time, with a
 * minimal acme-client script as the floor and every figure also as a ratio to certpilot's.
 *
 *   npm run build && npx ts-node --transpile-only bench/peers.ts [N]
 *     [--clients=certpilot,acme-client,lego,certbot-fast,certbot] [--certbot-fast-seconds=1]
 *     [--json=FILE] [--debug-dir=DIR]
 *
 * See bench/README.md ("Peers") for the method. In short:
 * - Installs the Debian packages it needs when missing (as root; otherwise prints the command
 *   and exits 1).
 * - Re-runs itself inside a private network + mount + PID namespace (`unshare`): only a loopback
 *   interface exists, /etc/resolv.conf says `nameserver 127.0.0.1`, and 127.0.0.1:53 relays to
 *   the test BIND. No packet can leave the machine, whatever a client tries; when the run ends,
 *   the namespace's processes (Pebble, BIND, clients) end with it.
 * - All clients use one counting HTTPS proxy in front of Pebble as their ACME directory
 *   (bench/peers/acme-proxy.ts) and update the same BIND with RFC 2136 + TSIG.
 * - Peak RSS: GNU time (%M, from wait4) around every client process, the max over its processes.
 * - TXT check: BIND query logging; a client checked when BIND saw a TXT query for the name from
 *   the clients' relay (source 127.0.0.2; Pebble queries from 127.0.0.1) after the client's
 *   update added the value and before the client's challenge POST reached the proxy.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestbed, type Testbed } from '../test/helpers/testbed';
import { startAcmeProxy, type AcmeProxy } from './peers/acme-proxy';
import { parseBindLog, type BindEvent } from './peers/bind-log';
import { startDnsForwarder, type DnsForwarder } from './peers/dns-forward';
import { describeFailure, GNU_TIME, killAll, runProc, type ProcResult } from './peers/proc';

const ROOT = path.join(__dirname, '..');
const CERTPILOT_BIN = path.join(ROOT, 'bin', 'certpilot.js');
const IN_NETNS = 'CERTPILOT_PEERS_NETNS';
const ZONE = 'example.test';
const STARTUP_RUNS = 10;
/** Every client's DNS server: the forwarder to BIND (bench/peers/dns-forward.ts). */
const DNS_SERVER = '127.0.0.1';
const DNS_PORT = 53;
/** Source address of the forwarder's messages to BIND, i.e. of every client query BIND logs. */
const CLIENT_SRC = '127.0.0.2';
const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

type ClientId = 'certpilot' | 'acme-client' | 'lego' | 'certbot-fast' | 'certbot';
const ALL_CLIENTS: ClientId[] = ['certpilot', 'acme-client', 'lego', 'certbot-fast', 'certbot'];
/** The floor: a minimal acme-client script (bench/peers/acme-client-floor.js). */
const FLOOR_SCRIPT = path.join(__dirname, 'peers', 'acme-client-floor.js');

interface Args {
  n: number;
  clients: ClientId[];
  certbotFastSeconds: number;
  json?: string;
  /** Keeps named's log, the proxy's request log and every client's output here. */
  debugDir?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { n: 20, clients: ALL_CLIENTS, certbotFastSeconds: 1 };
  for (const a of argv) {
    if (/^\d+$/.test(a)) args.n = Number(a);
    else if (a.startsWith('--clients=')) {
      const list = a.slice('--clients='.length).split(',') as ClientId[];
      for (const c of list) if (!ALL_CLIENTS.includes(c)) throw new Error(`unknown client ${c}`);
      args.clients = list;
    } else if (a.startsWith('--certbot-fast-seconds=')) args.certbotFastSeconds = Number(a.split('=')[1]);
    else if (a.startsWith('--json=')) args.json = path.resolve(a.slice('--json='.length));
    else if (a.startsWith('--debug-dir=')) args.debugDir = path.resolve(a.slice('--debug-dir='.length));
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(args.n >= 1 && args.n <= 200)) throw new Error('N must be 1..200');
  if (!(args.certbotFastSeconds >= 0 && args.certbotFastSeconds <= 60))
    throw new Error('--certbot-fast-seconds must be 0..60');
  return args;
}

// ---------------------------------------------------------------------------------------------
// Outside the namespace: packages, build, re-exec.

function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function ensurePackages(): void {
  const needed: [pkg: string, present: () => boolean][] = [
    ['lego', () => existsSync('/usr/bin/lego')],
    ['certbot', () => existsSync('/usr/bin/certbot')],
    ['python3-certbot-dns-rfc2136', () => dpkgInstalled('python3-certbot-dns-rfc2136')],
    ['time', () => existsSync(GNU_TIME)],
    ['pebble', () => existsSync('/usr/bin/pebble')],
    ['bind9', () => existsSync('/usr/sbin/named')],
    ['bind9-dnsutils', () => existsSync('/usr/bin/dig')],
  ];
  const missing = needed.filter(([, present]) => !present()).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const cmd = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`peers: missing Debian packages: ${missing.join(' ')}\nrun as root:\n  ${cmd}`);
    process.exit(1);
  }
  console.error(`peers: installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit', env, timeout: 600_000 });
    if (r.status !== 0) {
      console.error(`peers: ${argv.join(' ')} failed (${r.status ?? r.signal})`);
      process.exit(1);
    }
  }
}

/** Runs this script again inside fresh net/mount/PID namespaces; resolves with its exit code. */
async function reexecIsolated(): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-peers-ns-'));
  try {
    const resolv = path.join(dir, 'resolv.conf');
    await writeFile(resolv, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    const unshare = ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--kill-child=SIGTERM'];
    if (process.getuid?.() !== 0) unshare.unshift('--user', '--map-root-user');
    const inner = [
      process.execPath,
      '-r',
      require.resolve('ts-node/register/transpile-only'),
      __filename,
      ...process.argv.slice(2),
    ];
    const script = 'ip link set lo up && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
    const child = spawn('unshare', [...unshare, '--', '/bin/sh', '-c', script, 'sh', resolv, ...inner], {
      cwd: ROOT,
      env: { ...process.env, [IN_NETNS]: '1' },
      stdio: 'inherit',
    });
    // unshare --fork ignores SIGINT/SIGTERM while it waits: signal its child (the benchmark,
    // PID 1 of the new namespace, which cleans up and exits); if that child cannot be found,
    // SIGKILL unshare, and --kill-child delivers SIGTERM to it.
    const forward = (): void => {
      if (!child.pid) return;
      try {
        const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
          .trim()
          .split(/\s+/);
        for (const k of kids) if (/^\d+$/.test(k)) process.kill(Number(k), 'SIGTERM');
        if (kids.some((k) => /^\d+$/.test(k))) return;
      } catch {
        /* fall through */
      }
      child.kill('SIGKILL');
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return await new Promise<number>((resolve) => {
      child.once('error', (err) => {
        console.error(`peers: cannot start unshare: ${err.message}`);
        resolve(1);
      });
      child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Inside the namespace.

function assertIsolated(resolvConf: string): void {
  const ifaces = Object.keys(os.networkInterfaces());
  if (ifaces.some((i) => i !== 'lo')) throw new Error(`not isolated: interfaces ${ifaces.join(', ')}`);
  if (!/^nameserver 127\.0\.0\.1$/m.test(resolvConf) || /^nameserver (?!127\.0\.0\.1$)/m.test(resolvConf))
    throw new Error(`not isolated: /etc/resolv.conf is\n${resolvConf}`);
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Phase {
  wallMs: number;
  perCertMedianMs: number;
  maxRssKb: number;
  acmeRequests: number;
  requestKinds: Record<string, number>;
  processes: number;
}

interface TxtCheck {
  /** Names with at least one client TXT query between the client's add and its challenge POST. */
  namesChecked: number;
  names: number;
  /** Client TXT queries for the challenge names in that interval, all names together. */
  queries: number;
  /** Client TXT queries for the names after the POST. */
  queriesAfterAnswer: number;
  /** TXT queries for the names from Pebble (127.0.0.1): proves the log was read. */
  caQueries: number;
  /** Names where the add or the POST was not found. */
  unmatched: number;
}

interface ClientResult {
  id: ClientId;
  label: string;
  version: string;
  names: string[];
  issue: Phase;
  noop: Phase;
  txt?: TxtCheck;
  startupMedianMs: number;
  startupCommand: string;
}

interface Ctx {
  tb: Testbed;
  proxy: AcmeProxy;
  work: string;
  n: number;
  certbotFastSeconds: number;
  debugDir?: string;
}

function baseEnv(home: string): NodeJS.ProcessEnv {
  // A clean environment: no proxy variables, no inherited client configuration.
  return { PATH: CLEAN_PATH, HOME: home, LANG: 'C.UTF-8', TMPDIR: os.tmpdir() };
}

function requestsFor(proxy: AcmeProxy, label: string): { total: number; kinds: Record<string, number> } {
  const kinds: Record<string, number> = {};
  let total = 0;
  for (const r of proxy.requests) {
    if (r.label !== label) continue;
    total++;
    kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
  }
  return { total, kinds };
}

function ensureOk(r: ProcResult): ProcResult {
  if (r.timedOut || r.code !== 0) throw new Error(describeFailure(r));
  return r;
}

async function runSequence(
  ctx: Ctx,
  label: string,
  runs: { argv: string[]; env: NodeJS.ProcessEnv; timeoutMs: number }[],
): Promise<{ phase: Phase; results: ProcResult[] }> {
  ctx.proxy.setLabel(label);
  const started = performance.now();
  const results: ProcResult[] = [];
  for (const r of runs) {
    results.push(
      ensureOk(await runProc(r.argv, { env: r.env, timeoutMs: r.timeoutMs, scratchDir: ctx.work })),
    );
  }
  const wallMs = performance.now() - started;
  ctx.proxy.setLabel('none');
  if (ctx.debugDir) {
    for (const [i, r] of results.entries()) {
      const base = path.join(ctx.debugDir, `${label}-${i}`);
      await writeFile(`${base}.txt`, `${r.argv.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    }
  }
  const reqs = requestsFor(ctx.proxy, label);
  return {
    results,
    phase: {
      wallMs,
      perCertMedianMs: median(results.map((r) => r.wallMs)),
      maxRssKb: Math.max(...results.map((r) => r.maxRssKb)),
      acmeRequests: reqs.total,
      requestKinds: reqs.kinds,
      processes: results.length,
    },
  };
}

async function startupMedian(argv: string[], env: NodeJS.ProcessEnv, work: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= STARTUP_RUNS; i++) {
    const r = ensureOk(await runProc(argv, { env, timeoutMs: 30_000, scratchDir: work, measureRss: false }));
    if (i > 0) times.push(r.wallMs); // the first run warms the page cache and is dropped
  }
  return median(times);
}

function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `c${i}.${prefix}.${ZONE}`);
}

// ----- certpilot

async function runCertpilot(ctx: Ctx): Promise<ClientResult> {
  const { tb, proxy } = ctx;
  const home = path.join(ctx.work, 'certpilot-home');
  await mkdir(home, { recursive: true });
  const domains = names('certpilot', ctx.n);
  // The rfc2136 provider with certpilot's own defaults (propagation timeout 120 s, checked every
  // 1 s), not the testbed's 100 ms test setting; default concurrency (4).
  const provider = {
    type: 'rfc2136',
    server: DNS_SERVER,
    port: DNS_PORT,
    tsigKeyName: tb.bind.tsig.name,
    tsigAlgorithm: tb.bind.tsig.algorithm,
    tsigSecret_file: path.join(tb.dir, 'tsig.secret'),
  };
  const config = await tb.writeConfig(
    domains.map((d, i) => ({ name: `c${i}`, domains: [d], dns: { provider: 'bind' } })),
    {
      acme: {
        directory: proxy.directoryUrl,
        caBundle: tb.pebble.tlsCaPath,
        termsAgreed: true,
        email: 'ops@example.test',
        requestTimeout: '10s',
      },
      dns: {
        resolvers: [`${DNS_SERVER}:${DNS_PORT}`],
        nameserverPort: DNS_PORT,
        providers: { bind: provider },
      },
    },
  );
  const env = baseEnv(home);
  const argv = [
    process.execPath,
    CERTPILOT_BIN,
    'renew',
    '--config',
    config,
    '--json',
    '--log-level',
    'warn',
  ];
  const timeoutMs = 60_000 + ctx.n * 15_000;
  const issue = await runSequence(ctx, 'certpilot', [{ argv, env, timeoutMs }]);
  const report = JSON.parse(issue.results[0]!.stdout) as {
    certificates: { status: string; durationMs: number | null }[];
  };
  const renewed = report.certificates.filter((c) => c.status === 'renewed');
  if (renewed.length !== ctx.n) throw new Error(`certpilot renewed ${renewed.length} of ${ctx.n}`);
  issue.phase.perCertMedianMs = median(renewed.map((c) => c.durationMs ?? NaN));
  const noop = await runSequence(ctx, 'certpilot-noop', [{ argv, env, timeoutMs }]);
  const again = JSON.parse(noop.results[0]!.stdout) as { certificates: { status: string }[] };
  const valid = again.certificates.filter((c) => c.status === 'valid').length;
  if (valid !== ctx.n) throw new Error(`certpilot no-op pass: ${valid} of ${ctx.n} valid`);
  const version = ensureOk(
    await runProc([process.execPath, CERTPILOT_BIN, '--version'], {
      env,
      timeoutMs: 30_000,
      scratchDir: ctx.work,
      measureRss: false,
    }),
  ).stdout.trim();
  return {
    id: 'certpilot',
    label: 'certpilot',
    version: `${version} (node ${process.version})`,
    names: domains,
    issue: issue.phase,
    noop: noop.phase,
    startupMedianMs: await startupMedian([process.execPath, CERTPILOT_BIN, '--version'], env, ctx.work),
    startupCommand: 'node bin/certpilot.js --version',
  };
}

// ----- acme-client: the floor

async function runAcmeClientFloor(ctx: Ctx): Promise<ClientResult> {
  const { tb, proxy } = ctx;
  const dir = path.join(ctx.work, 'acme-client');
  const home = path.join(dir, 'home');
  await mkdir(home, { recursive: true });
  const keyFile = path.join(dir, 'tsig.key');
  await writeFile(
    keyFile,
    `key "${tb.bind.tsig.name}" { algorithm ${tb.bind.tsig.algorithm}; secret "${tb.bind.tsig.secret}"; };\n`,
    { mode: 0o600 },
  );
  const domains = names('floor', ctx.n);
  const spec = path.join(dir, 'spec.json');
  await writeFile(
    spec,
    JSON.stringify({
      directoryUrl: proxy.directoryUrl,
      email: 'ops@example.test',
      names: domains,
      dir,
      concurrency: 4,
      keyFile,
      server: DNS_SERVER,
      port: DNS_PORT,
      zone: ZONE,
    }),
  );
  // acme-client talks to Pebble through Node's https: Pebble's CA as an extra trusted root.
  const env: NodeJS.ProcessEnv = { ...baseEnv(home), NODE_EXTRA_CA_CERTS: tb.pebble.tlsCaPath };
  const timeoutMs = 60_000 + ctx.n * 15_000;
  const issue = await runSequence(ctx, 'acme-client', [
    { argv: [process.execPath, FLOOR_SCRIPT, 'issue', spec], env, timeoutMs },
  ]);
  if (!issue.results[0]!.stdout.includes(`issued ${ctx.n}`))
    throw new Error(`acme-client floor: ${issue.results[0]!.stdout}`);
  // One process, like certpilot's: no per-certificate figure of its own.
  issue.phase.perCertMedianMs = NaN;
  const noop = await runSequence(ctx, 'acme-client-noop', [
    { argv: [process.execPath, FLOOR_SCRIPT, 'noop', spec], env, timeoutMs: 60_000 },
  ]);
  if (!noop.results[0]!.stdout.includes(`not due ${ctx.n}`))
    throw new Error(`acme-client floor no-op pass: ${noop.results[0]!.stdout}`);
  const versionArgv = [process.execPath, FLOOR_SCRIPT, '--version'];
  const version = ensureOk(
    await runProc(versionArgv, { env, timeoutMs: 30_000, scratchDir: ctx.work, measureRss: false }),
  ).stdout.trim();
  return {
    id: 'acme-client',
    label: 'acme-client floor script',
    version: `${version} (node ${process.version})`,
    names: domains,
    issue: issue.phase,
    noop: noop.phase,
    startupMedianMs: await startupMedian(versionArgv, env, ctx.work),
    startupCommand: 'node bench/peers/acme-client-floor.js --version',
  };
}

// ----- lego

function dpkgVersion(pkg: string): string {
  return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }).trim();
}

async function runLego(ctx: Ctx): Promise<ClientResult> {
  const { tb, proxy } = ctx;
  const home = path.join(ctx.work, 'lego-home');
  const legoPath = path.join(ctx.work, 'lego');
  await mkdir(home, { recursive: true });
  const domains = names('lego', ctx.n);
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(home),
    LEGO_CA_CERTIFICATES: tb.pebble.tlsCaPath,
    RFC2136_NAMESERVER: `${DNS_SERVER}:${DNS_PORT}`,
    RFC2136_TSIG_KEY: `${tb.bind.tsig.name}.`,
    RFC2136_TSIG_ALGORITHM: `${tb.bind.tsig.algorithm}.`,
    RFC2136_TSIG_SECRET: tb.bind.tsig.secret,
  };
  const global = (d: string): string[] => [
    '/usr/bin/lego',
    '--server',
    proxy.directoryUrl,
    '--accept-tos',
    '--email',
    'ops@example.test',
    '--path',
    legoPath,
    '--dns',
    'rfc2136',
    '--dns.resolvers',
    `${DNS_SERVER}:${DNS_PORT}`,
    '--domains',
    d,
  ];
  const timeoutMs = 180_000;
  const issue = await runSequence(
    ctx,
    'lego',
    domains.map((d) => ({ argv: [...global(d), 'run'], env, timeoutMs })),
  );
  // No renew-all in lego: one `renew` per certificate, as a cron script would; 30 days is lego's
  // default threshold, and Pebble's certificates last years, so nothing is due.
  const noop = await runSequence(
    ctx,
    'lego-noop',
    domains.map((d) => ({
      argv: [...global(d), 'renew', '--days', '30', '--no-random-sleep'],
      env,
      timeoutMs,
    })),
  );
  const notDue = noop.results.filter((r) => /no renewal\./.test(r.stderr)).length;
  if (notDue !== ctx.n)
    throw new Error(
      `lego no-op pass: ${notDue} of ${ctx.n} not due:\n${noop.results.map((r) => r.stderr).join('\n')}`,
    );
  return {
    id: 'lego',
    label: 'lego',
    version: dpkgVersion('lego'),
    names: domains,
    issue: issue.phase,
    noop: noop.phase,
    startupMedianMs: await startupMedian(['/usr/bin/lego', '--version'], env, ctx.work),
    startupCommand: 'lego --version',
  };
}

// ----- certbot

async function runCertbot(ctx: Ctx, fast: boolean): Promise<ClientResult> {
  const { tb, proxy } = ctx;
  const id: ClientId = fast ? 'certbot-fast' : 'certbot';
  const seconds = fast ? ctx.certbotFastSeconds : 60;
  const dir = path.join(ctx.work, id);
  const home = path.join(dir, 'home');
  await mkdir(home, { recursive: true });
  const credentials = path.join(dir, 'rfc2136.ini');
  await writeFile(
    credentials,
    [
      `dns_rfc2136_server = ${DNS_SERVER}`,
      `dns_rfc2136_port = ${DNS_PORT}`,
      `dns_rfc2136_name = ${tb.bind.tsig.name}`,
      `dns_rfc2136_secret = ${tb.bind.tsig.secret}`,
      `dns_rfc2136_algorithm = ${tb.bind.tsig.algorithm.toUpperCase()}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await chmod(credentials, 0o600);
  const emptyIni = path.join(dir, 'cli.ini');
  await writeFile(emptyIni, '');
  const env: NodeJS.ProcessEnv = { ...baseEnv(home), REQUESTS_CA_BUNDLE: tb.pebble.tlsCaPath };
  const dirs = [
    '--config',
    emptyIni,
    '--config-dir',
    path.join(dir, 'config'),
    '--work-dir',
    path.join(dir, 'work'),
    '--logs-dir',
    path.join(dir, 'logs'),
  ];
  const domains = names(fast ? `certbot${seconds}s` : 'certbot', ctx.n);
  const timeoutMs = seconds * 1000 + 120_000;
  const issue = await runSequence(
    ctx,
    id,
    domains.map((d) => ({
      argv: [
        '/usr/bin/certbot',
        'certonly',
        ...dirs,
        '--non-interactive',
        '--agree-tos',
        '--email',
        'ops@example.test',
        '--no-eff-email',
        '--server',
        proxy.directoryUrl,
        '--authenticator',
        'dns-rfc2136',
        '--dns-rfc2136-credentials',
        credentials,
        '--dns-rfc2136-propagation-seconds',
        String(seconds),
        '--key-type',
        'ecdsa',
        '--cert-name',
        d,
        '--domains',
        d,
      ],
      env,
      timeoutMs,
    })),
  );
  // certbot has renew-all: one `certbot renew` over the N lineages.
  const noop = await runSequence(ctx, `${id}-noop`, [
    {
      argv: ['/usr/bin/certbot', 'renew', ...dirs, '--non-interactive', '--no-random-sleep-on-renew'],
      env,
      timeoutMs: 120_000,
    },
  ]);
  const out = noop.results[0]!.stdout + noop.results[0]!.stderr;
  const notDue = (out.match(/not yet due for renewal/g) ?? []).length;
  if (notDue !== ctx.n) throw new Error(`certbot no-op pass: ${notDue} of ${ctx.n} not due:\n${out}`);
  const version = ensureOk(
    await runProc(['/usr/bin/certbot', '--version'], {
      env,
      timeoutMs: 30_000,
      scratchDir: ctx.work,
      measureRss: false,
    }),
  );
  return {
    id,
    label: `certbot (propagation ${seconds} s${fast ? '' : ', default'})`,
    version: `${(version.stdout + version.stderr).trim()} + dns-rfc2136 ${dpkgVersion('python3-certbot-dns-rfc2136')}`,
    names: domains,
    issue: issue.phase,
    noop: noop.phase,
    startupMedianMs: await startupMedian(['/usr/bin/certbot', '--version'], env, ctx.work),
    startupCommand: 'certbot --version',
  };
}

// ----- TXT check from BIND's query log

function txtCheck(events: BindEvent[], proxy: AcmeProxy, label: string, domains: string[]): TxtCheck {
  const res: TxtCheck = {
    namesChecked: 0,
    names: domains.length,
    queries: 0,
    queriesAfterAnswer: 0,
    caQueries: 0,
    unmatched: 0,
  };
  for (const d of domains) {
    const owner = `_acme-challenge.${d}`;
    const added = events.find((e) => e.kind === 'add' && e.type === 'TXT' && e.name === owner);
    const answered = proxy.answers.find((a) => a.label === label && a.name === d);
    if (!added || !answered) {
      res.unmatched++;
      continue;
    }
    const txt = events.filter((e) => e.kind === 'query' && e.type === 'TXT' && e.name === owner);
    const mine = txt.filter((e) => e.src === CLIENT_SRC && e.at >= added.at);
    // named stamps a line with its loop's cached time, which lags: a query sent before the POST
    // is never stamped after it.
    const before = mine.filter((e) => e.at <= answered.at).length;
    res.queries += before;
    res.queriesAfterAnswer += mine.length - before;
    res.caQueries += txt.filter((e) => e.src !== CLIENT_SRC).length;
    if (before > 0) res.namesChecked++;
  }
  return res;
}

// ----- output

const s = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const mb = (kb: number): string => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(1)} MB` : 'n/a');
const msStr = (ms: number): string => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : 'n/a');

function txtCell(t: TxtCheck | undefined): string {
  if (!t) return 'n/a';
  if (t.unmatched > 0 || t.caQueries === 0) return `unknown (log not matched for ${t.unmatched} names)`;
  const verdict = t.namesChecked === t.names ? 'yes' : t.namesChecked === 0 ? 'no' : 'partly';
  return `${verdict} (${t.namesChecked}/${t.names} names, ${t.queries} TXT queries)`;
}

/** `figure` as a multiple of certpilot's: taken in the same sitting, it survives a noisy machine. */
function ratio(figure: number, certpilots: number | undefined): string {
  return certpilots !== undefined && Number.isFinite(figure) && certpilots > 0
    ? `${(figure / certpilots).toFixed(2)}x`
    : 'n/a';
}

function table(results: ClientResult[], n: number): string {
  const head = [
    'client',
    `wall time (N=${n})`,
    'wall ÷ certpilot',
    'per-certificate median',
    'peak RSS',
    'ACME requests',
    'TXT checked before answering',
    'no-op pass (wall / ACME requests)',
    'no-op ÷ certpilot',
    'start-up (median of 10)',
    'start-up ÷ certpilot',
  ];
  const cp = results.find((r) => r.id === 'certpilot');
  const rows = results.map((r) => [
    r.label,
    s(r.issue.wallMs),
    ratio(r.issue.wallMs, cp?.issue.wallMs),
    s(r.issue.perCertMedianMs),
    mb(r.issue.maxRssKb),
    String(r.issue.acmeRequests),
    txtCell(r.txt),
    `${s(r.noop.wallMs)} / ${r.noop.acmeRequests}`,
    ratio(r.noop.wallMs, cp?.noop.wallMs),
    msStr(r.startupMedianMs),
    ratio(r.startupMedianMs, cp?.startupMedianMs),
  ]);
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

async function inside(args: Args): Promise<void> {
  assertIsolated(await readFile('/etc/resolv.conf', 'utf8'));
  const loadAtStart = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` first');
  const work = await mkdtemp(path.join(os.tmpdir(), 'certpilot-peers-'));
  let tb: Testbed | undefined;
  let proxy: AcmeProxy | undefined;
  let fwd: DnsForwarder | undefined;
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.error(`peers: ${sig}, cleaning up`);
    killAll();
    void Promise.allSettled([proxy?.stop(), fwd?.stop(), tb?.stop()])
      .then(() => rm(work, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    tb = await startTestbed();
    execFileSync('/usr/sbin/rndc', ['-c', path.join(tb.bind.dir, 'rndc.conf'), 'querylog', 'on'], {
      timeout: 10_000,
    });
    fwd = await startDnsForwarder(tb.bind.port, { listenPort: DNS_PORT, sourceAddress: CLIENT_SRC });
    proxy = await startAcmeProxy({
      upstreamDirectoryUrl: tb.pebble.directoryUrl,
      tlsCaPath: tb.pebble.tlsCaPath,
      tlsCertPath: tb.pebble.tlsCertPath,
      tlsKeyPath: tb.pebble.tlsKeyPath,
    });
    if (args.debugDir) await mkdir(args.debugDir, { recursive: true });
    const ctx: Ctx = {
      tb,
      proxy,
      work,
      n: args.n,
      certbotFastSeconds: args.certbotFastSeconds,
      debugDir: args.debugDir,
    };
    const results: ClientResult[] = [];
    for (const c of args.clients) {
      const t0 = Date.now();
      console.error(`peers: ${c}: ${args.n} certificates ...`);
      const r =
        c === 'certpilot'
          ? await runCertpilot(ctx)
          : c === 'acme-client'
            ? await runAcmeClientFloor(ctx)
            : c === 'lego'
              ? await runLego(ctx)
              : await runCertbot(ctx, c === 'certbot-fast');
      console.error(`peers: ${c}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      results.push(r);
    }
    // Let named flush the last query-log lines before reading them.
    await new Promise((r) => setTimeout(r, 500));
    const events = parseBindLog(tb.bind.log());
    if (args.debugDir) {
      await writeFile(path.join(args.debugDir, 'named.log'), tb.bind.log());
      await writeFile(
        path.join(args.debugDir, 'acme-proxy.json'),
        JSON.stringify({ requests: proxy.requests, answers: proxy.answers }, null, 1),
      );
    }
    for (const r of results) r.txt = txtCheck(events, proxy, r.id, r.names);

    // Node's own start-up, same sitting: what no Node program can go below.
    const nodeStartup = await startupMedian([process.execPath, '-e', '0'], baseEnv(work), work);
    console.log(table(results, args.n));
    console.log('');
    const cp = results.find((r) => r.id === 'certpilot');
    console.log(
      `start-up of node -e 0 (median of ${STARTUP_RUNS}): ${msStr(nodeStartup)}` +
        (cp ? `; certpilot --version is ${(cp.startupMedianMs / nodeStartup).toFixed(2)}x that` : ''),
    );
    console.log('versions:');
    for (const r of results) console.log(`  ${r.label}: ${r.version}`);
    console.log('ACME requests by kind (issuance):');
    for (const r of results)
      console.log(
        `  ${r.label}: ${Object.entries(r.issue.requestKinds)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    console.log('no-op pass by kind:');
    for (const r of results)
      console.log(
        `  ${r.label}: ${r.noop.processes} process(es), wall ${s(r.noop.wallMs)}, peak RSS ${mb(r.noop.maxRssKb)}; ${
          Object.entries(r.noop.requestKinds)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'no ACME requests'
        }`,
      );
    console.log('TXT queries at BIND for the challenge names (client before POST / client after POST / CA):');
    for (const r of results)
      if (r.txt)
        console.log(
          `  ${r.label}: ${r.txt.queries} / ${r.txt.queriesAfterAnswer} / ${r.txt.caQueries}` +
            (r.txt.unmatched ? `; ${r.txt.unmatched} names without add or POST` : ''),
        );
    console.log(`DNS messages relayed by the clients' forwarder 127.0.0.1:53: ${fwd.relayed}`);
    console.log(
      `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (start: ${loadAtStart}), ${new Date().toISOString()}`,
    );
    if (args.json) {
      await writeFile(
        args.json,
        JSON.stringify(
          { n: args.n, date: new Date().toISOString(), nodeStartupMs: nodeStartup, results },
          null,
          2,
        ) + '\n',
      );
    }
  } finally {
    killAll();
    await Promise.allSettled([proxy?.stop(), fwd?.stop()]);
    await tb?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (process.env[IN_NETNS] === '1') {
    await inside(args);
    return 0;
  }
  ensurePackages();
  return reexecIsolated();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    killAll();
    process.exit(1);
  },
);
