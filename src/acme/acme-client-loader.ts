import crypto from 'node:crypto';
import Module from 'node:module';
import path from 'node:path';
import type * as AcmeClient from 'acme-client';
import { CertpilotError } from '../core/errors';
import { createCsrPem, type CsrInput } from '../x509/csr';
import { issuerCommonName } from '../x509';

/**
 * What certpilot uses of acme-client: its Client (JWS signing, the RFC 8555 resources, the
 * directory and nonce logic) and a CSR builder. Loading the package itself costs a daemon
 * 25 MB of resident memory for good (335 modules, measured in bench/README.md): axios with
 * its form-data and MIME tables (the adapter replaces every client's request method, so it is
 * never called), acme-client's X.509 dependency with its ASN.1 and DI stack (for four small PEM and JWK
 * helpers and the CSR) and the forge library (re-exported, unused).
 *
 * So the Client is loaded from acme-client's own files with its two heavy neighbours answered
 * here: `./axios` by an object that refuses any use, and `./crypto` by the node:crypto helpers
 * below, which return what acme-client's did. The modules loaded for this are removed from
 * require's cache afterwards: this private copy holds its own references, and anyone else in
 * the process who requires acme-client gets the complete, untouched package.
 */

/** The part of acme-client certpilot calls; the real package satisfies it too (tests pass it). */
export interface AcmeModule {
  Client: typeof AcmeClient.Client;
  crypto: { createCsr(data: CsrInput, keyPem: string | Buffer): Promise<[Buffer, Buffer]> };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block re-encoded at 64 columns (acme-client's splitPemChain). */
function splitPemChain(pem: string | Buffer): string[] {
  return [...pem.toString().matchAll(PEM_BLOCK)].map(([, label, body]) => {
    const lines =
      Buffer.from(body!.replace(/\s+/g, ''), 'base64')
        .toString('base64')
        .match(/.{1,64}/g) ?? [];
    return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
  });
}

/** The replacement of acme-client's `./crypto` module: only what Client, http and util call. */
const CRYPTO = {
  splitPemChain,
  /** The public JWK with its members sorted (RFC 7638 thumbprints hash exactly this). */
  getJwk(keyPem: string | Buffer): Record<string, unknown> {
    const jwk = crypto.createPublicKey(keyPem).export({ format: 'jwk' }) as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(jwk)
        .sort()
        .map((k) => [k, jwk[k]]),
    );
  },
  /** The DER of the first PEM block, base64url (CSR at finalize, certificate at revocation). */
  getPemBodyAsB64u(pem: string | Buffer): string {
    const [first] = splitPemChain(pem);
    if (!first) throw new Error('Unable to parse PEM body from string');
    return Buffer.from(first.replace(/-----[^-]+-----|\s+/g, ''), 'base64').toString('base64url');
  },
  /** Only the issuer's common name is read (choosing a preferred chain). */
  readCertificateInfo(certPem: string | Buffer): { issuer: { commonName: string | null } } {
    return { issuer: { commonName: issuerCommonName(certPem) } };
  },
  readCsrDomains: unused('readCsrDomains'),
  isAlpnCertificateAuthorizationValid: unused('isAlpnCertificateAuthorizationValid'),
};

function unused(name: string): () => never {
  return () => {
    throw new CertpilotError('ACME_PROBLEM', `acme: acme-client's ${name} is not available in certpilot`);
  };
}

/** acme-client's axios instance is never used: the adapter sends every request itself. */
const NO_AXIOS = new Proxy(
  {},
  {
    get: (_t, prop) => {
      throw new CertpilotError(
        'ACME_PROBLEM',
        `acme: acme-client's axios (.${String(prop)}) is not used by certpilot`,
      );
    },
  },
);

function createCsr(data: CsrInput, keyPem: string | Buffer): Promise<[Buffer, Buffer]> {
  const key = keyPem.toString();
  return Promise.resolve([Buffer.from(key), Buffer.from(createCsrPem(data, key))]);
}

let loaded: AcmeModule | undefined;

/** acme-client's Client without axios or its X.509 and forge dependencies (loaded once). */
export function loadAcmeClient(): AcmeModule {
  if (loaded) return loaded;
  const src = path.join(path.dirname(require.resolve('acme-client/package.json')), 'src');
  const stubs: [string, unknown][] = [
    [path.join(src, 'axios.js'), NO_AXIOS],
    [path.join(src, 'crypto', 'index.js'), CRYPTO],
  ];
  const before = new Map(Object.entries(require.cache));
  for (const [file, exports] of stubs) {
    const m = new Module(file);
    Object.assign(m, { filename: file, loaded: true, exports });
    require.cache[file] = m;
  }
  try {
    // A copy already loaded by someone else (a library user, a test) is the complete package:
    // its Client works the same, since the adapter replaces each client's request method.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Client = require(path.join(src, 'client.js')) as typeof AcmeClient.Client;
    loaded = { Client, crypto: { createCsr } };
    return loaded;
  } finally {
    // Leave require's cache as it was for acme-client: this copy keeps its own references.
    for (const key of Object.keys(require.cache)) {
      if (!key.startsWith(src)) continue;
      const previous = before.get(key);
      if (previous) require.cache[key] = previous;
      else delete require.cache[key];
    }
  }
}
