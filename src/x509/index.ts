import crypto from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../config/types';
import { CertpilotError } from '../core/errors';
import { childrenOf, readDer, type DerNode } from './der';
import { readCertificateFields, readTbs, type CertInfo } from './fields';

/**
 * The one place that parses certificates and keys. Everything else works with CertInfo and
 * PEM strings, so a change of parsing library (or a Node upgrade that adds `validToDate`)
 * touches only this folder.
 */

export type { CertInfo } from './fields';

const PEM_CERT_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
/** RFC 7468 §2: generators wrap base64 at exactly 64 characters. */
const PEM_LINE = 64;

function x509Error(message: string, cause?: unknown): CertpilotError {
  return new CertpilotError('X509_PARSE', `x509: ${message}`, cause === undefined ? {} : { cause });
}

function pemBlock(label: string, base64: string): string {
  let body = '';
  for (let i = 0; i < base64.length; i += PEM_LINE) body += `${base64.slice(i, i + PEM_LINE)}\n`;
  return `-----BEGIN ${label}-----\n${body || '\n'}-----END ${label}-----\n`;
}

/**
 * Splits a PEM bundle into its CERTIFICATE blocks, in order. Each block is normalised (LF line
 * ends, base64 re-wrapped at 64 columns, trailing newline) so equal certificates compare equal
 * as strings whatever editor or CA produced them. Text between blocks is dropped.
 */
export function splitPemChain(pem: string): string[] {
  const out: string[] = [];
  for (const m of pem.matchAll(PEM_CERT_BLOCK)) {
    const body = m[1].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw x509Error('certificate PEM block is not valid base64');
    out.push(pemBlock('CERTIFICATE', body));
  }
  return out;
}

function keyTypeOfKeyObject(key: crypto.KeyObject): KeyType | 'unknown' {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    switch (details.modulusLength) {
      case 2048:
        return 'rsa-2048';
      case 3072:
        return 'rsa-3072';
      case 4096:
        return 'rsa-4096';
      default:
        return 'unknown';
    }
  }
  if (key.asymmetricKeyType === 'ec') {
    // OpenSSL reports P-256 by its X9.62 name and P-384 by its SEC name.
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
  }
  return 'unknown';
}

/** "CN=a\nO=b" (Node's display form) -> "CN=a, O=b", one line for logs and messages. */
function oneLineDn(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/** The issuer's common name of a PEM certificate (the last CN), or null when it has none. */
export function issuerCommonName(certPem: string | Buffer): string | null {
  const cn = new crypto.X509Certificate(certPem).issuer
    .split('\n')
    .filter((rdn) => rdn.startsWith('CN='))
    .pop();
  return cn === undefined ? null : cn.slice(3);
}

/**
 * The DER of one certificate given as PEM or DER (outputs in DER and PKCS#12 carry it so).
 * Throws when it is not a readable certificate.
 */
export function certificateDer(cert: string | Buffer): Buffer {
  return Buffer.from(new crypto.X509Certificate(cert).raw);
}

/**
 * Parses the first certificate of `pem` (a leaf, or a full chain whose first block is the
 * leaf). Throws CertpilotError X509_PARSE when there is no certificate or it cannot be read.
 */
export function parseCertificate(pem: string): CertInfo {
  const [leaf] = splitPemChain(pem);
  if (!leaf) throw x509Error('no CERTIFICATE block found');
  return readCertificateFields(leaf) ?? parseWithOpenSsl(leaf);
}

/**
 * parseCertificate through X509Certificate: every certificate readCertificateFields leaves out.
 * Exported as the reference readCertificateFields is tested against (test/x509/fields.test.ts).
 */
export function parseWithOpenSsl(leaf: string): CertInfo {
  let x: crypto.X509Certificate;
  try {
    x = new crypto.X509Certificate(leaf);
  } catch (err) {
    throw x509Error(`cannot parse certificate: ${(err as Error).message}`, err);
  }
  let tbs: ReturnType<typeof readTbs>;
  try {
    tbs = readTbs(x.raw);
  } catch (err) {
    throw x509Error(`cannot read certificate fields: ${(err as Error).message}`, err);
  }
  // Not X509Certificate.checkIssued(x): OpenSSL's check also demands keyCertSign in keyUsage,
  // which self-signed leaf certificates (test servers, appliances) usually lack.
  let selfSigned: boolean;
  try {
    selfSigned = tbs.issuerIsSubject && x.verify(x.publicKey);
  } catch {
    // A public key type Node cannot verify with is not evidence of self-signing.
    selfSigned = false;
  }
  return {
    pem: leaf,
    serial: x.serialNumber.toUpperCase(),
    notBefore: tbs.notBefore,
    notAfter: tbs.notAfter,
    names: tbs.names,
    subject: oneLineDn(x.subject),
    issuer: oneLineDn(x.issuer),
    fingerprint256: x.fingerprint256.replace(/:/g, '').toUpperCase(),
    keyType: keyTypeOfKeyObject(x.publicKey),
    selfSigned,
    authorityKeyId: tbs.authorityKeyId,
    serialDer: tbs.serialDer,
  };
}

function loadPrivateKey(keyPem: string): crypto.KeyObject {
  try {
    return crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw x509Error(`cannot parse private key: ${(err as Error).message}`, err);
  }
}

/**
 * The KeyType of a PEM private key (PKCS#8, PKCS#1 or SEC1), or 'unknown' for a valid key of
 * another type or size. Throws X509_PARSE when the text is not a private key at all.
 */
export function keyTypeOfKey(keyPem: string): KeyType | 'unknown' {
  return keyTypeOfKeyObject(loadPrivateKey(keyPem));
}

/**
 * True when `keyPem` is the private key of the (first) certificate in `certPem`. A well-formed
 * key of a different type or curve is simply false; unparsable input throws X509_PARSE,
 * because "garbage" and "another key" call for different fixes.
 */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  const [leaf] = splitPemChain(certPem);
  if (!leaf) throw x509Error('no CERTIFICATE block found');
  let x: crypto.X509Certificate;
  try {
    x = new crypto.X509Certificate(leaf);
  } catch (err) {
    throw x509Error(`cannot parse certificate: ${(err as Error).message}`, err);
  }
  const key = loadPrivateKey(keyPem);
  try {
    return x.checkPrivateKey(key);
  } catch {
    // OpenSSL raises instead of answering for some key-type combinations; they do not match.
    return false;
  }
}

const generateKeyPairAsync = promisify(crypto.generateKeyPair);

/** A new private key as PKCS#8 PEM. Async because RSA 4096 can take a second or more. */
export async function generatePrivateKey(keyType: KeyType): Promise<string> {
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  switch (keyType) {
    case 'ec-p256':
    case 'ec-p384': {
      const namedCurve = keyType === 'ec-p256' ? 'P-256' : 'P-384';
      const { privateKey } = await generateKeyPairAsync('ec', {
        namedCurve,
        privateKeyEncoding,
        publicKeyEncoding,
      });
      return privateKey;
    }
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096': {
      const modulusLength = Number(keyType.slice(4));
      const { privateKey } = await generateKeyPairAsync('rsa', {
        modulusLength,
        publicExponent: 0x10001,
        privateKeyEncoding,
        publicKeyEncoding,
      });
      return privateKey;
    }
    default: {
      const never: never = keyType;
      throw x509Error(`unsupported key type "${String(never)}"`);
    }
  }
}

/**
 * notAfter - notBefore in milliseconds. X.509 validity includes both ends (RFC 5280 §4.1.2.5),
 * so a "90-day" certificate measures 90 days minus one second here; the renewal policy's
 * ratios are not sensitive to that second.
 */
export function lifetimeMs(info: Pick<CertInfo, 'notBefore' | 'notAfter'>): number {
  return info.notAfter.getTime() - info.notBefore.getTime();
}

/** keyUsage (RFC 5280 §4.2.1.3) and proxyCertInfo (RFC 3820 §3.8), as DER OID contents. */
const KEY_USAGE_OID = Buffer.from('551d0f', 'hex');
const PROXY_CERT_INFO_OID = Buffer.from('2b06010505070114', 'hex');

/**
 * Whether issuer checks on this CA certificate are decided by names and key identifiers alone:
 * OpenSSL's X509_check_issued also requires keyCertSign when a keyUsage extension is present,
 * and a trust-store lookup does not; both agree for a certificate with keyCertSign or without
 * keyUsage. A proxy certificate (other rules again) is never plain.
 */
function issuesByNameAlone(der: Buffer): boolean {
  // Certificate > TBSCertificate > [3] > Extensions; a certificate without them is plain.
  const fields = childrenOf(childrenOf(readDer(der))[0] as DerNode);
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (!extensions) return true;
  for (const ext of childrenOf(childrenOf(extensions)[0] as DerNode)) {
    const parts = childrenOf(ext);
    const oid = parts[0]?.content;
    if (oid?.equals(PROXY_CERT_INFO_OID)) return false;
    if (oid?.equals(KEY_USAGE_OID)) {
      // KeyUsage BIT STRING: unused-bit count, then bit 0 (digitalSignature) first; keyCertSign is bit 5.
      const bits = readDer((parts[parts.length - 1] as DerNode).content).content;
      return ((bits[1] ?? 0) & 0x04) !== 0;
    }
  }
  return true;
}

/**
 * The certificates of a CA bundle as a TLS trust store holds them, when looking an issuer up
 * among them cannot depend on the store's internal order: the text holds CERTIFICATE blocks
 * only, each readable; no two different certificates share a subject name (compared after
 * dropping case, spaces and escapes, so names OpenSSL would compare equal always collide here);
 * and each may issue by name and key identifier alone (issuesByNameAlone). Otherwise
 * undefined: the caller then asks Node for the chain it links itself.
 */
export function plainTrustStore(bundlePem: string): crypto.X509Certificate[] | undefined {
  try {
    const blocks = splitPemChain(bundlePem);
    if (blocks.length === 0 || blocks.length !== bundlePem.split('-----BEGIN ').length - 1) return undefined;
    // Written the standard way (64 columns, LF), so OpenSSL's PEM reader takes exactly these.
    if (!blocks.every((b) => bundlePem.includes(b.slice(0, -1)))) return undefined;
    const byFingerprint = new Map<string, crypto.X509Certificate>();
    for (const pem of blocks) {
      const x = new crypto.X509Certificate(pem);
      byFingerprint.set(x.fingerprint256, x);
    }
    const names = new Set<string>();
    for (const x of byFingerprint.values()) {
      const name = x.subject.toLowerCase().replace(/[\s\\]/g, '');
      if (names.has(name) || !issuesByNameAlone(x.raw)) return undefined;
      names.add(name);
    }
    return [...byFingerprint.values()];
  } catch {
    return undefined;
  }
}
