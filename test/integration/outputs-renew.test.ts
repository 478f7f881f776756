import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/ports';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * End to end: `certpilot renew` against Pebble + BIND with a pkcs12, a pem-bundle and two der
 * outputs per certificate (EC and RSA), each then read by the program that consumes it.
 */

const run = promisify(execFile);
const PASSWORD = 'renew-p12-password';
let tb: Testbed;
let configPath: string;
let passwordFile: string;

const out = (name: string, file: string): string => path.join(tb.dir, 'out', name, file);

function certificate(name: string, domain: string, keyType: string): Record<string, unknown> {
  return {
    name,
    domains: [domain],
    keyType,
    dns: { provider: 'bind' },
    outputs: [
      { fullchain: out(name, 'fullchain.pem') },
      { path: out(name, 'store.p12'), format: 'pkcs12', password_file: passwordFile },
      { path: out(name, 'haproxy.pem'), format: 'pem-bundle' },
      { path: out(name, 'cert.der'), format: 'der' },
      { path: out(name, 'key.der'), format: 'der', content: 'key' },
    ],
  };
}

beforeAll(async () => {
  tb = await startTestbed();
  passwordFile = path.join(tb.dir, 'p12.pass');
  await writeFile(passwordFile, `${PASSWORD}\n`);
  await chmod(passwordFile, 0o600);
  configPath = await tb.writeConfig([
    certificate('ec', 'ec.example.test', 'ec-p256'),
    certificate('rsa', 'rsa.example.test', 'rsa-2048'),
  ]);
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

async function fingerprintOf(name: string): Promise<string> {
  return new X509Certificate(await readFile(path.join(tb.dir, 'state', 'certs', name, 'cert.pem')))
    .fingerprint256;
}

test('renew issues both certificates and writes every output', async () => {
  const res = await runCli(['renew', '--config', configPath, '--json']);
  expect(res.stderr).not.toMatch(/unexpected error/);
  expect(res.code).toBe(0);
  const report = JSON.parse(res.stdout) as { certificates: { name: string; status: string }[] };
  expect(report.certificates.map((c) => [c.name, c.status])).toEqual([
    ['ec', 'renewed'],
    ['rsa', 'renewed'],
  ]);
}, 120_000);

describe.each(['ec', 'rsa'])('renewed %s certificate in every format', (name) => {
  test('keytool lists the PKCS#12 under the certificate name with Pebble chain', async () => {
    const { stdout } = await run('keytool', [
      '-list',
      '-v',
      '-storetype',
      'PKCS12',
      '-keystore',
      out(name, 'store.p12'),
      '-storepass:file',
      passwordFile,
    ]);
    expect(stdout).toMatch(new RegExp(`Alias name: ${name}\\n`));
    expect(stdout).toMatch(/Entry type: PrivateKeyEntry/);
    expect(stdout).toMatch(/Certificate chain length: 2/);
    expect(stdout).toContain(`SHA256: ${await fingerprintOf(name)}`);
  }, 30_000);

  test('openssl opens the PKCS#12 with the password file', async () => {
    const { stdout } = await run('openssl', [
      'pkcs12',
      '-in',
      out(name, 'store.p12'),
      '-passin',
      `file:${passwordFile}`,
      '-nokeys',
      '-clcerts',
    ]);
    expect(new X509Certificate(stdout.slice(stdout.indexOf('-----BEGIN'))).fingerprint256).toBe(
      await fingerprintOf(name),
    );
  });

  test('haproxy -c loads the bundle', async () => {
    const cfg = path.join(tb.dir, `haproxy-${name}.cfg`);
    const port = await freePort();
    await writeFile(
      cfg,
      `defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n` +
        `frontend tls\n  bind 127.0.0.1:${port} ssl crt ${out(name, 'haproxy.pem')}\n`,
    );
    const res = await run('haproxy', ['-c', '-f', cfg]);
    expect(`${res.stdout}${res.stderr}`).toMatch(/Configuration file is valid/);
  });

  test('openssl reads the DER certificate and key', async () => {
    const cert = await run('openssl', [
      'x509',
      '-inform',
      'DER',
      '-in',
      out(name, 'cert.der'),
      '-noout',
      '-fingerprint',
      '-sha256',
    ]);
    expect(cert.stdout.trim()).toBe(`sha256 Fingerprint=${await fingerprintOf(name)}`);
    const key = await run('openssl', ['pkey', '-inform', 'DER', '-in', out(name, 'key.der'), '-noout']);
    expect(key.stderr).toBe('');
  });
});
