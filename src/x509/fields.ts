import { createHash } from 'node:crypto';
import type { KeyType } from '../config/types';
import { DerElement, TAG, childrenOf, decodeOid, decodeTime, readDer, type DerNode } from './der';

/**
 * Certificate fields read from the DER alone. OpenSSL 3 decodes the public key of every
 * certificate it parses through its provider decoders, which makes parsing one cost about
 * 0.13 ms: over 1,000 watched files that was a fifth of `check`. Most certificates are plain
 * (a v3 certificate with printable-ASCII names of the usual attribute types, an RSA or
 * P-256/P-384 key, not self-issued); their fields are read here, in the same form the OpenSSL
 * path gives. Anything else (and anything malformed, so that errors keep OpenSSL's wording) is
 * left to the OpenSSL path in index.ts: readCertificateFields returns undefined for it.
 */

const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
/** The same two OIDs as DER content octets, for the reader that compares them in hex. */
const OID_SAN_HEX = '551d11';
const OID_AKI_HEX = '551d23';
/** GeneralName dNSName is [2] IMPLICIT IA5String (RFC 5280 §4.2.1.6). */
const GENERAL_NAME_DNS = 0x82;
/** AuthorityKeyIdentifier.keyIdentifier is [0] IMPLICIT OCTET STRING (RFC 5280 §4.2.1.1). */
const AKI_KEY_IDENTIFIER = 0x80;

/** Walks the TBSCertificate (RFC 5280 §4.1) for the fields Node's certificate object does not expose. */
export function readTbs(der: Buffer): {
  serialDer: string;
  notBefore: Date;
  notAfter: Date;
  names: string[];
  authorityKeyId?: string;
  issuerIsSubject: boolean;
} {
  const [tbs] = childrenOf(readDer(der));
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new Error('no TBSCertificate');
  const fields = childrenOf(tbs);
  // version is [0] EXPLICIT and absent for v1 certificates.
  let i = fields[0]?.tag === 0xa0 ? 1 : 0;
  const serial = fields[i++];
  i++; // signature AlgorithmIdentifier
  const issuer = fields[i++];
  const validity = fields[i++];
  const subject = fields[i++];
  if (serial?.tag !== TAG.INTEGER || validity?.tag !== TAG.SEQUENCE)
    throw new Error('unexpected TBSCertificate layout');
  const [nb, na] = childrenOf(validity);
  if (!nb || !na) throw new Error('incomplete validity');
  i++; // subjectPublicKeyInfo

  let names: string[] = [];
  let authorityKeyId: string | undefined;
  const extensions = fields.slice(i).find((f) => f.tag === 0xa3); // [3] EXPLICIT Extensions
  if (extensions) {
    const [list] = childrenOf(extensions);
    for (const ext of list ? childrenOf(list) : []) {
      const parts = childrenOf(ext);
      const oid = parts[0]?.tag === TAG.OID ? decodeOid(parts[0].content) : '';
      // extnValue is the last element; `critical` may or may not precede it.
      const value = parts[parts.length - 1];
      if (value?.tag !== TAG.OCTET_STRING) continue;
      if (oid === OID_SUBJECT_ALT_NAME) names = dnsNames(readDer(value.content));
      if (oid === OID_AUTHORITY_KEY_ID) authorityKeyId = akiKeyIdentifier(value);
    }
  }
  return {
    serialDer: serial.content.toString('hex').toUpperCase(),
    notBefore: decodeTime(nb),
    notAfter: decodeTime(na),
    names,
    authorityKeyId,
    issuerIsSubject: issuer !== undefined && subject !== undefined && issuer.raw.equals(subject.raw),
  };
}

/** The keyIdentifier of an Authority Key Identifier extension's value, upper-case hex. */
function akiKeyIdentifier(extnValue: DerNode): string | undefined {
  const id = childrenOf(readDer(extnValue.content)).find((n) => n.tag === AKI_KEY_IDENTIFIER);
  return id ? id.content.toString('hex').toUpperCase() : undefined;
}

function dnsNames(generalNames: DerNode): string[] {
  return childrenOf(generalNames)
    .filter((n) => n.tag === GENERAL_NAME_DNS)
    .map((n) => n.content.toString('latin1').toLowerCase());
}

export interface CertInfo {
  /** The leaf certificate alone, normalised PEM with a trailing newline. */
  pem: string;
  /** Upper-case hex without colons or leading zero octets, as OpenSSL prints it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names from subjectAltName, lower-case, in certificate order. */
  names: string[];
  /** Distinguished name, RDNs joined with ", " (e.g. "CN=example.test, O=Example"). */
  subject: string;
  issuer: string;
  /** SHA-256 of the DER, upper-case hex without colons. */
  fingerprint256: string;
  keyType: KeyType | 'unknown';
  /** Issued by its own key (issuer name matches subject and the signature verifies with its own key). */
  selfSigned: boolean;
  /** keyIdentifier of the Authority Key Identifier extension, upper-case hex; ARI's certificate id needs it. */
  authorityKeyId?: string;
  /** The DER INTEGER content of the serial, upper-case hex, keeping the 00 octet before a set top bit (ARI). */
  serialDer?: string;
}

// ---- the DER-only reader ------------------------------------------------------------------

/** A reason to leave the certificate to the OpenSSL path; never reaches a caller. */
class NotPlain extends Error {}

function notPlain(): never {
  throw new NotPlain();
}

/**
 * One element, refusing every encoding DER does not allow for lengths (long form where the
 * short one fits, leading zero length octets), so that re-encoding it gives the same bytes.
 */
function element(buf: Buffer, offset: number, end: number): DerNode {
  if (offset + 2 > end) notPlain();
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) notPlain();
  let pos = offset + 1;
  let length = buf[pos++] as number;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || pos + count > end || buf[pos] === 0) notPlain();
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[pos++] as number);
    if (length < 0x80 || (count > 1 && length < 1 << (8 * (count - 1)))) notPlain();
  }
  if (pos + length > end) notPlain();
  return new DerElement(tag, buf, offset, pos, pos + length);
}

function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  const c = node.content;
  for (let offset = 0; offset < c.length;) {
    const child = element(c, offset, c.length);
    out.push(child);
    offset += child.size;
  }
  return out;
}

function expect(node: DerNode | undefined, tag: number): DerNode {
  if (node?.tag !== tag) notPlain();
  if (tag === TAG.OID) {
    // X.690 §8.19: at least one octet, the last one ends a subidentifier, none starts with 0x80.
    const c = node.content;
    if (c.length === 0 || (c[c.length - 1] as number) & 0x80) notPlain();
    for (let i = 0; i < c.length; i++)
      if (c[i] === 0x80 && (i === 0 || !((c[i - 1] as number) & 0x80))) notPlain();
  }
  return node;
}

/** A DER INTEGER that is positive, non-zero and minimally encoded. */
function positiveInteger(node: DerNode | undefined): Buffer {
  const c = expect(node, TAG.INTEGER).content;
  if (c.length === 0 || (c[0] as number) & 0x80) notPlain();
  if (c[0] === 0 && (c.length === 1 || ((c[1] as number) & 0x80) === 0)) notPlain();
  return c;
}

const OID_CONTENT = (oid: string): string => {
  const parts = oid.split('.').map(Number);
  const bytes: number[] = [];
  const push = (v: number): void => {
    const out = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
    bytes.push(...out);
  };
  push((parts[0] as number) * 40 + (parts[1] as number));
  for (const p of parts.slice(2)) push(p);
  return Buffer.from(bytes).toString('hex');
};

/** Attribute types by OID (content octets, hex), with the short names OpenSSL prints for them. */
const ATTRIBUTE_NAMES = new Map<string, string>(
  (
    [
      ['2.5.4.3', 'CN'],
      ['2.5.4.4', 'SN'],
      ['2.5.4.5', 'serialNumber'],
      ['2.5.4.6', 'C'],
      ['2.5.4.7', 'L'],
      ['2.5.4.8', 'ST'],
      ['2.5.4.9', 'street'],
      ['2.5.4.10', 'O'],
      ['2.5.4.11', 'OU'],
      ['2.5.4.12', 'title'],
      ['2.5.4.42', 'GN'],
      ['1.2.840.113549.1.9.1', 'emailAddress'],
      ['0.9.2342.19200300.100.1.25', 'DC'],
    ] as const
  ).map(([oid, name]) => [OID_CONTENT(oid), name]),
);

/** PrintableString, UTF8String, IA5String: printed as they are when their text is plain ASCII. */
const STRING_TAGS = new Set([0x13, 0x0c, 0x16]);
/** Printable ASCII that RFC 2253 escaping leaves alone anywhere in a value. */
const PLAIN_VALUE =
  /^[A-Za-z0-9'()./:?@_&!*%$^~`{}|[\]=-](?:[ A-Za-z0-9'()./:?@_&!*%$^~`{}|[\]=#-]*[A-Za-z0-9'()./:?@_&!*%$^~`{}|[\]=#-])?$/;

/** A Name as "CN=a, O=b": one single-valued RDN after another, as Node prints them, joined. */
function plainName(node: DerNode): string {
  const rdns = children(expect(node, TAG.SEQUENCE));
  if (rdns.length === 0) notPlain();
  const parts: string[] = [];
  for (const rdn of rdns) {
    const atvs = children(expect(rdn, TAG.SET));
    if (atvs.length !== 1) notPlain();
    const [type, value, more] = children(expect(atvs[0], TAG.SEQUENCE));
    if (more || !value || !STRING_TAGS.has(value.tag)) notPlain();
    const name = ATTRIBUTE_NAMES.get(expect(type, TAG.OID).content.toString('hex'));
    const text = value.content.toString('latin1');
    if (name === undefined || !PLAIN_VALUE.test(text)) notPlain();
    parts.push(`${name}=${text}`);
  }
  return parts.join(', ');
}

const OID_RSA = OID_CONTENT('1.2.840.113549.1.1.1');
const OID_EC = OID_CONTENT('1.2.840.10045.2.1');

interface Curve {
  keyType: KeyType;
  p: bigint;
  b: bigint;
  bytes: number;
}
const CURVES = new Map<string, Curve>([
  [
    OID_CONTENT('1.2.840.10045.3.1.7'),
    {
      keyType: 'ec-p256',
      p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
      b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
      bytes: 32,
    },
  ],
  [
    OID_CONTENT('1.3.132.0.34'),
    {
      keyType: 'ec-p384',
      p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
      b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
      bytes: 48,
    },
  ],
]);

const RSA_SIZES: Readonly<Record<number, KeyType>> = { 2048: 'rsa-2048', 3072: 'rsa-3072', 4096: 'rsa-4096' };

/**
 * The key type of a SubjectPublicKeyInfo, for the keys OpenSSL is sure to decode: an RSA key
 * (sizes other than 2048/3072/4096 are 'unknown', as on the OpenSSL path), or an uncompressed
 * P-256/P-384 point that lies on its curve (OpenSSL refuses other points, and that refusal is
 * the OpenSSL path's to report).
 */
function plainKeyType(spki: DerNode): KeyType | 'unknown' {
  const [alg, bits, more] = children(expect(spki, TAG.SEQUENCE));
  const [oid, params, extra] = children(expect(alg, TAG.SEQUENCE));
  const key = expect(bits, TAG.BIT_STRING).content;
  if (more || extra || key[0] !== 0) notPlain();
  const algorithm = expect(oid, TAG.OID).content.toString('hex');
  if (algorithm === OID_RSA) {
    if (params?.tag !== 0x05 || params.content.length !== 0) notPlain();
    const rsa = element(key, 1, key.length);
    if (rsa.size !== key.length - 1) notPlain();
    const [n, e, rest] = children(expect(rsa, TAG.SEQUENCE));
    const modulus = positiveInteger(n);
    positiveInteger(e);
    if (rest) notPlain();
    const skip = modulus[0] === 0 ? 1 : 0;
    const bitLength = (modulus.length - skip - 1) * 8 + (modulus[skip] as number).toString(2).length;
    return RSA_SIZES[bitLength] ?? 'unknown';
  }
  if (algorithm === OID_EC) {
    const curve = CURVES.get(expect(params, TAG.OID).content.toString('hex'));
    if (!curve || key.length !== 2 + 2 * curve.bytes || key[1] !== 0x04) notPlain();
    const x = BigInt(`0x${key.toString('hex', 2, 2 + curve.bytes)}`);
    const y = BigInt(`0x${key.toString('hex', 2 + curve.bytes)}`);
    const { p, b } = curve;
    if (x >= p || y >= p || (y * y - (x * x * x - 3n * x + b)) % p !== 0n) notPlain();
    return curve.keyType;
  }
  return notPlain();
}

const PEM_HEAD = '-----BEGIN CERTIFICATE-----\n';
const PEM_TAIL = '\n-----END CERTIFICATE-----\n';

/**
 * The CertInfo of one normalised certificate PEM (as splitPemChain returns it) read from its
 * DER, or undefined when the certificate is not plain enough for that (see the top of this
 * file) and must go through OpenSSL. A certificate issued by its own name is left to OpenSSL
 * too: telling whether it is self-signed takes a signature check.
 */
export function readCertificateFields(leaf: string): CertInfo | undefined {
  try {
    if (!leaf.startsWith(PEM_HEAD) || !leaf.endsWith(PEM_TAIL)) return undefined;
    const body = leaf.slice(PEM_HEAD.length, -PEM_TAIL.length).replace(/\n/g, '');
    if (body.length % 4 !== 0) return undefined;
    const der = Buffer.from(body, 'base64');
    const cert = element(der, 0, der.length);
    if (cert.size !== der.length) return undefined;
    const [tbs, sigAlg, signature, more] = children(expect(cert, TAG.SEQUENCE));
    if (more || expect(signature, TAG.BIT_STRING).content[0] !== 0) return undefined;
    const [sigOid, , sigExtra] = children(expect(sigAlg, TAG.SEQUENCE));
    expect(sigOid, TAG.OID);
    if (sigExtra) return undefined;

    const f = children(expect(tbs, TAG.SEQUENCE));
    // v3 only: [0] EXPLICIT INTEGER 2.
    const version = children(expect(f[0], 0xa0));
    if (version.length !== 1 || expect(version[0], TAG.INTEGER).content.toString('hex') !== '02')
      return undefined;
    const serial = positiveInteger(f[1]);
    const [innerOid, , innerExtra] = children(expect(f[2], TAG.SEQUENCE));
    expect(innerOid, TAG.OID);
    if (innerExtra) return undefined;
    const issuer = plainName(f[3] as DerNode);
    const validity = children(expect(f[4], TAG.SEQUENCE));
    if (validity.length !== 2) return undefined;
    const subject = plainName(f[5] as DerNode);
    if ((f[3] as DerNode).raw.equals((f[5] as DerNode).raw)) return undefined;
    const keyType = plainKeyType(f[6] as DerNode);
    if (f.length > 8) return undefined;
    // The rest as readTbs reads it (the OpenSSL path uses readTbs), from the elements at hand.
    let names: string[] = [];
    let authorityKeyId: string | undefined;
    if (f.length === 8) {
      const [list, after] = children(expect(f[7], 0xa3));
      if (after) return undefined;
      const seen = new Set<string>();
      for (const ext of children(expect(list, TAG.SEQUENCE))) {
        const parts = children(expect(ext, TAG.SEQUENCE));
        const oid = expect(parts[0], TAG.OID).content.toString('hex');
        if (seen.has(oid)) return undefined;
        seen.add(oid);
        if (parts.length === 3) {
          const critical = expect(parts[1], TAG.BOOLEAN).content;
          if (critical.length !== 1 || critical[0] !== 0xff) return undefined;
        } else if (parts.length !== 2) return undefined;
        const value = expect(parts[parts.length - 1], TAG.OCTET_STRING);
        if (oid === OID_SAN_HEX) names = dnsNames(readDer(value.content));
        if (oid === OID_AKI_HEX) authorityKeyId = akiKeyIdentifier(value);
      }
    }
    const [notBefore, notAfter] = validity as [DerNode, DerNode];
    const serialHex = serial.toString('hex', serial[0] === 0 ? 1 : 0).toUpperCase();
    return {
      pem: leaf,
      serial: serialHex,
      notBefore: decodeTime(notBefore),
      notAfter: decodeTime(notAfter),
      names,
      subject,
      issuer,
      fingerprint256: createHash('sha256').update(der).digest('hex').toUpperCase(),
      keyType,
      selfSigned: false,
      authorityKeyId,
      serialDer: serial.toString('hex').toUpperCase(),
    };
  } catch {
    // Not plain, or malformed: the OpenSSL path parses it, or reports why it cannot.
    return undefined;
  }
}
