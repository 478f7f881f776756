import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { CertStore } from '../../src/store/cert-store';
import { startTestbed, runCli, type Testbed } from '../helpers/testbed';

/**
 * `certpilot init`: flags alone (automation) write a config that `config check` accepts and that
 * issues from Pebble through BIND; on a terminal (a real pseudo-terminal from util-linux
 * `script`) it asks for what the flags did not give; a wrong answer or a missing flag writes
 * nothing.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
let tb: Testbed;
let secretFile: string;

beforeAll(async () => {
  tb = await startTestbed();
  secretFile = path.join(tb.dir, 'tsig.secret'); // written 0600 by the testbed
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

/** The flags that point a config at this testbed (CA, its TLS root, BIND on a high port). */
function testbedFlags(stateDir: string): string[] {
  return [
    '--ca',
    tb.pebble.directoryUrl,
    '--ca-bundle',
    tb.pebble.tlsCaPath,
    '--state-dir',
    stateDir,
    '--provider-option',
    `port=${tb.bind.port}`,
    '--set',
    `dns.resolvers=[127.0.0.1:${tb.bind.port}]`,
    '--set',
    `dns.nameserverPort=${tb.bind.port}`,
    '--set',
    'dns.providers.rfc2136.propagationInterval=100ms',
  ];
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

test('non-interactive: flags give a config that config check accepts and that issues from Pebble', async () => {
  const config = path.join(tb.dir, 'init-flags', 'certpilot.yaml');
  const stateDir = path.join(tb.dir, 'state-init');
  const res = await runCli([
    'init',
    '--config',
    config,
    '--yes',
    ...testbedFlags(stateDir),
    '--email',
    'ops@example.test',
    '--agree-tos',
    '--provider',
    'rfc2136',
    '--provider-option',
    'server=127.0.0.1',
    '--provider-option',
    `tsigKeyName=${tb.bind.tsig.name}`,
    '--provider-option',
    `tsigAlgorithm=${tb.bind.tsig.algorithm}`,
    '--provider-option',
    `tsigSecret_file=${secretFile}`,
    '--name',
    'first',
    '--domain',
    'first.example.test',
    '--domain',
    'www.first.example.test',
  ]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  expect(res.stdout).toMatch(/^wrote .*certpilot\.yaml \(config check: valid\)/);
  expect((await stat(config)).mode & 0o777).toBe(0o640);
  const doc = parse(await readFile(config, 'utf8')) as { dns: { providers: Record<string, unknown> } };
  // The secret is referenced by its file, never copied into the config.
  expect(doc.dns.providers.rfc2136).toMatchObject({ tsigSecret_file: secretFile });
  expect(await readFile(config, 'utf8')).not.toContain(tb.bind.tsig.secret);

  expect((await runCli(['config', 'check', '--config', config])).code).toBe(0);
  const renew = await runCli(['renew', '--config', config]);
  expect(renew.code).toBe(0);
  const stored = await new CertStore({ stateDir, archiveDepth: 5 }).read('first');
  expect(new X509Certificate(stored!.cert).subjectAltName).toBe(
    'DNS:first.example.test, DNS:www.first.example.test',
  );
}, 60_000);

test('without a terminal, missing answers are named as flags and nothing is written', async () => {
  const config = path.join(tb.dir, 'init-missing.yaml');
  const res = await runCli(['init', '--config', config, '--yes', '--provider', 'rfc2136']);
  expect(res.code).toBe(2);
  expect(res.stderr.trim()).toBe(
    'certpilot init: without a terminal every answer is a flag; missing: --provider-option server=VALUE, ' +
      '--provider-option tsigKeyName=VALUE, --provider-option tsigSecret_file=PATH, --name, --domain',
  );
  expect(await exists(config)).toBe(false);
});

test('a wrong answer gives the loader message with its path; nothing is written, an existing file is kept', async () => {
  const config = path.join(tb.dir, 'init-bad.yaml');
  const args = [
    'init',
    '--config',
    config,
    '--yes',
    ...testbedFlags(path.join(tb.dir, 'state-bad')),
    '--provider-option',
    'server=127.0.0.1',
    '--provider-option',
    'tsigKeyName=k',
    '--provider-option',
    `tsigSecret_file=${secretFile}`,
    '--name',
    'Bad Name',
    '--domain',
    'bad.example.test',
  ];
  const bad = await runCli(args);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/certificates\[0\]\.name: /);
  expect(bad.stderr).toContain(config);
  expect(await exists(config)).toBe(false);

  await writeFile(config, '# mine\n');
  const good = args.map((a) => (a === 'Bad Name' ? 'good' : a));
  const kept = await runCli(good);
  expect(kept.code).toBe(2);
  expect(kept.stderr).toMatch(/exists; keep it, or pass --force/);
  expect(await readFile(config, 'utf8')).toBe('# mine\n');
  expect((await runCli([...good, '--force'])).code).toBe(0);
  expect(await readFile(config, 'utf8')).toMatch(/name: good/);
});

test('interactive: on a pseudo-terminal it asks for what the flags did not give', async () => {
  const config = path.join(tb.dir, 'init-tty.yaml');
  // CA, email, terms, provider from the prompts; the testbed's addresses from flags.
  const answers = [
    tb.pebble.directoryUrl, // CA
    'tty@example.test', // email
    'yes', // terms
    '', // provider: default rfc2136
    '127.0.0.1', // server
    tb.bind.tsig.name, // tsigKeyName
    secretFile, // tsigSecret file
    'tty', // certificate name
    'tty.example.test', // domains
    '', // output dir: none
    '', // deploy: none
    '', // endpoint: none
  ];
  const argv = [
    process.execPath,
    BIN,
    'init',
    '--config',
    config,
    ...testbedFlags(path.join(tb.dir, 'state-tty')),
  ];
  argv.splice(argv.indexOf('--ca'), 2); // the CA comes from the prompt
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qec', quoted, '/dev/null'], {
    env: { ...process.env, TERM: 'dumb' },
    signal: AbortSignal.timeout(50_000), // a hung prompt fails the test instead of leaving a process
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  // Typed ahead, all at once: the terminal buffers the lines and each question takes the next.
  child.stdin.end(answers.map((a) => `${a}\n`).join(''));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(out).toMatch(/ACME CA \(letsencrypt, .*\) \[letsencrypt\]: /);
  expect(out).toMatch(/rfc2136 tsigSecret: path of the file holding it \(mode 0600\): /);
  expect(out).toMatch(/wrote .*init-tty\.yaml \(config check: valid\)/);
  expect(code).toBe(0);
  const doc = parse(await readFile(config, 'utf8')) as Record<string, Record<string, unknown>>;
  expect(doc.acme).toMatchObject({
    directory: tb.pebble.directoryUrl,
    email: 'tty@example.test',
    termsAgreed: true,
  });
  expect(doc.certificates).toEqual([
    { name: 'tty', domains: ['tty.example.test'], dns: { provider: 'rfc2136' } },
  ]);
  expect((await runCli(['config', 'check', '--config', config])).code).toBe(0);
}, 60_000);
