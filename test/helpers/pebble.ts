import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './ports';

const execFileP = promisify(execFile);

export interface PebbleOptions {
  /** DNS server Pebble's validator queries, "127.0.0.1:PORT". */
  dnsServer: string;
  /** Lifetime of issued certificates in seconds (Pebble's certificateValidityPeriod). */
  certificateValidityPeriod?: number;
  /** Extra environment (e.g. PEBBLE_AUTHZREUSE, PEBBLE_ALTERNATE_ROOTS). */
  env?: Record<string, string>;
  /** External Account Binding required, with these key ids and base64url HMAC keys. */
  eabKeys?: Record<string, string>;
  /** More DNS names for Pebble's own HTTPS certificate (a directory URL by name, a test server reusing it). */
  extraSans?: readonly string[];
}

export interface Pebble {
  /** ACME directory URL. */
  directoryUrl: string;
  /** Management API base URL (roots, intermediates). */
  managementUrl: string;
  /** PEM of the CA that signed Pebble's own HTTPS certificate: trust it for the ACME API. */
  tlsCaPem: string;
  /** Path of the same PEM on disk (for `acme.caBundle`). */
  tlsCaPath: string;
  /** Pebble's own HTTPS certificate and key (localhost, 127.0.0.1), e.g. for a test proxy in front of it. */
  tlsCertPath: string;
  tlsKeyPath: string;
  /** Pebble's current issuing root (it changes at every start). */
  issuingRoot(): Promise<string>;
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileP('openssl', args, { cwd });
}

/**
 * Starts the Debian `pebble` binary on free loopback ports with a freshly made TLS certificate.
 * Resolves when Pebble prints that its directory is available (an event, not a sleep).
 */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-pebble-'));
  // Pebble ships no TLS certificate for itself: make a CA and a localhost certificate.
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=certpilot test Pebble TLS CA',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'req.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  await writeFile(
    path.join(dir, 'ext.cnf'),
    `subjectAltName=${['DNS:localhost', ...(opts.extraSans ?? []).map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',')}\nbasicConstraints=CA:FALSE\n`,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'req.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );

  const [port, mgmtPort, httpPort, tlsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: path.join(dir, 'cert.pem'),
      privateKey: path.join(dir, 'key.pem'),
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: opts.eabKeys !== undefined,
      ...(opts.eabKeys ? { externalAccountMACKeys: opts.eabKeys } : {}),
      ...(opts.certificateValidityPeriod
        ? { certificateValidityPeriod: opts.certificateValidityPeriod }
        : {}),
    },
  };
  await writeFile(path.join(dir, 'pebble.json'), JSON.stringify(config));

  const child: ChildProcess = spawn(
    'pebble',
    ['-config', path.join(dir, 'pebble.json'), '-dnsserver', opts.dnsServer],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
        PEBBLE_AUTHZREUSE: '0',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('ACME directory available')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`pebble exited (${code}) before it was ready:\n${output}`)),
    );
  });
  // Keep draining output so Pebble never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  // The "ACME directory available" line can come before the port accepts connections, and a
  // client that connected at once was refused (ECONNREFUSED once in CI). Wait for both ports.
  await Promise.all([waitForPort(port), waitForPort(mgmtPort)]);

  const tlsCaPath = path.join(dir, 'ca.pem');
  const { readFile } = await import('node:fs/promises');
  const tlsCaPem = await readFile(tlsCaPath, 'utf8');
  const managementUrl = `https://127.0.0.1:${mgmtPort}`;

  return {
    directoryUrl: `https://127.0.0.1:${port}/dir`,
    managementUrl,
    tlsCaPem,
    tlsCaPath,
    tlsCertPath: path.join(dir, 'cert.pem'),
    tlsKeyPath: path.join(dir, 'key.pem'),
    issuingRoot: () => httpsGet(`${managementUrl}/roots/0`, tlsCaPem),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}
