import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Issue 4, item 6: `renew` and `check` share one inspection module: one certificate parser
 * (src/x509), one TLS probe (src/inspect/probe-tls.ts does the handshake, in this thread or in
 * a probe thread; src/inspect/remote.ts judges what it read), one set of findings
 * (src/inspect/findings.ts). This test fails when a second one appears anywhere in src/.
 */

const SRC = path.join(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(SRC).map((f) => ({ rel: path.relative(SRC, f), text: readFileSync(f, 'utf8') }));
const using = (re: RegExp): string[] =>
  files
    .filter((f) => re.test(f.text))
    .map((f) => f.rel)
    .sort();

test.each([
  // Constructing an X509Certificate parses one; probe-tls.ts only takes DER from the socket's.
  [
    'certificate parsing',
    /new (crypto\.)?X509Certificate\(|node-forge|@peculiar\/x509|pkijs/,
    // pkcs12.ts: the PKCS#12 container (node-forge), built on index.ts for the certificates.
    ['x509/index.ts', 'x509/pkcs12.ts'],
  ],
  [
    'TLS client handshakes',
    /tls\.connect\(|getPeerCertificate|getPeerX509Certificate|new tls\.TLSSocket/,
    ['inspect/probe-tls.ts'],
  ],
  ['expiry thresholds and findings', /function assessCertificate|code: 'expired'/, ['inspect/findings.ts']],
  ['served-versus-stored comparison', /function compareServed/, ['inspect/remote.ts']],
] as const)('%s live in one place', (_what, pattern, expected) => {
  expect(using(pattern)).toEqual([...expected]);
});

test('renew reads stored certificates through the store and the x509 parser', () => {
  const run = files.find((f) => f.rel === path.join('renew', 'context.ts'))?.text ?? '';
  expect(run).toContain("from '../store/cert-store'");
  const store = files.find((f) => f.rel === path.join('store', 'cert-store.ts'))?.text ?? '';
  expect(store).toMatch(/import \{[^}]*parseCertificate[^}]*\} from '\.\.\/x509'/);
  // Deploy verification probes with the same module as check.
  const verify = files.find((f) => f.rel === path.join('deploy', 'verify.ts'))?.text ?? '';
  expect(verify).toContain("from '../inspect/remote'");
});
