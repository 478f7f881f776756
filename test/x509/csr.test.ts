import crypto from 'node:crypto';
import * as acme from 'acme-client';
import { createCsrPem } from '../../src/x509/csr';
import { childrenOf, readDer } from '../../src/x509/der';

/**
 * certpilot builds its CSRs itself (acme-client's builder needs @peculiar/x509). The request
 * must be the one acme-client built: compared here field by field with acme-client's own.
 */

const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
/** CertificationRequestInfo, signatureAlgorithm, signature. */
const parts = (pem: string): Buffer[] => childrenOf(readDer(der(pem))).map((n) => n.raw);

function pkcs8(type: 'rsa' | 'ec', opts: Record<string, unknown>): string {
  return crypto
    .generateKeyPairSync(type as 'rsa', opts as unknown as crypto.RSAKeyPairOptions<'pem', 'pem'>)
    .privateKey.toString();
}

const KEYS = {
  'rsa-2048': pkcs8('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }),
  'ec-p256': pkcs8('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }),
  'ec-p384': pkcs8('ec', {
    namedCurve: 'P-384',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }),
};

const INPUTS = [
  { commonName: 'a.example.test', altNames: ['b.example.test', '*.c.example.test'] },
  { altNames: ['x.example.test', '192.0.2.1', '2001:db8::1', 'fe80::1:2'] },
  { commonName: 'only.example.test', altNames: [] },
];

describe.each(Object.entries(KEYS))('%s key', (_type, keyPem) => {
  test.each(INPUTS)('same request as acme-client for %j, and its signature verifies', async (input) => {
    const [, theirs] = await acme.crypto.createCsr({ ...input, altNames: [...input.altNames] }, keyPem);
    const ours = createCsrPem(input, keyPem);
    const [infoA, algA] = parts(theirs.toString());
    const [info, alg, sig] = parts(ours);
    expect(info!.equals(infoA!)).toBe(true);
    expect(alg!.equals(algA!)).toBe(true);
    // BIT STRING: tag, length, 0 unused bits, then the signature.
    const signature = readDer(sig!).content.subarray(1);
    const hash = _type === 'ec-p384' ? 'sha384' : 'sha256';
    expect(crypto.verify(hash, info!, crypto.createPublicKey(keyPem), signature)).toBe(true);
    // And OpenSSL reads it as a CSR with those names.
    expect(ours).toMatch(
      /^-----BEGIN CERTIFICATE REQUEST-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE REQUEST-----\n$/,
    );
  });
});

test('an RSA request is byte for byte the one acme-client made (PKCS#1 v1.5 signatures are deterministic)', async () => {
  const input = INPUTS[0]!;
  const [, theirs] = await acme.crypto.createCsr(
    { ...input, altNames: [...input.altNames] },
    KEYS['rsa-2048'],
  );
  expect(der(createCsrPem(input, KEYS['rsa-2048'])).equals(der(theirs.toString()))).toBe(true);
});

test('a SEC1 ("EC PRIVATE KEY") key works too', () => {
  const sec1 = crypto.createPrivateKey(KEYS['ec-p256']).export({ type: 'sec1', format: 'pem' }).toString();
  const [info] = parts(createCsrPem({ commonName: 'k.example.test' }, sec1));
  expect(info!.equals(parts(createCsrPem({ commonName: 'k.example.test' }, KEYS['ec-p256']))[0]!)).toBe(true);
});
