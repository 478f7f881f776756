import crypto from 'node:crypto';
import forge from 'node-forge';
import { CertpilotError } from '../core/errors';
import { certificateDer } from './index';

/**
 * PKCS#12 (PFX) files for Java keystores, Windows and appliances, built with node-forge.
 *
 * forge's high-level `pkcs12.toPkcs12Asn1` wraps RSA keys only and MACs with SHA-1, so the PFX
 * is assembled here from forge's primitives, which work on any PKCS#8 PrivateKeyInfo (RSA and
 * EC alike, as Node exports them):
 *   - one shrouded key bag: the PrivateKeyInfo encrypted with PBES2 (PBKDF2-HMAC-SHA256,
 *     AES-256-CBC), what OpenSSL 3 writes by default and Java 17's keytool reads;
 *   - cert bags for the leaf and the chain, in a plain Data content (as forge does too):
 *     certificates are public, and RC2-40, which older tools use for them, needs `openssl -legacy`;
 *   - localKeyId (SHA-1 of the leaf's DER) on the key and leaf bags, which is how readers pair
 *     them, and friendlyName on both, which keytool shows as the alias;
 *   - a MAC over the whole with HMAC-SHA-256 (RFC 7292 key derivation, id 3).
 * The password goes through two derivations that encode it differently (UTF-8 for PBES2,
 * BMPString for the MAC); readers disagree on non-ASCII passwords, so only printable ASCII is
 * accepted (`isPkcs12Password`).
 */

const { asn1, pki } = forge;
const ITERATIONS = 2048;
const SALT_BYTES = 16;
const MAC_KEY_BYTES = 32;

function p12Error(message: string): CertpilotError {
  return new CertpilotError('STORE_IO', `pkcs12: ${message}`);
}

/** Printable ASCII, 1..1024 characters: the passwords every PKCS#12 reader derives alike. */
export function isPkcs12Password(password: string): boolean {
  return /^[\x20-\x7e]{1,1024}$/.test(password);
}

export interface Pkcs12Input {
  /** The private key (PEM, any form Node reads: PKCS#8, SEC1, PKCS#1). */
  keyPem: string;
  /** The leaf first, then its chain (PEM each). */
  certsPem: readonly string[];
  password: string;
  friendlyName: string;
}

const binary = (b: Buffer): string => b.toString('binary');
const bytes = (s: string): Buffer => Buffer.from(s, 'binary');
const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (o: string): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (s: string): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, s);
const explicit0 = (inner: forge.asn1.Asn1): forge.asn1.Asn1 =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
const der = (node: forge.asn1.Asn1): string => asn1.toDer(node).getBytes();

function attribute(type: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(type), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [value])]);
}

function bagAttributes(localKeyId: string, friendlyName: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
    attribute(pki.oids.localKeyId!, octets(localKeyId)),
    // forge writes a BMPSTRING's JS string as UTF-16BE code units.
    attribute(
      pki.oids.friendlyName!,
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, friendlyName),
    ),
  ]);
}

/** A ContentInfo of type Data holding DER-encoded SafeContents. */
function dataContent(bags: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return seq([oid(pki.oids.data!), explicit0(octets(der(seq(bags))))]);
}

function certBag(certDer: Buffer, attrs?: forge.asn1.Asn1): forge.asn1.Asn1 {
  const value = explicit0(seq([oid(pki.oids.x509Certificate!), explicit0(octets(binary(certDer)))]));
  return seq(attrs ? [oid(pki.oids.certBag!), value, attrs] : [oid(pki.oids.certBag!), value]);
}

function shroudedKeyBag(keyPem: string, password: string, attrs: forge.asn1.Asn1): forge.asn1.Asn1 {
  const pkcs8 = crypto.createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const info = asn1.fromDer(forge.util.createBuffer(binary(pkcs8)));
  const encrypted = pki.encryptPrivateKeyInfo(info, password, {
    algorithm: 'aes256',
    count: ITERATIONS,
    saltSize: SALT_BYTES,
    prfAlgorithm: 'sha256',
  });
  return seq([oid(pki.oids.pkcs8ShroudedKeyBag!), explicit0(encrypted), attrs]);
}

function macData(authSafe: string, password: string): forge.asn1.Asn1 {
  const salt = forge.random.getBytesSync(SALT_BYTES);
  const key = forge.pkcs12.generateKey(
    password,
    forge.util.createBuffer(salt),
    3,
    ITERATIONS,
    MAC_KEY_BYTES,
    forge.md.sha256.create(),
  );
  const hmac = forge.hmac.create();
  hmac.start('sha256', key.getBytes());
  hmac.update(authSafe);
  const algorithm = seq([
    oid(pki.oids.sha256!),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  return seq([
    seq([algorithm, octets(hmac.digest().getBytes())]),
    octets(salt),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(ITERATIONS).getBytes()),
  ]);
}

/** Builds a password-protected PFX holding the key, the leaf and its chain (DER bytes). */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  if (!isPkcs12Password(input.password))
    throw p12Error('the password must be 1 to 1024 printable ASCII characters');
  if (input.certsPem.length === 0) throw p12Error('no certificate to store');
  const certs = input.certsPem.map((pem) => certificateDer(pem));
  const localKeyId = crypto.createHash('sha1').update(certs[0]!).digest('binary');
  const attrs = (): forge.asn1.Asn1 => bagAttributes(localKeyId, input.friendlyName);
  const authSafe = der(
    seq([
      dataContent(certs.map((c, i) => certBag(c, i === 0 ? attrs() : undefined))),
      dataContent([shroudedKeyBag(input.keyPem, input.password, attrs())]),
    ]),
  );
  const pfx = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(3).getBytes()),
    seq([oid(pki.oids.data!), explicit0(octets(authSafe))]),
    macData(authSafe, input.password),
  ]);
  return bytes(der(pfx));
}

export interface Pkcs12Contents {
  /** The certificate paired with the key (same localKeyId), DER. */
  leaf: Buffer;
  /** The other certificates, in file order, DER. */
  chain: Buffer[];
  /** The private key as an unencrypted PKCS#8 PrivateKeyInfo, DER. */
  keyDer: Buffer;
  friendlyName?: string;
}

interface Bag {
  cert?: forge.pki.Certificate | null;
  key?: forge.pki.PrivateKey | null;
  asn1?: forge.asn1.Asn1;
  attributes: Record<string, unknown[] | undefined>;
}

function bagDer(bag: Bag, kind: 'cert' | 'key'): Buffer {
  // forge parses RSA only; for other keys and certificates it leaves the ASN.1 in `asn1`.
  if (kind === 'cert' && bag.cert) return bytes(der(pki.certificateToAsn1(bag.cert)));
  if (kind === 'key' && bag.key)
    return bytes(der(pki.wrapRsaPrivateKey(pki.privateKeyToAsn1(bag.key as forge.pki.rsa.PrivateKey))));
  if (bag.asn1) return bytes(der(bag.asn1));
  throw p12Error(`a ${kind} bag holds nothing readable`);
}

/**
 * Reads a PFX with its password (the MAC is verified, the key decrypted): the key, the leaf
 * it is paired with, the rest of the certificates. Throws on a wrong password or a bad file.
 */
export function readPkcs12(data: Buffer, password: string): Pkcs12Contents {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1.fromDer(forge.util.createBuffer(binary(data))), true, password);
  } catch (err) {
    throw p12Error(`cannot read the file: ${(err as Error).message}`);
  }
  const keyBags = (p12.getBags({ bagType: pki.oids.pkcs8ShroudedKeyBag! })[pki.oids.pkcs8ShroudedKeyBag!] ??
    []) as unknown as Bag[];
  const certBags = (p12.getBags({ bagType: pki.oids.certBag! })[pki.oids.certBag!] ?? []) as unknown as Bag[];
  if (keyBags.length !== 1) throw p12Error(`holds ${keyBags.length} private keys, not 1`);
  const keyBag = keyBags[0]!;
  const keyId = String(keyBag.attributes.localKeyId?.[0] ?? '');
  const leafIndex = certBags.findIndex((b) => String(b.attributes.localKeyId?.[0] ?? '') === keyId);
  if (leafIndex < 0) throw p12Error('no certificate is paired with the private key (localKeyId)');
  const name = keyBag.attributes.friendlyName?.[0];
  return {
    leaf: bagDer(certBags[leafIndex]!, 'cert'),
    chain: certBags.filter((_, i) => i !== leafIndex).map((b) => bagDer(b, 'cert')),
    keyDer: bagDer(keyBag, 'key'),
    ...(typeof name === 'string' ? { friendlyName: name } : {}),
  };
}
