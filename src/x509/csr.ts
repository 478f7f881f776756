import crypto from 'node:crypto';
import net from 'node:net';
import { CertpilotError } from '../core/errors';

/**
 * PKCS#10 certificate signing requests (RFC 2986) with node:crypto alone. acme-client builds
 * them with an X.509 package and its ASN.1 stack, about 200 modules and 14 MB of resident memory
 * that a daemon kept for its whole life for one CSR per order. The request is the one
 * acme-client 5 made: subject CN (UTF8String) when a common name is given, an extensionRequest
 * with keyUsage digitalSignature + keyEncipherment (not critical) and subjectAltName (the
 * common name first, then the other names; IP addresses as iPAddress), signed with SHA-256
 * (RSA), or the curve's hash (ECDSA P-256/P-384/P-521).
 */

export interface CsrInput {
  commonName?: string;
  altNames?: readonly string[];
}

/** DER definite length (X.690 §8.1.3). */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const part of rest) {
    const chunk = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** IPv4 (4 octets) or IPv6 (16 octets) for a GeneralName iPAddress. */
function ipOctets(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  let parts = groups(head);
  let after = groups(tail);
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two groups.
  const v4 = (list: string[]): string[] => {
    const last = list[list.length - 1];
    if (!last || !net.isIPv4(last)) return list;
    const o = last.split('.').map(Number);
    return [...list.slice(0, -1), ((o[0]! << 8) | o[1]!).toString(16), ((o[2]! << 8) | o[3]!).toString(16)];
  };
  if (tail === undefined) parts = v4(parts);
  else after = v4(after);
  const zeros = tail === undefined ? [] : Array<string>(8 - parts.length - after.length).fill('0');
  const all = [...parts, ...zeros, ...after];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function signatureAlgorithm(key: crypto.KeyObject): { hash: string; algorithm: Buffer } {
  if (key.asymmetricKeyType === 'rsa') {
    // sha256WithRSAEncryption, parameters NULL (RFC 4055 §5).
    return { hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const byCurve: Record<string, [string, string]> = {
      prime256v1: ['sha256', '1.2.840.10045.4.3.2'],
      secp384r1: ['sha384', '1.2.840.10045.4.3.3'],
      secp521r1: ['sha512', '1.2.840.10045.4.3.4'],
    };
    const found = curve ? byCurve[curve] : undefined;
    if (found) return { hash: found[0], algorithm: seq(oid(found[1])) };
  }
  throw new CertpilotError(
    'X509_PARSE',
    `x509: no CSR signature algorithm for a ${key.asymmetricKeyType} key`,
  );
}

/** The extensionRequest attribute (PKCS#9, RFC 2985 §5.4.2): keyUsage and subjectAltName. */
function extensionRequest(names: readonly string[]): Buffer {
  // keyUsage: digitalSignature (bit 0) and keyEncipherment (bit 2); 5 unused bits.
  const keyUsage = seq(oid('2.5.29.15'), tlv(0x04, tlv(0x03, Buffer.from([0x05, 0xa0]))));
  const generalNames = names.map((n) =>
    net.isIP(n) ? tlv(0x87, ipOctets(n)) : tlv(0x82, Buffer.from(n, 'ascii')),
  );
  const san = seq(oid('2.5.29.17'), tlv(0x04, seq(...generalNames)));
  return seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, seq(keyUsage, san)));
}

/** A PEM CSR for `input` signed with `keyPem`; the common name is put first in the SAN list. */
export function createCsrPem(input: CsrInput, keyPem: string): string {
  const names = [...(input.altNames ?? [])];
  if (input.commonName && !names.includes(input.commonName)) names.unshift(input.commonName);
  const privateKey = crypto.createPrivateKey(keyPem);
  const spki = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const subject = input.commonName
    ? seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(input.commonName, 'utf8')))))
    : seq();
  const info = seq(tlv(0x02, Buffer.from([0])), subject, spki, tlv(0xa0, extensionRequest(names)));
  const { hash, algorithm } = signatureAlgorithm(privateKey);
  const signature = crypto.sign(hash, info, { key: privateKey, dsaEncoding: 'der' });
  const der = seq(info, algorithm, tlv(0x03, Buffer.from([0]), signature));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
