/* eslint-disable @typescript-eslint/no-explicit-any -- the cases build deliberately ill-typed configurations */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { runCli, type CliResult } from '../helpers/testbed';

/**
 * Bad input catalog (issue #7 item 5). Each invalid configuration goes through the REAL CLI
 * (`certpilot renew`, `certpilot run` and `certpilot config check`, in process) and must give
 * exit 2 and exactly one problem, named by its path, with nothing written (the run's
 * directory tree is unchanged: no stateDir, no output files) and nothing contacted: the ACME
 * directory, the DNS server (UDP and TCP), the resolver and the alert receivers all point at
 * loopback sockets this test owns, and they must see zero connections and zero datagrams.
 *
 * test/config/invalid.test.ts checks the loader's exact issue lists; this file checks what an
 * operator sees from the command line and that a bad file stops everything before any I/O.
 */

/** Distinctive values: none may appear in what the CLI prints for an invalid file. */
const TSIG_SECRET = 'QkFELUlOUFVULVRTSUctZG8tbm90LXByaW50';
const WEBHOOK_SECRET = 'whsec-bad-input-do-not-print';
const SMTP_PASSWORD = 'smtp-bad-input-do-not-print';
const URL_PASSWORD = 'url-pass-bad-input-do-not-print';

// ---- loopback sockets that must stay silent ------------------------------------------------

interface Listeners {
  acmePort: number;
  dnsPort: number;
  /** Webhook and SMTP alerts go here. */
  alertPort: number;
  /** Connections (TCP) and datagrams (UDP) received so far, by socket. */
  counts(): { acme: number; dnsTcp: number; dnsUdp: number; alert: number };
  close(): Promise<void>;
}

function tcpCounter(port = 0): Promise<{ server: net.Server; port: number; count: () => number }> {
  let n = 0;
  const server = net.createServer((socket) => {
    n++;
    // Hang up at once: a client that got this far has already failed the test.
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve({ server, port: (server.address() as net.AddressInfo).port, count: () => n });
    });
  });
}

/** A UDP socket and a TCP listener on the same port, as a DNS server has. */
async function dnsCounter(): Promise<{
  udp: dgram.Socket;
  tcp: Awaited<ReturnType<typeof tcpCounter>>;
  udpCount: () => number;
}> {
  for (let attempt = 0; attempt < 20; attempt++) {
    let datagrams = 0;
    const udp = dgram.createSocket('udp4');
    udp.on('message', () => datagrams++);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    try {
      const tcp = await tcpCounter(udp.address().port);
      return { udp, tcp, udpCount: () => datagrams };
    } catch {
      udp.close(); // the TCP port of that number is taken: try another
    }
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

async function startListeners(): Promise<Listeners> {
  const acme = await tcpCounter();
  const dns = await dnsCounter();
  const alert = await tcpCounter();
  return {
    acmePort: acme.port,
    dnsPort: dns.tcp.port,
    alertPort: alert.port,
    counts: () => ({
      acme: acme.count(),
      dnsTcp: dns.tcp.count(),
      dnsUdp: dns.udpCount(),
      alert: alert.count(),
    }),
    async close() {
      await Promise.all(
        [acme.server, dns.tcp.server, alert.server].map((s) => new Promise<void>((r) => s.close(() => r()))),
      );
      await new Promise<void>((r) => dns.udp.close(() => r()));
    },
  };
}

// ---- the valid base configuration ------------------------------------------------------------

interface CaseDir {
  dir: string;
  stateDir: string;
  outDir: string;
  /** Writes a secret file (default mode 0600) in the case directory and returns its path. */
  secret(name: string, value: string, mode?: number): string;
}

let root: string;
let listeners: Listeners;
let caseCounter = 0;

function newCaseDir(): CaseDir {
  const dir = fs.mkdtempSync(path.join(root, `case-${++caseCounter}-`));
  return {
    dir,
    stateDir: path.join(dir, 'state'),
    outDir: path.join(dir, 'out'),
    secret(name, value, mode = 0o600) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, value);
      fs.chmodSync(file, mode);
      return file;
    },
  };
}

/**
 * A configuration that is valid and would contact every listener: ACME on the local "CA", an
 * rfc2136 provider and resolver on the local "DNS server", webhook and SMTP alerts on the local
 * alert port, a deploy hook and file outputs in the case directory.
 */
function baseConfig(c: CaseDir): Record<string, any> {
  return {
    acme: {
      directory: `https://127.0.0.1:${listeners.acmePort}/dir`,
      termsAgreed: true,
      email: 'ops@example.test',
      requestTimeout: '2s',
    },
    storage: { stateDir: c.stateDir },
    dns: {
      resolvers: [`127.0.0.1:${listeners.dnsPort}`],
      nameserverPort: listeners.dnsPort,
      queryTimeout: '500ms',
      providers: {
        bind: {
          type: 'rfc2136',
          server: '127.0.0.1',
          port: listeners.dnsPort,
          tsigKeyName: 'certpilot',
          tsigSecret_file: c.secret('tsig.secret', TSIG_SECRET),
          propagationTimeout: '2s',
          propagationInterval: '100ms',
        },
      },
    },
    notify: {
      webhooks: [{ url: `http://127.0.0.1:${listeners.alertPort}/hook`, secret: WEBHOOK_SECRET, retries: 0 }],
      email: {
        host: '127.0.0.1',
        port: listeners.alertPort,
        tls: 'none',
        username: 'certpilot',
        password: SMTP_PASSWORD,
        from: 'certpilot@example.test',
        to: ['ops@example.test'],
        timeout: '2s',
      },
    },
    certificates: [
      {
        name: 'www',
        domains: ['example.test', '*.example.test'],
        dns: { provider: 'bind' },
        outputs: [{ fullchain: path.join(c.outDir, 'fullchain.pem'), key: path.join(c.outDir, 'key.pem') }],
        hooks: { deploy: [['/bin/true']] },
      },
    ],
  };
}

// ---- the catalog ------------------------------------------------------------------------------

interface Case {
  name: string;
  /** Breaks a fresh copy of the base configuration. */
  mutate?: (config: Record<string, any>, c: CaseDir) => void;
  /** Raw file text instead of a mutated base (syntax-level problems). */
  raw?: (c: CaseDir) => string;
  /** The one path that must be reported. */
  path: string;
  /** A fragment of its message. */
  message?: RegExp;
  /** Written as JSON (for keys YAML cannot express the same way). */
  json?: boolean;
}

const cert0 = (c: Record<string, any>): Record<string, any> => c.certificates[0];
/** A relative path that must never be created below the working directory. */
const RELATIVE = `certpilot-bad-input-${process.pid}`;

const cases: Case[] = [
  // Unknown keys, at every level.
  {
    name: 'unknown top-level key',
    mutate: (c) => (c.colour = 'blue'),
    path: 'colour',
    message: /unknown key/,
  },
  { name: 'misspelt acme key', mutate: (c) => (c.acme.dirctory = 'x'), path: 'acme.dirctory' },
  {
    name: 'unknown storage key',
    mutate: (c) => (c.storage.stateDirectory = '/var/lib/x'),
    path: 'storage.stateDirectory',
  },
  {
    name: 'unknown certificate key',
    mutate: (c) => (cert0(c).domain = 'example.test'),
    path: 'certificates[0].domain',
  },
  {
    name: 'unknown output key',
    mutate: (c) => (cert0(c).outputs[0].perms = '0600'),
    path: 'certificates[0].outputs[0].perms',
  },
  {
    name: 'unknown provider option',
    mutate: (c) => (c.dns.providers.bind.colour = 'red'),
    path: 'dns.providers.bind.colour',
    message: /unknown option for provider rfc2136/,
  },
  {
    name: 'unknown hooks key (deploi)',
    mutate: (c) => (c.hooks = { deploi: [['/bin/true']] }),
    path: 'hooks.deploi',
  },
  {
    name: 'unknown webhook alert key',
    mutate: (c) => (c.notify.webhooks[0].sekret = 'x'),
    path: 'notify.webhooks[0].sekret',
  },
  { name: 'unknown watch key', mutate: (c) => (c.watch = { file: ['/etc/ssl/a.pem'] }), path: 'watch.file' },
  {
    name: 'reserved key (__proto__)',
    mutate: (c) =>
      (c.storage = JSON.parse(`{"__proto__": {"x": 1}, "stateDir": ${JSON.stringify(c.storage.stateDir)}}`)),
    path: 'storage.__proto__',
    message: /reserved key/,
    json: true,
  },
  // Wrong types.
  { name: 'boolean as a word', mutate: (c) => (c.acme.termsAgreed = 'maybe'), path: 'acme.termsAgreed' },
  {
    name: 'section given as a scalar',
    mutate: (c) => (c.acme = 'letsencrypt'),
    path: 'acme',
    message: /mapping/,
  },
  {
    name: 'certificates as a mapping',
    mutate: (c) => (c.certificates = { www: cert0(c) }),
    path: 'certificates',
  },
  {
    name: 'domains as one string',
    mutate: (c) => (cert0(c).domains = 'example.test'),
    path: 'certificates[0].domains',
  },
  {
    name: 'archiveDepth as a word',
    mutate: (c) => (c.storage.archiveDepth = 'three'),
    path: 'storage.archiveDepth',
  },
  {
    name: 'concurrency zero',
    mutate: (c) => (c.defaults = { concurrency: 0 }),
    path: 'defaults.concurrency',
  },
  // Domain names.
  {
    name: 'double wildcard',
    mutate: (c) => (cert0(c).domains = ['*.*.example.test']),
    path: 'certificates[0].domains[0]',
  },
  {
    name: 'wildcard not in the first label',
    mutate: (c) => (cert0(c).domains = ['www.*.example.test']),
    path: 'certificates[0].domains[0]',
  },
  {
    name: 'partial wildcard label',
    mutate: (c) => (cert0(c).domains = ['example.test', 'w*.example.test']),
    path: 'certificates[0].domains[1]',
  },
  {
    name: 'wildcard over a top-level domain',
    mutate: (c) => (cert0(c).domains = ['*.test']),
    path: 'certificates[0].domains[0]',
  },
  {
    name: 'underscore in a host name',
    mutate: (c) => (cert0(c).domains = ['exa_mple.test']),
    path: 'certificates[0].domains[0]',
  },
  {
    name: 'empty label',
    mutate: (c) => (cert0(c).domains = ['a..example.test']),
    path: 'certificates[0].domains[0]',
  },
  {
    name: 'IP address as a DNS name',
    mutate: (c) => (cert0(c).domains = ['example.test', '192.0.2.1']),
    path: 'certificates[0].domains[1]',
    message: /IP address/,
  },
  {
    name: 'non-ASCII name (not A-label)',
    mutate: (c) => (cert0(c).domains = ['bücher.example.test']),
    path: 'certificates[0].domains[0]',
    message: /xn--/,
  },
  // Certificate names: they become directory names under the state directory.
  {
    name: 'path traversal in a certificate name',
    mutate: (c) => (cert0(c).name = '../../etc'),
    path: 'certificates[0].name',
  },
  {
    name: 'slash in a certificate name',
    mutate: (c) => (cert0(c).name = 'www/../../../tmp/x'),
    path: 'certificates[0].name',
  },
  {
    name: 'duplicate certificate names',
    mutate: (c) => c.certificates.push({ ...cert0(c), domains: ['other.example.test'], outputs: [] }),
    path: 'certificates[1].name',
    message: /duplicate name "www"/,
  },
  // Relative paths where absolute ones are needed.
  {
    name: 'relative stateDir',
    mutate: (c) => (c.storage.stateDir = RELATIVE),
    path: 'storage.stateDir',
    message: /absolute/,
  },
  {
    name: 'relative output key path',
    mutate: (c) => (cert0(c).outputs[0].key = `${RELATIVE}/key.pem`),
    path: 'certificates[0].outputs[0].key',
  },
  {
    name: 'relative caBundle',
    mutate: (c) => (c.acme.caBundle = `${RELATIVE}/ca.pem`),
    path: 'acme.caBundle',
  },
  {
    name: 'relative secret file',
    mutate: (c) => (c.dns.providers.bind.tsigSecret_file = 'tsig.secret'),
    path: 'dns.providers.bind.tsigSecret_file',
  },
  {
    name: 'relative hook cwd',
    mutate: (c) => (cert0(c).hooks.deploy = [{ command: ['/bin/true'], cwd: RELATIVE }]),
    path: 'certificates[0].hooks.deploy[0].cwd',
  },
  // DNS providers.
  {
    name: 'unknown provider type',
    mutate: (c) => (c.dns.providers.bind.type = 'route35'),
    path: 'dns.providers.bind.type',
    message: /unknown provider type "route35"/,
  },
  {
    name: 'unknown provider instance',
    mutate: (c) => (cert0(c).dns.provider = 'bind9'),
    path: 'certificates[0].dns.provider',
    message: /unknown provider instance "bind9"/,
  },
  {
    name: 'missing required provider option',
    mutate: (c) => delete c.dns.providers.bind.tsigKeyName,
    path: 'dns.providers.bind.tsigKeyName',
  },
  {
    name: 'provider port out of range',
    mutate: (c) => (c.dns.providers.bind.port = 70000),
    path: 'dns.providers.bind.port',
  },
  // Key types.
  {
    name: 'ed25519 key type',
    mutate: (c) => (cert0(c).keyType = 'ed25519'),
    path: 'certificates[0].keyType',
    message: /Let's Encrypt accepts only/,
  },
  {
    name: 'ec-p521 key type',
    mutate: (c) => (cert0(c).keyType = 'ec-p521'),
    path: 'certificates[0].keyType',
  },
  {
    name: 'rsa-1024 key type',
    mutate: (c) => (cert0(c).keyType = 'rsa-1024'),
    path: 'certificates[0].keyType',
    message: /too weak/,
  },
  {
    name: 'default key type dsa',
    mutate: (c) => (c.defaults = { keyType: 'dsa' }),
    path: 'defaults.keyType',
  },
  // Secret files readable by others.
  {
    name: 'TSIG secret file mode 0644',
    mutate: (c, d) => (c.dns.providers.bind.tsigSecret_file = d.secret('tsig-0644', TSIG_SECRET, 0o644)),
    path: 'dns.providers.bind.tsigSecret_file',
    message: /is readable by others \(mode 0644\); chmod 600/,
  },
  {
    name: 'SMTP password file mode 0640',
    mutate: (c, d) => {
      delete c.notify.email.password;
      c.notify.email.password_file = d.secret('smtp-0640', SMTP_PASSWORD, 0o640);
    },
    path: 'notify.email.password_file',
    message: /mode 0640/,
  },
  {
    name: 'EAB key file mode 0604',
    mutate: (c, d) =>
      (c.acme.eab = { keyId: 'kid-1', hmacKey_file: d.secret('eab-0604', 'RUFCLWJhZA', 0o604) }),
    path: 'acme.eab.hmacKey_file',
    message: /mode 0604/,
  },
  // The CA URL.
  {
    name: 'ftp:// CA directory',
    mutate: (c) => (c.acme.directory = `ftp://127.0.0.1:${listeners.acmePort}/dir`),
    path: 'acme.directory',
    message: /scheme "ftp" is not supported/,
  },
  {
    name: 'http:// CA directory on a non-loopback host',
    mutate: (c) => (c.acme.directory = 'http://acme.example.test/directory'),
    path: 'acme.directory',
    message: /http:\/\/ is allowed only for a local test CA/,
  },
  {
    name: 'CA directory with credentials in the URL',
    mutate: (c) => (c.acme.directory = `https://ops:${URL_PASSWORD}@127.0.0.1:${listeners.acmePort}/dir`),
    path: 'acme.directory',
    message: /must not contain credentials/,
  },
  {
    name: 'unknown CA preset',
    mutate: (c) => (c.acme.directory = 'letsencrypt-prod'),
    path: 'acme.directory',
  },
  // Durations.
  {
    name: 'duration in words',
    mutate: (c) => (c.acme.requestTimeout = '30 seconds'),
    path: 'acme.requestTimeout',
  },
  {
    name: 'negative propagation timeout',
    mutate: (c) => (c.dns.providers.bind.propagationTimeout = '-5s'),
    path: 'dns.providers.bind.propagationTimeout',
  },
  {
    name: 'check interval with an unknown unit',
    mutate: (c) => (c.daemon = { checkInterval: '1fortnight' }),
    path: 'daemon.checkInterval',
  },
  {
    name: 'verify timeout without a unit',
    mutate: (c) => (c.verify = { timeout: 'soon' }),
    path: 'verify.timeout',
  },
  // Hooks and deploy steps.
  {
    name: 'hook given as one shell string',
    mutate: (c) => (c.hooks = { post: ['systemctl reload nginx'] }),
    path: 'hooks.post[0]',
    message: /argv list/,
  },
  {
    name: 'empty hook argv',
    mutate: (c) => (cert0(c).hooks.deploy = [[]]),
    path: 'certificates[0].hooks.deploy[0]',
  },
  {
    name: 'hook timeout not a duration',
    mutate: (c) => (cert0(c).hooks.deploy = [{ command: ['/bin/true'], timeout: 'a while' }]),
    path: 'certificates[0].hooks.deploy[0].timeout',
  },
  {
    name: 'hook env overriding a CERTPILOT_ variable',
    mutate: (c) =>
      (cert0(c).hooks.deploy = [{ command: ['/bin/true'], env: { CERTPILOT_KEY_PATH: '/tmp/stolen.pem' } }]),
    path: 'certificates[0].hooks.deploy[0].env.CERTPILOT_KEY_PATH',
  },
  {
    name: 'shell hook with an argv list',
    mutate: (c) => (cert0(c).hooks.deploy = [{ shell: true, command: ['reload', 'nginx'] }]),
    path: 'certificates[0].hooks.deploy[0].command',
  },
  {
    name: 'unknown deploy step type',
    mutate: (c) => (cert0(c).deploy = [{ type: 'apache' }]),
    path: 'certificates[0].deploy[0].type',
  },
  {
    name: 'systemd unit that reads as an option',
    mutate: (c) => (cert0(c).deploy = [{ type: 'systemd', unit: '--now' }]),
    path: 'certificates[0].deploy[0].unit',
  },
  {
    name: 'rollback without endpoints',
    mutate: (c) => (cert0(c).rollback = true),
    path: 'certificates[0].rollback',
  },
  // Alerts.
  {
    name: 'webhook alert with an ftp:// URL',
    mutate: (c) => (c.notify.webhooks[0].url = `ftp://127.0.0.1:${listeners.alertPort}/hook`),
    path: 'notify.webhooks[0].url',
  },
  {
    name: 'webhook alert URL that is not a URL',
    mutate: (c) => (c.notify.webhooks[0].url = 'hooks.example.test/alert'),
    path: 'notify.webhooks[0].url',
  },
  {
    name: 'webhook alert header name with a space',
    mutate: (c) => (c.notify.webhooks[0].headers = { 'X Token': 'abc' }),
    path: 'notify.webhooks[0].headers["X Token"]',
  },
  {
    name: 'alert kind unknown',
    mutate: (c) => (c.notify.on = ['renewal-failed', 'sometimes']),
    path: 'notify.on[1]',
  },
  {
    name: 'alert mail recipient not an address',
    mutate: (c) => (c.notify.email.to = ['ops-at-example.test']),
    path: 'notify.email.to[0]',
  },
  {
    name: 'SMTP tls mode unknown',
    mutate: (c) => (c.notify.email.tls = 'ssl'),
    path: 'notify.email.tls',
  },
  // Watch entries.
  {
    name: 'watched file with a relative path',
    mutate: (c) => (c.watch = { files: [`${RELATIVE}/cert.pem`] }),
    path: 'watch.files[0]',
  },
  {
    name: 'watched endpoint port out of range',
    mutate: (c) => (c.watch = { endpoints: ['mail.example.test:99999'] }),
    path: 'watch.endpoints[0]',
  },
  {
    name: 'watched endpoint STARTTLS protocol unknown',
    mutate: (c) => (c.watch = { endpoints: [{ host: 'mail.example.test', starttls: 'imap' }] }),
    path: 'watch.endpoints[0].starttls',
  },
  {
    name: 'watched file warning after critical',
    mutate: (c) => (c.watch = { files: [{ path: '/etc/ssl/a.pem', warningDays: 3, criticalDays: 10 }] }),
    path: 'watch.files[0].warningDays',
  },
  // Outputs.
  {
    name: 'setuid output mode',
    mutate: (c) => (cert0(c).outputs[0].mode = '4755'),
    path: 'certificates[0].outputs[0].mode',
  },
  // The file itself.
  {
    name: 'duplicate YAML key',
    raw: (d) =>
      `acme:\n  email: a@example.test\n  email: b@example.test\nstorage:\n  stateDir: ${d.stateDir}\n`,
    path: '(yaml)',
    message: /^line 3, column 3: /,
  },
];

// ---- running a case ----------------------------------------------------------------------------

/** Every file and directory below `dir` with its type, size and mtime. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      out.push(`${path.relative(dir, p)} ${e.isDirectory() ? 'dir' : 'file'} ${st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function writeCase(c: Case, d: CaseDir): string {
  if (c.raw) {
    const file = path.join(d.dir, 'certpilot.yaml');
    fs.writeFileSync(file, c.raw(d));
    return file;
  }
  const config = baseConfig(d);
  c.mutate!(config, d);
  const file = path.join(d.dir, c.json ? 'certpilot.json' : 'certpilot.yaml');
  fs.writeFileSync(file, c.json ? JSON.stringify(config, null, 2) : stringify(config));
  return file;
}

/** exit 2, nothing on stdout, and on stderr exactly the header and one `  path: message` line. */
function expectOneProblem(res: CliResult, file: string, c: Case): void {
  expect({ code: res.code, stdout: res.stdout }).toEqual({ code: 2, stdout: '' });
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  expect(lines[0]).toBe(`config: ${file} is invalid`);
  expect(lines).toHaveLength(2);
  const prefix = `  ${c.path}: `;
  expect(lines[1]!.startsWith(prefix)).toBe(true);
  if (c.message) expect(lines[1]!.slice(prefix.length)).toMatch(c.message);
  for (const secret of [TSIG_SECRET, WEBHOOK_SECRET, SMTP_PASSWORD, URL_PASSWORD])
    expect(res.stderr).not.toContain(secret);
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-bad-input-'));
  listeners = await startListeners();
});

afterAll(async () => {
  await listeners?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('the catalog holds at least 40 distinct invalid configurations', () => {
  expect(cases.length).toBeGreaterThanOrEqual(40);
  expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test(`exit 2 naming ${c.path}; nothing written, nothing contacted (renew, run, config check)`, async () => {
    const d = newCaseDir();
    const file = writeCase(c, d);
    const rootBefore = tree(root);
    const cwdBefore = fs.readdirSync(process.cwd()).sort();
    const contacted = listeners.counts();

    const renew = await runCli(['renew', '--config', file, '--log-level', 'debug']);
    expectOneProblem(renew, file, c);
    const renewJson = await runCli(['renew', '--force', '--json', '--config', file, '--log-format', 'json']);
    expectOneProblem(renewJson, file, c);
    const check = await runCli(['config', 'check', '--config', file]);
    expectOneProblem(check, file, c);
    const checkJson = await runCli(['config', 'check', '--json', '--config', file]);
    expectOneProblem(checkJson, file, c);
    // The daemon refuses to start. (The signal is already aborted so that a daemon that did
    // start would stop at once and fail the exit-code check instead of hanging the test.)
    const daemon = await runCli(['run', '--config', file], AbortSignal.abort());
    expectOneProblem(daemon, file, c);

    expect(fs.existsSync(d.stateDir)).toBe(false);
    expect(fs.existsSync(d.outDir)).toBe(false);
    expect(tree(root)).toEqual(rootBefore);
    expect(fs.readdirSync(process.cwd()).sort()).toEqual(cwdBefore);
    expect(fs.existsSync(path.resolve(RELATIVE))).toBe(false);
    expect(listeners.counts()).toEqual(contacted);
  });
});

test('many problems in one file: exit 2 listing every one with its path; nothing written, nothing contacted', async () => {
  const d = newCaseDir();
  const config = baseConfig(d);
  config.colour = 'blue';
  config.acme.directory = `ftp://127.0.0.1:${listeners.acmePort}/dir`;
  config.storage.stateDir = RELATIVE;
  config.dns.providers.bind.tsigSecret_file = d.secret('tsig-0644', TSIG_SECRET, 0o644);
  config.hooks = { post: ['systemctl reload nginx'] };
  config.notify.webhooks[0].url = 'hooks.example.test/alert';
  config.watch = { files: ['relative/cert.pem'] };
  cert0(config).name = '../x';
  cert0(config).keyType = 'ed25519';
  cert0(config).domains = ['*.*.example.test', 'example.test'];
  const expected = [
    'colour',
    'acme.directory',
    'storage.stateDir',
    'dns.providers.bind.tsigSecret_file',
    'hooks.post[0]',
    'notify.webhooks[0].url',
    'watch.files[0]',
    'certificates[0].name',
    'certificates[0].keyType',
    'certificates[0].domains[0]',
  ];
  const file = path.join(d.dir, 'certpilot.yaml');
  fs.writeFileSync(file, stringify(config));
  const rootBefore = tree(root);
  const contacted = listeners.counts();
  for (const args of [['renew'], ['config', 'check']]) {
    const res = await runCli([...args, '--config', file]);
    expect({ code: res.code, stdout: res.stdout }).toEqual({ code: 2, stdout: '' });
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    expect(lines[0]).toBe(`config: ${file} is invalid`);
    expect(
      lines
        .slice(1)
        .map((l) => /^ {2}(\S+): /.exec(l)?.[1])
        .sort(),
    ).toEqual([...expected].sort());
    expect(res.stderr).not.toContain(TSIG_SECRET);
  }
  expect(tree(root)).toEqual(rootBefore);
  expect(fs.existsSync(path.resolve(RELATIVE))).toBe(false);
  expect(listeners.counts()).toEqual(contacted);
});

test('the base configuration is valid, and renew with it does reach the local servers (the listeners work)', async () => {
  const d = newCaseDir();
  const file = path.join(d.dir, 'certpilot.yaml');
  fs.writeFileSync(file, stringify(baseConfig(d)));
  const check = await runCli(['config', 'check', '--config', file]);
  expect(check.stderr).toBe('');
  expect(check.code).toBe(0);
  expect(check.stdout).toContain(`# ${file}: valid`);

  const before = listeners.counts();
  const renew = await runCli(['renew', '--config', file, '--json']);
  // The DNS preflight asks the configured resolver (the local DNS socket, which never answers)
  // before anything goes to the CA: the renewal fails after trying, and the failure is alerted
  // (webhook and SMTP both reach the alert port).
  expect(renew.code).toBe(1);
  const after = listeners.counts();
  expect(after.dnsUdp + after.dnsTcp).toBeGreaterThan(before.dnsUdp + before.dnsTcp);
  expect(after.alert).toBeGreaterThan(before.alert);
  expect(fs.existsSync(d.stateDir)).toBe(true);

  // The CA listener counts what reaches it.
  await new Promise<void>((resolve) =>
    net
      .connect(listeners.acmePort, '127.0.0.1')
      .on('close', () => resolve())
      .on('error', () => resolve()),
  );
  await eventually(() => listeners.counts().acme > after.acme);
});

/** Polls a condition (a wait for a state, not an assertion by itself). */
async function eventually(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
