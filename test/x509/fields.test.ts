import crypto from 'node:crypto';
import tls from 'node:tls';
import { childrenOf, readDer } from '../../src/x509/der';
import { readCertificateFields } from '../../src/x509/fields';
import { parseCertificate, parseWithOpenSsl, splitPemChain } from '../../src/x509';
import { makeCa, makeCertificate } from '../helpers/certs';

/**
 * readCertificateFields must give exactly what the OpenSSL path gives, or nothing at all (the
 * OpenSSL path then parses the certificate): parseWithOpenSsl is the reference.
 */

const NB = new Date('2026-01-01T00:00:00Z');
const NA = new Date('2026-04-01T00:00:00Z');

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

const toPem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;

/** Outcome of one certificate: readCertificateFields either agrees with the reference or declines. */
function check(pem: string): 'fields' | 'declined' {
  const leaf = splitPemChain(pem)[0] as string;
  const fields = readCertificateFields(leaf);
  if (!fields) return 'declined';
  expect(JSON.stringify(fields)).toBe(JSON.stringify(parseWithOpenSsl(leaf)));
  expect(parseCertificate(pem)).toEqual(fields);
  return 'fields';
}

const ca = makeCa();

test('plain certificates of every key type are read without OpenSSL, with the same fields', () => {
  for (const kt of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    const { certPem } = makeCertificate({
      names: ['a.test', 'B.test'],
      issuer: ca,
      keyType: kt,
      notBefore: NB,
      notAfter: NA,
    });
    expect(check(certPem)).toBe('fields');
  }
});

test('names with any printable character are printed as OpenSSL prints them, or left to it', () => {
  const outcomes = new Set<string>();
  for (let c = 0x20; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    for (const cn of [`a${ch}b`, `${ch}ab`, `ab${ch}`]) {
      const { certPem } = makeCertificate({
        names: ['x.test'],
        issuer: ca,
        commonName: cn,
        notBefore: NB,
        notAfter: NA,
      });
      outcomes.add(check(certPem));
    }
  }
  expect([...outcomes].sort()).toEqual(['declined', 'fields']);
});

test('self-issued certificates are left to OpenSSL (self-signed needs a signature check)', () => {
  const { certPem } = makeCertificate({ names: ['self.test'], notBefore: NB, notAfter: NA });
  expect(readCertificateFields(splitPemChain(certPem)[0] as string)).toBeUndefined();
  expect(parseCertificate(certPem).selfSigned).toBe(true);
});

const base = makeCertificate({ names: ['a.test'], issuer: ca, notBefore: NB, notAfter: NA });
const baseDer = new crypto.X509Certificate(base.certPem).raw;

test('the distinguished names of the system CA store print the same', () => {
  const [tbs, alg, sig] = childrenOf(readDer(baseDer)) as [
    ReturnType<typeof readDer>,
    ...ReturnType<typeof readDer>[],
  ];
  let read = 0;
  for (const root of tls.rootCertificates) {
    const rootTbs = childrenOf(childrenOf(readDer(new crypto.X509Certificate(root).raw))[0]!);
    const subject = rootTbs[rootTbs[0]!.tag === 0xa0 ? 5 : 4]!.raw;
    const fields = childrenOf(tbs).map((n) => n.raw);
    fields[3] = subject; // the root's name as the issuer of a plain leaf
    const der = tlv(0x30, Buffer.concat([tlv(0x30, Buffer.concat(fields)), alg!.raw, sig!.raw]));
    if (check(toPem(der)) === 'fields') read++;
  }
  expect(read).toBeGreaterThan(tls.rootCertificates.length / 2);
});

test('damaged certificates are read the same way or declined, never read differently', () => {
  let seed = 42;
  const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const seeds = [
    baseDer,
    new crypto.X509Certificate(
      makeCertificate({ names: ['a.test'], issuer: ca, keyType: 'rsa-2048', notBefore: NB, notAfter: NA })
        .certPem,
    ).raw,
    new crypto.X509Certificate(
      makeCertificate({ names: ['a.test'], issuer: ca, keyType: 'ec-p384', notBefore: NB, notAfter: NA })
        .certPem,
    ).raw,
  ];
  let declined = 0;
  for (let i = 0; i < 3000; i++) {
    const der = Buffer.from(seeds[i % seeds.length]!);
    for (let j = 0; j < 1 + Math.floor(random() * 3); j++) {
      const at = Math.floor(random() * der.length);
      der[at] = random() < 0.5 ? Math.floor(random() * 256) : der[at]! ^ (1 << Math.floor(random() * 8));
    }
    const pem = toPem(der);
    const leaf = splitPemChain(pem)[0] as string;
    const fields = readCertificateFields(leaf);
    if (!fields) {
      declined++;
      continue;
    }
    // OpenSSL must accept what was read, and agree on every field.
    expect(JSON.stringify(fields)).toBe(JSON.stringify(parseWithOpenSsl(leaf)));
  }
  expect(declined).toBeGreaterThan(0);
});
