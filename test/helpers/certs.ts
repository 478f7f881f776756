import crypto from 'node:crypto';
import type { KeyType } from '../../src/config/types';

/**
 * Test certificates built in-process: a small DER encoder assembles the TBSCertificate and
 * node:crypto signs it. Chosen over the alternatives because it needs no subprocess, handles
 * EC and RSA alike (node-forge's PKI is RSA-only), and takes any notBefore/notAfter, including
 * past dates and second-precision lifetimes (openssl 3.0 on this machine has no -not_before).
 *
 * Every certificate is a real, verifiable X.509 v3 certificate: X509Certificate, openssl and
 * nginx accept them.
 */

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface MakeCertificateOptions {
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** Key type of a newly generated key (default ec-p256). Ignored when `keyPem` is given. */
  keyType?: KeyType;
  /** Reuse this private key (PEM) instead of generating one. */
  keyPem?: string;
  /** Issuing CA; without it the certificate is self-signed. */
  issuer?: KeyPairPem;
  isCA?: boolean;
  /** Serial as hex (positive); default 16 random octets. Lets tests pin the DER leading-zero case. */
  serialHex?: string;
  /** Subject common name; default the first name (or "certpilot test CA" for a CA). */
  commonName?: string;
}

// --- DER encoding (X.690), only what a certificate needs ---------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1] & 0x80) === 0) b = b.subarray(1);
  // A set top bit would make the INTEGER negative: DER prepends a zero octet.
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift(0x80 | (x & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  return tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

const name = (cn: string): Buffer => seq(set(seq(oid('2.5.4.3'), utf8(cn))));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

// --- keys and signing -------------------------------------------------------------------

function generateKey(keyType: KeyType): string {
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  if (keyType.startsWith('ec-')) {
    const namedCurve = keyType === 'ec-p256' ? 'P-256' : 'P-384';
    return crypto.generateKeyPairSync('ec', { namedCurve, privateKeyEncoding, publicKeyEncoding }).privateKey;
  }
  const modulusLength = Number(keyType.slice(4));
  return crypto.generateKeyPairSync('rsa', { modulusLength, privateKeyEncoding, publicKeyEncoding })
    .privateKey;
}

function spkiDer(keyPem: string): Buffer {
  return crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
}

/** RFC 5280 §4.2.1.2 method (1) would hash only the key bits; any stable unique value is allowed. */
function keyId(keyPem: string): Buffer {
  return crypto.createHash('sha1').update(spkiDer(keyPem)).digest();
}

function signatureAlgorithm(signerKeyPem: string): Buffer {
  const type = crypto.createPrivateKey(signerKeyPem).asymmetricKeyType;
  if (type === 'rsa') return seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))); // sha256WithRSAEncryption, NULL
  if (type === 'ec') return seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256, no parameters (RFC 5758)
  throw new Error(`test certs: cannot sign with a ${String(type)} key`);
}

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

function subjectCommonName(certPem: string): string {
  const m = /(?:^|\n)CN=([^\n]*)/.exec(new crypto.X509Certificate(certPem).subject);
  if (!m) throw new Error('test certs: issuer has no CN');
  return m[1];
}

/** A certificate for `names`, self-signed unless `issuer` is given. Returns PEM cert and PKCS#8 key. */
export function makeCertificate(opts: MakeCertificateOptions): KeyPairPem {
  const keyPem = opts.keyPem ?? generateKey(opts.keyType ?? 'ec-p256');
  const signerKey = opts.issuer?.keyPem ?? keyPem;
  const cn = opts.commonName ?? (opts.isCA ? 'certpilot test CA' : (opts.names[0] ?? 'certpilot test'));
  const issuerCn = opts.issuer ? subjectCommonName(opts.issuer.certPem) : cn;
  const serialHex = opts.serialHex && opts.serialHex.length % 2 === 1 ? `0${opts.serialHex}` : opts.serialHex;
  const serial = serialHex ? Buffer.from(serialHex, 'hex') : crypto.randomBytes(16);

  const exts: Buffer[] = [];
  if (opts.names.length > 0) {
    exts.push(
      extension('2.5.29.17', false, seq(...opts.names.map((n) => tlv(0x82, Buffer.from(n, 'latin1'))))),
    );
  }
  exts.push(extension('2.5.29.19', true, opts.isCA ? seq(bool(true)) : seq())); // basicConstraints
  // keyUsage: keyCertSign|cRLSign for a CA, digitalSignature for a leaf (RFC 5280 §4.2.1.3).
  exts.push(
    extension(
      '2.5.29.15',
      true,
      opts.isCA ? tlv(0x03, Buffer.from([0x01, 0x06])) : tlv(0x03, Buffer.from([0x07, 0x80])),
    ),
  );
  exts.push(extension('2.5.29.14', false, octets(keyId(keyPem)))); // subjectKeyIdentifier
  exts.push(extension('2.5.29.35', false, seq(tlv(0x80, keyId(signerKey))))); // authorityKeyIdentifier

  const sigAlg = signatureAlgorithm(signerKey);
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    sigAlg,
    name(issuerCn),
    seq(time(opts.notBefore), time(opts.notAfter)),
    name(cn),
    spkiDer(keyPem),
    explicit(3, seq(...exts)),
  );
  const signature = crypto.sign('sha256', tbs, signerKey);
  return { certPem: toPem(seq(tbs, sigAlg, bitString(signature))), keyPem };
}

export interface MakeCaOptions {
  keyType?: KeyType;
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
}

const DAY_MS = 86_400_000;

/** A self-signed CA, valid from a year ago for ten years unless told otherwise. */
export function makeCa(opts: MakeCaOptions = {}): KeyPairPem {
  const now = Date.now();
  return makeCertificate({
    names: [],
    isCA: true,
    keyType: opts.keyType ?? 'ec-p256',
    commonName: opts.commonName ?? 'certpilot test CA',
    notBefore: opts.notBefore ?? new Date(now - 365 * DAY_MS),
    notAfter: opts.notAfter ?? new Date(now + 10 * 365 * DAY_MS),
  });
}
