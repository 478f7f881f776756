import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { KeyType, FileOutput } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { CertStore, type CertificateFiles } from '../../src/store/cert-store';
import { renderOutput, verifyOutput } from '../../src/store/formats';
import { readPkcs12 } from '../../src/x509/pkcs12';
import { makeCa, makeCertificate } from '../helpers/certs';
import { freePort } from '../helpers/ports';

/**
 * The pkcs12, pem-bundle and der outputs, installed through the certificate store and then read
 * by the programs that consume them: `openssl pkcs12` and Java's `keytool` for PKCS#12,
 * `haproxy -c` for the bundle, `openssl x509`/`openssl pkey` for DER.
 */

const run = promisify(execFile);
const DAY = 86_400_000;
const PASSWORD = 'correct horse battery staple';

let dir: string;
let passwordFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-formats-'));
  passwordFile = path.join(dir, 'p12.pass');
  fs.writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function issue(keyType: KeyType): CertificateFiles {
  const root = makeCa({ keyType, commonName: 'formats test root' });
  const leaf = makeCertificate({
    names: ['www.example.test'],
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 89 * DAY),
    issuer: root,
    keyType,
  });
  return {
    cert: leaf.certPem,
    chain: root.certPem,
    fullchain: leaf.certPem + root.certPem,
    key: leaf.keyPem,
  };
}

const fingerprint = (pem: string): string => new crypto.X509Certificate(pem).fingerprint256;
const publicDer = (key: crypto.KeyObject | string): Buffer =>
  crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });

function outputs(sub: string): FileOutput[] {
  const at = (f: string): string => path.join(dir, sub, f);
  return [
    {
      path: at('site.p12'),
      format: 'pkcs12',
      passwordFile,
      friendlyName: 'www-example',
      certMode: 0o600,
      keyMode: 0o600,
    },
    { path: at('haproxy.pem'), format: 'pem-bundle', certMode: 0o600, keyMode: 0o600 },
    { path: at('cert.der'), format: 'der', content: 'cert', certMode: 0o644, keyMode: 0o600 },
    { path: at('key.der'), format: 'der', content: 'key', certMode: 0o600, keyMode: 0o600 },
  ];
}

async function install(sub: string, files: CertificateFiles, outs = outputs(sub)): Promise<void> {
  const store = new CertStore({ stateDir: path.join(dir, sub, 'state'), archiveDepth: 1 });
  await store.install('www', files, outs);
}

const mode = (f: string): number => fs.statSync(f).mode & 0o777;

describe.each<KeyType>(['ec-p256', 'rsa-2048'])('outputs in other formats, %s key', (keyType) => {
  const sub = keyType;
  const at = (f: string): string => path.join(dir, sub, f);
  let files: CertificateFiles;

  beforeAll(async () => {
    files = issue(keyType);
    await install(sub, files);
  });

  test('openssl reads the PKCS#12 with the password file: friendly name, both certificates, the key', async () => {
    const info = await run('openssl', [
      'pkcs12',
      '-info',
      '-in',
      at('site.p12'),
      '-passin',
      `file:${passwordFile}`,
      '-nokeys',
    ]);
    expect(`${info.stdout}${info.stderr}`).toMatch(/friendlyName: www-example/);
    expect(`${info.stderr}`).toMatch(/MAC: sha256/);
    const certs = info.stdout.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(certs.map(fingerprint)).toEqual([fingerprint(files.cert), fingerprint(files.chain)]);
    const key = await run('openssl', [
      'pkcs12',
      '-in',
      at('site.p12'),
      '-passin',
      `file:${passwordFile}`,
      '-nocerts',
      '-nodes',
    ]);
    expect(publicDer(key.stdout.slice(key.stdout.indexOf('-----BEGIN')))).toEqual(publicDer(files.key));
  });

  test('keytool lists one private key entry under the friendly name with a chain of two', async () => {
    const { stdout } = await run('keytool', [
      '-list',
      '-v',
      '-storetype',
      'PKCS12',
      '-keystore',
      at('site.p12'),
      '-storepass:file',
      passwordFile,
    ]);
    expect(stdout).toMatch(/Your keystore contains 1 entry/);
    expect(stdout).toMatch(/Alias name: www-example/);
    expect(stdout).toMatch(/Entry type: PrivateKeyEntry/);
    expect(stdout).toMatch(/Certificate chain length: 2/);
  }, 30_000);

  test('keytool refuses a wrong password (the MAC is checked)', async () => {
    const wrong = path.join(dir, sub, 'wrong.pass');
    fs.writeFileSync(wrong, 'not the password\n', { mode: 0o600 });
    await expect(
      run('keytool', [
        '-list',
        '-storetype',
        'PKCS12',
        '-keystore',
        at('site.p12'),
        '-storepass:file',
        wrong,
      ]),
    ).rejects.toMatchObject({ stdout: expect.stringMatching(/Integrity check failed/) });
  }, 30_000);

  test('haproxy -c loads the PEM bundle from a bind ssl crt line', async () => {
    const cfg = await haproxyConfig(at('haproxy.pem'));
    const res = await run('haproxy', ['-c', '-f', cfg]);
    expect(`${res.stdout}${res.stderr}`).toMatch(/Configuration file is valid/);
    const bundle = fs.readFileSync(at('haproxy.pem'), 'utf8');
    expect(bundle.startsWith(files.fullchain)).toBe(true);
  });

  test('openssl parses the DER certificate and the DER PKCS#8 key', async () => {
    const cert = await run('openssl', [
      'x509',
      '-inform',
      'DER',
      '-in',
      at('cert.der'),
      '-noout',
      '-fingerprint',
      '-sha256',
    ]);
    expect(cert.stdout.trim()).toBe(`sha256 Fingerprint=${fingerprint(files.cert)}`);
    const key = await run('openssl', ['pkey', '-inform', 'DER', '-in', at('key.der'), '-pubout']);
    expect(publicDer(key.stdout)).toEqual(publicDer(files.key));
  });

  test('files holding the key are 0600, the DER certificate 0644', () => {
    expect([at('site.p12'), at('haproxy.pem'), at('cert.der'), at('key.der')].map(mode)).toEqual([
      0o600, 0o600, 0o644, 0o600,
    ]);
  });
});

/** A minimal HAProxy configuration whose only job is to load `crt`. */
async function haproxyConfig(crt: string): Promise<string> {
  // `haproxy -c` binds nothing, but refuses port 0.
  const port = await freePort();
  const cfg = path.join(path.dirname(crt), `haproxy-${path.basename(crt)}.cfg`);
  fs.writeFileSync(
    cfg,
    [
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 1s',
      '  timeout server 1s',
      'frontend tls',
      `  bind 127.0.0.1:${port} ssl crt ${crt}`,
      '',
    ].join('\n'),
  );
  return cfg;
}

test('haproxy -c refuses a bundle without the key, so the check above can fail', async () => {
  const files = issue('ec-p256');
  const crt = path.join(dir, 'no-key.pem');
  fs.writeFileSync(crt, files.fullchain);
  await expect(run('haproxy', ['-c', '-f', await haproxyConfig(crt)])).rejects.toMatchObject({
    stderr: expect.stringMatching(/private key/i),
  });
});

describe('verifyOutput on damaged files', () => {
  const files = issue('ec-p256');
  const other = issue('ec-p256');
  const params = { password: PASSWORD, friendlyName: 'www' };

  async function failure(check: Promise<void>): Promise<CertpilotError> {
    const err = await check.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err === undefined) throw new Error('verifyOutput accepted a damaged file');
    expect(err).toBeInstanceOf(CertpilotError);
    return err as CertpilotError;
  }

  test('accepts what renderOutput made, for every kind', async () => {
    for (const kind of [
      'cert',
      'chain',
      'fullchain',
      'key',
      'pem-bundle',
      'der-cert',
      'der-key',
      'pkcs12',
    ] as const)
      await expect(
        verifyOutput(kind, await renderOutput(kind, files, params), files, params),
      ).resolves.toBeUndefined();
  });

  test('a PKCS#12 with a flipped byte, truncated, or opened with another password', async () => {
    const p12 = await renderOutput('pkcs12', files, params);
    const flipped = Buffer.from(p12);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    for (const bad of [flipped, p12.subarray(0, p12.length - 40)])
      expect((await failure(verifyOutput('pkcs12', bad, files, params))).code).toBe('STORE_IO');
    const wrong = await failure(
      verifyOutput('pkcs12', p12, files, { ...params, password: 'other password' }),
    );
    expect(wrong.message).toMatch(/MAC could not be verified/);
    expect(wrong.message).not.toContain(PASSWORD);
  });

  test('a PKCS#12 of another certificate, or under another friendly name', async () => {
    const p12 = await renderOutput('pkcs12', other, params);
    expect((await failure(verifyOutput('pkcs12', p12, files, params))).message).toMatch(/paired with/);
    const renamed = await renderOutput('pkcs12', files, { ...params, friendlyName: 'else' });
    expect((await failure(verifyOutput('pkcs12', renamed, files, params))).message).toMatch(/friendly name/);
  });

  test('a PEM bundle with another key, or without the chain', async () => {
    const wrongKey = Buffer.from(files.fullchain + other.key);
    expect((await failure(verifyOutput('pem-bundle', wrongKey, files))).message).toMatch(
      /not the installed key/,
    );
    const noChain = Buffer.from(files.cert + files.key);
    expect((await failure(verifyOutput('pem-bundle', noChain, files))).message).toMatch(/1 certificate/);
  });

  test('DER that is truncated or of another certificate or key', async () => {
    const der = await renderOutput('der-cert', files);
    expect((await failure(verifyOutput('der-cert', der.subarray(0, 100), files))).message).toMatch(/DER/);
    const otherCert = await renderOutput('der-cert', other);
    expect((await failure(verifyOutput('der-cert', otherCert, files))).message).toMatch(
      /not the 1 installed/,
    );
    const otherKey = await renderOutput('der-key', other);
    expect((await failure(verifyOutput('der-key', otherKey, files))).message).toMatch(
      /not the installed key/,
    );
  });

  test('an empty PEM file', async () => {
    expect((await failure(verifyOutput('fullchain', Buffer.alloc(0), files))).message).toMatch(
      /0 certificate/,
    );
  });
});

describe('installing outputs', () => {
  test('a missing password file fails the install before anything is replaced', async () => {
    const files = issue('ec-p256');
    const sub = 'no-password';
    const outs = outputs(sub);
    await install(sub, files, outs);
    const before = fs.readFileSync(path.join(dir, sub, 'site.p12'));
    const gone = outs.map((o) =>
      o.format === 'pkcs12' ? { ...o, passwordFile: path.join(dir, 'missing') } : o,
    );
    const err = await install(sub, issue('ec-p256'), gone).then(
      () => undefined,
      (e: unknown) => e as CertpilotError,
    );
    expect(err?.code).toBe('STORE_IO');
    expect(err?.message).toMatch(/password_file: cannot read .*missing \(ENOENT\)/);
    expect(fs.readFileSync(path.join(dir, sub, 'site.p12'))).toEqual(before);
    expect(fs.readdirSync(path.join(dir, sub)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // The previous version is still the one every output holds.
    await verifyOutput('pkcs12', before, files, { password: PASSWORD, friendlyName: 'www-example' });
  });

  test('the friendly name defaults to the certificate name', async () => {
    const files = issue('ec-p256');
    const outs = outputs('default-name').map((o) => {
      if (o.format !== 'pkcs12') return o;
      const { friendlyName: _drop, ...rest } = o;
      return rest;
    });
    await install('default-name', files, outs);
    const p12 = readPkcs12(fs.readFileSync(path.join(dir, 'default-name', 'site.p12')), PASSWORD);
    expect(p12.friendlyName).toBe('www');
  });
});
