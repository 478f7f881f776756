import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KeyType } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import {
  generatePrivateKey,
  keyMatchesCertificate,
  keyTypeOfKey,
  lifetimeMs,
  parseCertificate,
  splitPemChain,
} from '../../src/x509';
import { makeCa, makeCertificate } from '../helpers/certs';

const NB = new Date('2026-09-01T00:00:00Z');
const NA = new Date('2026-11-29T23:59:59Z');

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CertpilotError);
  expect((caught as CertpilotError).code).toBe(code);
  if (message) expect((caught as Error).message).toMatch(message);
}

describe('parseCertificate', () => {
  const keyTypes: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048'];
  it.each(keyTypes)('reads a self-signed %s certificate', (keyType) => {
    const { certPem } = makeCertificate({
      names: ['example.test', 'www.example.test'],
      notBefore: NB,
      notAfter: NA,
      keyType,
    });
    const info = parseCertificate(certPem);
    const x = new crypto.X509Certificate(certPem);
    expect(info).toMatchObject({
      pem: certPem,
      names: ['example.test', 'www.example.test'],
      subject: 'CN=example.test',
      issuer: 'CN=example.test',
      keyType,
      selfSigned: true,
      serial: x.serialNumber,
      fingerprint256: x.fingerprint256.replace(/:/g, ''),
    });
    expect(info.notBefore.toISOString()).toBe('2026-09-01T00:00:00.000Z');
    expect(info.notAfter.toISOString()).toBe('2026-11-29T23:59:59.000Z');
    expect(info.fingerprint256).toMatch(/^[0-9A-F]{64}$/);
  });

  it('reads a CA-issued leaf: not self-signed, AKI is the CA key id', () => {
    const ca = makeCa({ keyType: 'rsa-2048' });
    const leaf = makeCertificate({ names: ['a.example.test'], notBefore: NB, notAfter: NA, issuer: ca });
    const info = parseCertificate(leaf.certPem);
    const caInfo = parseCertificate(ca.certPem);
    expect(info.selfSigned).toBe(false);
    expect(info.issuer).toBe('CN=certpilot test CA');
    expect(info.keyType).toBe('ec-p256');
    expect(caInfo.selfSigned).toBe(true);
    expect(caInfo.names).toEqual([]);
    // A self-signed CA's AKI is its own key id, which is what the leaf's AKI points at.
    expect(info.authorityKeyId).toMatch(/^[0-9A-F]{40}$/);
    expect(info.authorityKeyId).toBe(caInfo.authorityKeyId);
  });

  it('lower-cases SANs and keeps certificate order, wildcards included', () => {
    const names = ['WWW.Example.TEST', '*.example.test', 'example.test', 'b.example.test', 'a.example.test'];
    const info = parseCertificate(makeCertificate({ names, notBefore: NB, notAfter: NA }).certPem);
    expect(info.names).toEqual([
      'www.example.test',
      '*.example.test',
      'example.test',
      'b.example.test',
      'a.example.test',
    ]);
  });

  it('reads a certificate made by openssl: DNS SANs only, IP SANs ignored', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-x509-'));
    try {
      const keyFile = path.join(dir, 'key.pem');
      const certFile = path.join(dir, 'cert.pem');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-384',
          '-nodes',
          '-keyout',
          keyFile,
          '-out',
          certFile,
          '-days',
          '30',
          '-subj',
          '/CN=openssl.test/O=Example Org',
          '-addext',
          'subjectAltName=DNS:openssl.test,IP:127.0.0.1,DNS:Alt.OpenSSL.test,email:a@b.test',
        ],
        { stdio: 'pipe' },
      );
      const certPem = fs.readFileSync(certFile, 'utf8');
      const keyPem = fs.readFileSync(keyFile, 'utf8');
      const info = parseCertificate(certPem);
      expect(info.names).toEqual(['openssl.test', 'alt.openssl.test']);
      expect(info.subject).toBe('CN=openssl.test, O=Example Org');
      expect(info.keyType).toBe('ec-p384');
      expect(info.selfSigned).toBe(true);
      expect(lifetimeMs(info)).toBe(30 * 86_400_000);
      expect(keyMatchesCertificate(certPem, keyPem)).toBe(true);
      expect(keyTypeOfKey(keyPem)).toBe('ec-p384');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const serials: { hex: string; serial: string; serialDer: string }[] = [
    { hex: '01', serial: '01', serialDer: '01' },
    { hex: '7F', serial: '7F', serialDer: '7F' },
    // Top bit set: DER keeps a 00 octet so the INTEGER stays positive; ARI needs those bytes.
    { hex: '80', serial: '80', serialDer: '0080' },
    { hex: 'FA1234567890ABCDEF', serial: 'FA1234567890ABCDEF', serialDer: '00FA1234567890ABCDEF' },
    { hex: '0123456789abcdef01', serial: '0123456789ABCDEF01', serialDer: '0123456789ABCDEF01' },
  ];
  it.each(serials)('serial $hex -> $serial / DER $serialDer', ({ hex, serial, serialDer }) => {
    const { certPem } = makeCertificate({ names: ['s.test'], notBefore: NB, notAfter: NA, serialHex: hex });
    const info = parseCertificate(certPem);
    expect(info.serial).toBe(serial);
    expect(info.serial).toBe(new crypto.X509Certificate(certPem).serialNumber);
    expect(info.serialDer).toBe(serialDer);
  });

  const dates: { desc: string; notBefore: string; notAfter: string }[] = [
    { desc: 'UTCTime 19xx', notBefore: '1999-12-31T23:59:59Z', notAfter: '2000-01-01T00:00:00Z' },
    {
      desc: 'UTCTime/GeneralizedTime boundary',
      notBefore: '2049-12-31T23:59:59Z',
      notAfter: '2050-01-01T00:00:00Z',
    },
    {
      desc: 'far future GeneralizedTime',
      notBefore: '2026-01-01T00:00:00Z',
      notAfter: '9999-12-31T23:59:59Z',
    },
  ];
  it.each(dates)('dates: $desc', ({ notBefore, notAfter }) => {
    const info = parseCertificate(
      makeCertificate({ names: ['d.test'], notBefore: new Date(notBefore), notAfter: new Date(notAfter) })
        .certPem,
    );
    expect(info.notBefore).toEqual(new Date(notBefore));
    expect(info.notAfter).toEqual(new Date(notAfter));
    expect(lifetimeMs(info)).toBe(Date.parse(notAfter) - Date.parse(notBefore));
  });

  it('parses the first certificate of a chain', () => {
    const ca = makeCa();
    const leaf = makeCertificate({ names: ['leaf.test'], notBefore: NB, notAfter: NA, issuer: ca });
    expect(parseCertificate(leaf.certPem + ca.certPem).names).toEqual(['leaf.test']);
  });

  it.each([
    ['empty text', ''],
    ['no PEM block', 'hello'],
    ['a private key', makeCertificate({ names: ['k.test'], notBefore: NB, notAfter: NA }).keyPem],
    ['base64 that is not DER', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
    ['not base64', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'],
  ])('rejects %s with X509_PARSE', (_desc, pem) => {
    expectCode(() => parseCertificate(pem), 'X509_PARSE', /^x509: /);
  });
});

describe('splitPemChain', () => {
  const ca = makeCa();
  const leaf = makeCertificate({ names: ['leaf.test'], notBefore: NB, notAfter: NA, issuer: ca });

  it('splits a chain into normalised blocks, in order', () => {
    expect(splitPemChain(leaf.certPem + ca.certPem)).toEqual([leaf.certPem, ca.certPem]);
  });

  it('normalises CRLF, odd wrapping, missing final newline and text around blocks', () => {
    const body = (pem: string): string => pem.split('\n').slice(1, -2).join('');
    const messy =
      'subject=CN=leaf.test\r\n' +
      `-----BEGIN CERTIFICATE-----\r\n${body(leaf.certPem)
        .match(/.{1,76}/g)!
        .join('\r\n')}\r\n-----END CERTIFICATE-----\r\n` +
      '\n\nissuer text\n' +
      `-----BEGIN CERTIFICATE-----\n${body(ca.certPem)}\n-----END CERTIFICATE-----`;
    const blocks = splitPemChain(messy);
    expect(blocks).toEqual([leaf.certPem, ca.certPem]);
    for (const b of blocks) expect(b.endsWith('-----END CERTIFICATE-----\n')).toBe(true);
  });

  it('returns nothing for text without certificates', () => {
    expect(splitPemChain('')).toEqual([]);
    expect(splitPemChain(leaf.keyPem)).toEqual([]);
  });
});

describe('keys', () => {
  const ec = makeCertificate({ names: ['ec.test'], notBefore: NB, notAfter: NA, keyType: 'ec-p256' });
  const ec2 = makeCertificate({ names: ['ec.test'], notBefore: NB, notAfter: NA, keyType: 'ec-p256' });
  const rsa = makeCertificate({ names: ['rsa.test'], notBefore: NB, notAfter: NA, keyType: 'rsa-2048' });

  it.each([
    { desc: 'EC cert, its own key', cert: ec.certPem, key: ec.keyPem, expected: true },
    { desc: 'RSA cert, its own key', cert: rsa.certPem, key: rsa.keyPem, expected: true },
    { desc: 'EC cert, another EC key', cert: ec.certPem, key: ec2.keyPem, expected: false },
    { desc: 'EC cert, an RSA key', cert: ec.certPem, key: rsa.keyPem, expected: false },
    { desc: 'RSA cert, an EC key', cert: rsa.certPem, key: ec.keyPem, expected: false },
    { desc: 'full chain, leaf key', cert: ec.certPem + rsa.certPem, key: ec.keyPem, expected: true },
  ])('keyMatchesCertificate: $desc -> $expected', ({ cert, key, expected }) => {
    expect(keyMatchesCertificate(cert, key)).toBe(expected);
  });

  it('keyMatchesCertificate throws X509_PARSE on unparsable input', () => {
    expectCode(() => keyMatchesCertificate(ec.certPem, 'not a key'), 'X509_PARSE', /private key/);
    expectCode(() => keyMatchesCertificate('not a cert', ec.keyPem), 'X509_PARSE');
  });

  const types: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];
  it.each(types)('generatePrivateKey(%s) makes a PKCS#8 key of that type', async (keyType) => {
    const pem = await generatePrivateKey(keyType);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(keyTypeOfKey(pem)).toBe(keyType);
  });

  it('keyTypeOfKey reads PKCS#1 and SEC1 too, and says unknown for other keys', () => {
    const rsaKey = crypto.createPrivateKey(rsa.keyPem);
    expect(keyTypeOfKey(rsaKey.export({ type: 'pkcs1', format: 'pem' }) as string)).toBe('rsa-2048');
    expect(
      keyTypeOfKey(crypto.createPrivateKey(ec.keyPem).export({ type: 'sec1', format: 'pem' }) as string),
    ).toBe('ec-p256');
    const ed = crypto
      .generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(keyTypeOfKey(ed)).toBe('unknown');
    const p521 = crypto
      .generateKeyPairSync('ec', { namedCurve: 'P-521' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(keyTypeOfKey(p521)).toBe('unknown');
    expectCode(() => keyTypeOfKey('garbage'), 'X509_PARSE');
  });

  it('reports the key type of an unusual certificate key as unknown', () => {
    const ed = crypto
      .generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const p521 = crypto
      .generateKeyPairSync('ec', { namedCurve: 'P-521' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    // Signed by an ordinary CA: only the subject key is unusual.
    const ca = makeCa();
    expect(
      parseCertificate(
        makeCertificate({ names: ['x.test'], notBefore: NB, notAfter: NA, keyPem: p521, issuer: ca }).certPem,
      ).keyType,
    ).toBe('unknown');
    expect(
      parseCertificate(
        makeCertificate({ names: ['x.test'], notBefore: NB, notAfter: NA, keyPem: ed, issuer: ca }).certPem,
      ).keyType,
    ).toBe('unknown');
  });
});
