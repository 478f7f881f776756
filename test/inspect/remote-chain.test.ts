import tls from 'node:tls';
import { probeEndpoint } from '../../src/inspect/remote';
import { plainTrustStore } from '../../src/x509';
import { makeCa, makeCertificate, type KeyPairPem } from '../helpers/certs';
import { LOOPBACK, startTlsServer, type RunningServer } from '../helpers/tls-servers';

/**
 * With a plain CA bundle the probe links a verified chain itself; it must be exactly the chain
 * Node links for getPeerCertificate(true), whatever order and extras the server sends.
 */

const HOST = 'example.test';
const DAY_MS = 86_400_000;
const now = Date.now();
const validity = { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 90 * DAY_MS) };

const root = makeCa({ commonName: 'chain test root' });
const otherRoot = makeCa({ commonName: 'chain test other root' });
const intermediate = makeCertificate({
  names: [],
  isCA: true,
  issuer: root,
  commonName: 'chain test intermediate',
  ...validity,
});
const second = makeCertificate({
  names: [],
  isCA: true,
  issuer: intermediate,
  commonName: 'chain test second intermediate',
  ...validity,
});
const leafOf = (issuer: KeyPairPem, names = [HOST]): KeyPairPem =>
  makeCertificate({ names, issuer, ...validity });
const cnOnly = (cn: string): KeyPairPem =>
  makeCertificate({ names: [], commonName: cn, issuer: intermediate, ...validity });
const unrelated = makeCertificate({ names: [], isCA: true, commonName: 'unrelated CA', ...validity });

const running: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.close()));
});

/** The chain as Node links it, read the way the probe read it before it linked chains itself. */
function nodeChain(
  port: number,
  ca: string,
  servername = HOST,
): Promise<{ chain: string[]; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: LOOPBACK, port, servername, ca, rejectUnauthorized: false });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const chain: string[] = [];
      const seen = new Set<string>();
      let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push(cert.fingerprint256.replace(/:/g, ''));
        cert = cert.issuerCertificate;
      }
      const authorized = socket.authorized;
      const error = authorized ? undefined : String(socket.authorizationError);
      socket.destroy();
      resolve({ chain, authorized, ...(error !== undefined ? { error } : {}) });
    });
  });
}

const cases: [string, KeyPairPem, string[], string][] = [
  ['leaf and intermediate', leafOf(intermediate), [intermediate.certPem], root.certPem],
  ['a leaf issued by the root itself', leafOf(root), [], root.certPem],
  ['the root sent too', leafOf(intermediate), [intermediate.certPem, root.certPem], root.certPem],
  ['intermediates out of order', leafOf(second), [intermediate.certPem, second.certPem], root.certPem],
  [
    'root sent first, then the intermediate',
    leafOf(intermediate),
    [root.certPem, intermediate.certPem],
    root.certPem,
  ],
  [
    'an unrelated certificate sent along',
    leafOf(intermediate),
    [unrelated.certPem, intermediate.certPem],
    root.certPem,
  ],
  ['two intermediates in order', leafOf(second), [second.certPem, intermediate.certPem], root.certPem],
  [
    'two intermediates and the root',
    leafOf(second),
    [second.certPem, intermediate.certPem, root.certPem],
    root.certPem,
  ],
  [
    'an unrelated certificate sent last',
    leafOf(intermediate),
    [intermediate.certPem, unrelated.certPem],
    root.certPem,
  ],
  [
    'the intermediate sent twice',
    leafOf(intermediate),
    [intermediate.certPem, intermediate.certPem],
    root.certPem,
  ],
  ['a bundle of two roots', leafOf(intermediate), [intermediate.certPem], otherRoot.certPem + root.certPem],
  ['the intermediate trusted directly', leafOf(intermediate), [], intermediate.certPem + root.certPem],
  [
    'a name the leaf does not carry',
    leafOf(intermediate, ['other.test']),
    [intermediate.certPem],
    root.certPem,
  ],
  ['a leaf without SAN, its CN the host', cnOnly(HOST), [intermediate.certPem], root.certPem],
  ['a leaf without SAN, its CN another host', cnOnly('other.test'), [intermediate.certPem], root.certPem],
  ['a chain that does not verify', leafOf(intermediate), [intermediate.certPem], otherRoot.certPem],
];

test.each(cases)('%s: the chain Node links', async (_what, leaf, chainPems, ca) => {
  const server = await startTlsServer({ certPem: leaf.certPem, keyPem: leaf.keyPem, chainPems });
  running.push(server);
  const expected = await nodeChain(server.port, ca);
  const probe = await probeEndpoint({
    host: HOST,
    port: server.port,
    connectAddress: LOOPBACK,
    caBundle: ca,
    connectTimeoutMs: 2000,
    handshakeTimeoutMs: 2000,
  });
  expect(probe.ok).toBe(true);
  expect(probe.trusted).toBe(expected.authorized);
  expect(probe.trustError).toBe(expected.error);
  if (expected.authorized || /another host|does not carry/.test(_what)) {
    expect(probe.chain.map((c) => c.fingerprint256)).toEqual(expected.chain);
  }
});

test('a self-signed certificate pinned as the bundle', async () => {
  const self = makeCertificate({ names: [HOST], ...validity });
  const server = await startTlsServer({ certPem: self.certPem, keyPem: self.keyPem });
  running.push(server);
  const expected = await nodeChain(server.port, self.certPem);
  const probe = await probeEndpoint({
    host: HOST,
    port: server.port,
    connectAddress: LOOPBACK,
    caBundle: self.certPem,
    connectTimeoutMs: 2000,
    handshakeTimeoutMs: 2000,
  });
  expect(probe.chain.map((c) => c.fingerprint256)).toEqual(expected.chain);
  expect(probe.trusted).toBe(expected.authorized);
});

describe('plainTrustStore', () => {
  it('takes a bundle of distinctly named CA certificates', () => {
    expect(plainTrustStore(root.certPem + otherRoot.certPem)?.length).toBe(2);
    expect(plainTrustStore(root.certPem + root.certPem)?.length).toBe(1);
  });
  it('leaves out bundles whose issuer lookups could depend on the store', () => {
    const sameName = makeCa({ commonName: 'Chain Test  ROOT' });
    expect(plainTrustStore(root.certPem + sameName.certPem)).toBeUndefined();
    // A leaf's keyUsage lacks keyCertSign: OpenSSL's issuer check and store lookup differ.
    expect(plainTrustStore(makeCertificate({ names: [HOST], ...validity }).certPem)).toBeUndefined();
    expect(plainTrustStore(root.certPem.replace(/\n/g, '\r\n'))).toBeUndefined();
    expect(plainTrustStore(root.certPem.replace(/CERTIFICATE/g, 'TRUSTED CERTIFICATE'))).toBeUndefined();
    expect(plainTrustStore('')).toBeUndefined();
  });
});
