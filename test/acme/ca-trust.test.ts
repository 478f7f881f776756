import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AcmeAdapter } from '../../src/acme/adapter';
import { fetchDirectoryInfo } from '../../src/acme/ari';
import type { AcmeSettings } from '../../src/config/types';
import { silentLogger } from '../../src/core/logger';
import { generatePrivateKey } from '../../src/x509';
import { startPebble, type Pebble } from '../helpers/pebble';

/**
 * What the ACME client trusts. `acme.caBundle` adds to the default roots (it used to replace
 * them), and a CA whose TLS certificate is not trusted is named by its directory URL with
 * acme.caBundle as the way out. Real Pebble (its HTTPS certificate comes from a private root
 * made at each start) and real HTTPS servers with certificates from two more private roots.
 */

const execFileP = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

let pebble: Pebble;
let dir: string;
/** Trusted only through NODE_EXTRA_CA_CERTS in the child: Node's own way to extend its default roots. */
let extraServer: https.Server;
/** Trusted by nobody: shows the child does verify. */
let strangerServer: https.Server;
let extraCaPath: string;

/** A private root and a leaf for 127.0.0.1 signed by it, made with openssl in `dir`. */
async function makePki(prefix: string): Promise<{ caPath: string; cert: string; key: string }> {
  const f = (n: string): string => path.join(dir, `${prefix}-${n}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await execFileP('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=certpilot ${prefix} test root`,
  ]);
  await execFileP('openssl', [
    'req',
    ...ec,
    '-keyout',
    f('key.pem'),
    '-out',
    f('req.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  await execFileP('openssl', [
    'x509',
    '-req',
    '-in',
    f('req.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('cert.pem'),
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
  ]);
  return {
    caPath: f('ca.pem'),
    cert: await readFile(f('cert.pem'), 'utf8'),
    key: await readFile(f('key.pem'), 'utf8'),
  };
}

async function serve(cert: string, key: string): Promise<https.Server> {
  const server = https.createServer({ cert, key }, (_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function urlOf(server: https.Server): string {
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-ca-trust-'));
  // Pebble's validator is never asked anything here: no DNS server is needed behind it.
  pebble = await startPebble({ dnsServer: '127.0.0.1:9' });
  const extra = await makePki('extra');
  const stranger = await makePki('stranger');
  extraCaPath = extra.caPath;
  extraServer = await serve(extra.cert, extra.key);
  strangerServer = await serve(stranger.cert, stranger.key);
}, 60_000);

afterAll(async () => {
  for (const s of [extraServer, strangerServer]) {
    s?.closeAllConnections();
    await new Promise((resolve) => s?.close(resolve));
  }
  await pebble?.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * In a child process (NODE_EXTRA_CA_CERTS is read at start-up only), the built transport and
 * directory reader GET each URL; the answer is the HTTP status or the error code, by name.
 */
async function getFromChild(
  caBundle: string | undefined,
  urls: Record<string, string>,
): Promise<Record<string, number | string>> {
  const script = `
    const { AcmeTransport } = require(${JSON.stringify(path.join(ROOT, 'dist/acme/transport.js'))});
    const { fetchDirectoryInfo } = require(${JSON.stringify(path.join(ROOT, 'dist/acme/ari.js'))});
    const { readFileSync } = require('node:fs');
    (async () => {
      const caBundle = process.env.TEST_CA_BUNDLE || undefined;
      const t = await AcmeTransport.create({ caBundle, requestTimeoutMs: 10000 });
      const ca = caBundle ? readFileSync(caBundle, 'utf8') : undefined;
      const out = {};
      for (const [name, url] of Object.entries(JSON.parse(process.env.TEST_URLS))) {
        out['transport ' + name] = await t.send({ url, method: 'GET' }).then((r) => r.status, (e) => e.code);
        // The directory and ARI reader (no agent): the same trust.
        out['ari ' + name] = await fetchDirectoryInfo(url, { ca, timeoutMs: 10000 }).then(
          () => 200,
          (e) => (e.cause && e.cause.code) || e.code,
        );
      }
      t.close();
      process.stdout.write(JSON.stringify(out));
    })();
  `;
  const child = spawn(process.execPath, ['-e', script], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_EXTRA_CA_CERTS: extraCaPath,
      TEST_URLS: JSON.stringify(urls),
      ...(caBundle ? { TEST_CA_BUNDLE: caBundle } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`child exited ${code}: ${stderr}`);
  return JSON.parse(stdout) as Record<string, number | string>;
}

describe('acme.caBundle adds to the default roots', () => {
  test('with the bundle: the CA behind it and a server trusted through the default roots both work; a stranger does not', async () => {
    const got = await getFromChild(pebble.tlsCaPath, {
      ca: pebble.directoryUrl,
      extra: urlOf(extraServer),
      stranger: urlOf(strangerServer),
    });
    expect(got).toEqual({
      'transport ca': 200,
      'ari ca': 200,
      'transport extra': 200,
      // The extra server's answer is not a directory, but TLS was accepted: the reader got to the body.
      'ari extra': 200,
      'transport stranger': 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ari stranger': 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  test('without the bundle the private CA is refused and the default roots still apply', async () => {
    const got = await getFromChild(undefined, { ca: pebble.directoryUrl, extra: urlOf(extraServer) });
    expect(got).toEqual({
      'transport ca': 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ari ca': 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'transport extra': 200,
      'ari extra': 200,
    });
  });
});

describe('a CA whose TLS certificate is not trusted', () => {
  const settings = (): AcmeSettings => ({
    directoryUrl: pebble.directoryUrl,
    termsAgreed: true,
    requestTimeoutMs: 10_000,
  });

  test('the ACME operation names the directory URL and suggests acme.caBundle', async () => {
    const adapter = await AcmeAdapter.open(
      settings(),
      { keyPem: await generatePrivateKey('ec-p256') },
      silentLogger,
    );
    try {
      const err = await adapter
        .register(AbortSignal.timeout(10_000), { termsOfServiceAgreed: true })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ACME_NETWORK', retryable: false });
      const message = (err as Error).message;
      expect(message).toContain(`the TLS certificate of the CA at ${pebble.directoryUrl} is not trusted`);
      expect(message).toContain('set acme.caBundle to its PEM file');
    } finally {
      adapter.close();
    }
  });

  test('so does the directory read of the renewal plan', async () => {
    const err = await fetchDirectoryInfo(pebble.directoryUrl, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ACME_NETWORK', retryable: false });
    expect((err as Error).message).toMatch(
      new RegExp(
        `^acme: directory ${pebble.directoryUrl.replace(/[.?]/g, '\\$&')}: TLS error: .*the CA at .* is not trusted.*acme\\.caBundle`,
      ),
    );
  });
});
