import crypto from 'node:crypto';
import type tls from 'node:tls';
import { CertpilotError } from '../core/errors';
import { certificateDer, splitPemChain } from '../x509';

/**
 * What an output file holds, how its bytes are made, and how bytes read back from disk are
 * checked. The check is the point: an output only counts once the file a consumer will read
 * was read back and found to hold this certificate (and, where it holds one, the matching key),
 * so a truncated write, a wrong password or a writer bug fails the install instead of a
 * consumer's restart.
 *
 * Kinds: the four PEM files of the classic outputs (`cert`, `chain`, `fullchain`, `key`),
 * `pem-bundle` (full chain and key in one PEM, as HAProxy's `crt` takes it), `der` (the leaf,
 * or the key as unencrypted PKCS#8) and `pkcs12` (key, leaf and chain under a password).
 */

export type OutputKind =
  'cert' | 'chain' | 'fullchain' | 'key' | 'pem-bundle' | 'der-cert' | 'der-key' | 'pkcs12';

/** The validated PEMs of the version being installed. */
export interface OutputSource {
  cert: string;
  chain: string;
  fullchain: string;
  key: string;
}

export interface OutputParams {
  /** pkcs12 only. */
  password?: string;
  /** pkcs12 only: the alias keytool shows. */
  friendlyName?: string;
}

/** The PKCS#12 library takes ~100 ms to load; only a pkcs12 output needs it, so it loads on first use. */
const pkcs12 = (): Promise<typeof import('../x509/pkcs12')> => import('../x509/pkcs12');

function verifyError(kind: OutputKind, why: string): CertpilotError {
  return new CertpilotError('STORE_IO', `store: read-back of the ${kind} output failed: ${why}`);
}

/** The bytes of an output file of `kind`. */
export async function renderOutput(
  kind: OutputKind,
  src: OutputSource,
  params: OutputParams = {},
): Promise<Buffer> {
  switch (kind) {
    case 'cert':
    case 'chain':
    case 'fullchain':
    case 'key':
      return Buffer.from(src[kind]);
    case 'pem-bundle':
      return Buffer.from(`${withNewline(src.fullchain)}${src.key}`);
    case 'der-cert':
      return certificateDer(src.cert);
    case 'der-key':
      return crypto.createPrivateKey(src.key).export({ type: 'pkcs8', format: 'der' });
    case 'pkcs12':
      return (await pkcs12()).buildPkcs12({
        keyPem: src.key,
        certsPem: splitPemChain(src.fullchain),
        password: requirePassword(params),
        friendlyName: params.friendlyName ?? '',
      });
  }
}

const withNewline = (s: string): string => (s === '' || s.endsWith('\n') ? s : `${s}\n`);

function requirePassword(params: OutputParams): string {
  if (params.password === undefined)
    throw new CertpilotError('STORE_IO', 'store: a pkcs12 output needs its password');
  return params.password;
}

const fingerprint = (der: Buffer): string => crypto.createHash('sha256').update(der).digest('hex');
const pemFingerprints = (pem: string): string[] =>
  splitPemChain(pem).map((c) => fingerprint(certificateDer(c)));

/** What the source says the file must hold: the leaf, the chain, and the key's public half. */
interface Expected {
  leaf: string;
  chain: string[];
  publicKey: Buffer;
}

function expectedOf(src: OutputSource): Expected {
  const [leaf = '', ...chain] = pemFingerprints(src.fullchain);
  return {
    leaf,
    chain,
    publicKey: crypto.createPublicKey(src.key).export({ type: 'spki', format: 'der' }),
  };
}

function sameCerts(kind: OutputKind, found: string[], want: string[], what: string): void {
  if (found.length !== want.length || found.some((f, i) => f !== want[i]))
    throw verifyError(
      kind,
      `${what}: ${found.length} certificate(s) that are not the ${want.length} installed`,
    );
}

function sameKey(kind: OutputKind, key: crypto.KeyObject, exp: Expected): void {
  const pub = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!pub.equals(exp.publicKey)) throw verifyError(kind, 'the private key is not the installed key');
}

/** Runs a parser on the read-back bytes; its failure is a verification failure. */
function parsed<T>(kind: OutputKind, what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof CertpilotError) throw verifyError(kind, err.message);
    throw verifyError(kind, `${what}: ${(err as Error).message}`);
  }
}

/**
 * Checks bytes read back from an output file against the version being installed; throws a
 * STORE_IO error saying what is wrong (never the password or key material).
 */
export async function verifyOutput(
  kind: OutputKind,
  data: Buffer,
  src: OutputSource,
  params: OutputParams = {},
): Promise<void> {
  const exp = expectedOf(src);
  const text = (): string => data.toString('utf8');
  const certs = (): string[] => parsed(kind, 'no readable certificates', () => pemFingerprints(text()));
  switch (kind) {
    case 'cert':
      return sameCerts(kind, certs(), [exp.leaf], 'holds');
    case 'chain':
      return sameCerts(kind, certs(), exp.chain, 'holds');
    case 'fullchain':
      return sameCerts(kind, certs(), [exp.leaf, ...exp.chain], 'holds');
    case 'key':
      return sameKey(
        kind,
        parsed(kind, 'no readable key', () => crypto.createPrivateKey(text())),
        exp,
      );
    case 'pem-bundle':
      return verifyBundle(data, exp, certs());
    case 'der-cert': {
      const raw = parsed(kind, 'not a DER certificate', () => certificateDer(data));
      return sameCerts(kind, [fingerprint(raw)], [exp.leaf], 'holds');
    }
    case 'der-key': {
      const key = parsed(kind, 'not a DER PKCS#8 key', () =>
        crypto.createPrivateKey({ key: data, format: 'der', type: 'pkcs8' }),
      );
      return sameKey(kind, key, exp);
    }
    case 'pkcs12':
      return verifyPkcs12(data, exp, requirePassword(params), params.friendlyName, await pkcs12());
  }
}

/** node:tls, loaded when an output is verified (not when a run only plans). */
function tlsModule(): typeof tls {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:tls') as typeof tls;
}

function verifyBundle(data: Buffer, exp: Expected, found: string[]): void {
  sameCerts('pem-bundle', found, [exp.leaf, ...exp.chain], 'holds');
  sameKey(
    'pem-bundle',
    parsed('pem-bundle', 'no readable key', () => crypto.createPrivateKey(data.toString('utf8'))),
    exp,
  );
  // OpenSSL loads it the way a TLS server will (cert and key from the one file, and checks the pair).
  parsed('pem-bundle', 'OpenSSL refuses it', () =>
    tlsModule().createSecureContext({ cert: data, key: data }),
  );
}

function verifyPkcs12(
  data: Buffer,
  exp: Expected,
  password: string,
  friendlyName: string | undefined,
  lib: typeof import('../x509/pkcs12'),
): void {
  const p12 = parsed('pkcs12', 'unreadable', () => lib.readPkcs12(data, password));
  sameCerts('pkcs12', [fingerprint(p12.leaf)], [exp.leaf], 'the key is paired with');
  sameCerts('pkcs12', p12.chain.map(fingerprint), exp.chain, 'the chain holds');
  const key = parsed('pkcs12', 'no readable key', () =>
    crypto.createPrivateKey({ key: p12.keyDer, format: 'der', type: 'pkcs8' }),
  );
  sameKey('pkcs12', key, exp);
  if (friendlyName !== undefined && p12.friendlyName !== friendlyName)
    throw verifyError('pkcs12', 'the friendly name is not the configured one');
  // A second, independent reader: OpenSSL checks the MAC, decrypts the key and pairs it.
  parsed('pkcs12', 'OpenSSL refuses it', () =>
    tlsModule().createSecureContext({ pfx: data, passphrase: password }),
  );
}
