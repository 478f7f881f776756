import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { splitPemChain } from '../x509';

/**
 * What the ACME client trusts: Node's default roots plus `acme.caBundle`. Node's `ca` option
 * replaces the default roots, so the defaults are passed in with the bundle; the secure
 * context is built once per bundle text and shared by every connection (building one parses
 * ~150 roots, and a per-connection `ca` would do that on every TLS handshake).
 */

type GetCaCertificates = (type?: 'default' | 'bundled' | 'extra' | 'system') => string[];

/**
 * The roots a plain `https.request` trusts. Node >= 22.15 says so itself (bundled Mozilla roots,
 * NODE_EXTRA_CA_CERTS, and the system store under --use-system-ca). Node 20 has no such call:
 * its bundled roots plus the NODE_EXTRA_CA_CERTS file, which Node read at start-up and which is
 * how an operator extends the defaults (under --use-openssl-ca Node 20 trusts OpenSSL's store
 * instead, which is not visible from JavaScript; the bundled roots stand in for it).
 */
export function defaultCaCertificates(env: NodeJS.ProcessEnv = process.env): string[] {
  const get = (tls as unknown as { getCACertificates?: GetCaCertificates }).getCACertificates;
  if (typeof get === 'function') return get('default');
  const extraFile = env.NODE_EXTRA_CA_CERTS;
  let extra: string[] = [];
  if (extraFile) {
    try {
      extra = splitPemChain(readFileSync(extraFile, 'utf8'));
    } catch {
      // Node already warned about the file at start-up, and ignored it as we do.
    }
  }
  return [...tls.rootCertificates, ...extra];
}

/** One entry per distinct bundle text: a process talks to one CA, tests to a few. */
const contexts = new Map<string, tls.SecureContext>();

/** A secure context trusting the default roots and the certificates of `bundlePem`. */
export function secureContextTrusting(bundlePem: string): tls.SecureContext {
  let ctx = contexts.get(bundlePem);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: [...defaultCaCertificates(), ...splitPemChain(bundlePem)] });
    contexts.set(bundlePem, ctx);
  }
  return ctx;
}
