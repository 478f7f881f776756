import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { EtcdSettings } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { EtcdClient } from '../../src/store/etcd/client';
import { createEtcdBackend } from '../../src/store/etcd';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';

/**
 * `storage.backend: etcd` from the configuration to a working backend: the options and their
 * errors, then a TLS cluster with client certificates and auth reached through secret files.
 */
jest.setTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-etcd-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function file(content: string, mode = 0o600, ext = ''): string {
  const p = path.join(dir, `f-${++counter}${ext}`);
  fs.writeFileSync(p, content, { mode });
  fs.chmodSync(p, mode);
  return p;
}

async function load(storage: Record<string, unknown>): Promise<EtcdSettings | undefined> {
  const config = await loadConfig({
    path: file(stringify({ storage, watch: { files: [] } }), 0o644, '.yaml'),
    env: {},
  });
  return config.storage.etcd;
}

async function problems(storage: Record<string, unknown>): Promise<string> {
  const err = await load(storage).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
  return (err as Error).message;
}

const keyFile = (): string => file(crypto.randomBytes(32).toString('base64'));

describe('storage.etcd options', () => {
  test('accepted and normalised: prefix ends with "/", durations in ms, defaults filled in', async () => {
    const k = keyFile();
    const etcd = await load({
      backend: 'etcd',
      etcd: {
        endpoints: ['https://10.0.0.1:2379/', 'http://127.0.0.1:2379'],
        prefix: '/fleet-a',
        encryptionKeys: [{ id: 'k1', file: k }],
        requestTimeout: '2s',
        lockLease: '3s',
      },
    });
    expect(etcd).toEqual({
      endpoints: ['https://10.0.0.1:2379', 'http://127.0.0.1:2379'],
      prefix: '/fleet-a/',
      encryptionKeys: [{ id: 'k1', file: k }],
      requestTimeoutMs: 2000,
      retryForMs: 15_000,
      lockLeaseMs: 3_000,
    });
    // The file backend ignores the section.
    expect(await load({ etcd: { endpoints: ['https://x:2379'] } })).toBeUndefined();
  });

  test('each problem at its path', async () => {
    const text = await problems({
      backend: 'etcd',
      etcd: {
        endpoints: ['http://10.0.0.1:2379'],
        certFile: '/etc/c.pem',
        user: 'certpilot',
        encryptionKeys: [{ id: 'k1', file: 'relative' }],
        lockLease: '500ms',
        colour: 'blue',
      },
    });
    expect(text).toMatch(/storage\.etcd\.endpoints: .*would send credentials in the clear/);
    expect(text).toContain('storage.etcd.keyFile: certFile and keyFile go together');
    expect(text).toContain('storage.etcd.password_file: user and password_file go together');
    expect(text).toMatch(/storage\.etcd\.encryptionKeys: .*absolute/);
    expect(text).toContain('storage.etcd.colour: unknown option');
    expect(text).toContain('storage.etcd.lockLease: must be at least 2s');
    const missing = await problems({ backend: 'etcd', etcd: {} });
    expect(missing).toContain('storage.etcd.endpoints: is required');
    expect(missing).toContain('storage.etcd.encryptionKeys: is required');
    expect(await problems({ backend: 'consul' })).toContain('storage.backend: must be "file" or "etcd"');
  });
});

describe('a TLS cluster with client certificates and auth, through secret files', () => {
  let cluster: EtcdCluster;
  let settings: EtcdSettings;
  const password = crypto.randomBytes(12).toString('hex');

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1, tls: true });
    const tls = cluster.tls!;
    // Auth on, with a user certpilot limited to its prefix (root is required to enable auth).
    const admin = new EtcdClient({
      endpoints: cluster.endpoints,
      credentials: () => Promise.resolve({ tls: { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem } }),
    });
    const rootPassword = crypto.randomBytes(12).toString('hex');
    await admin.call('/v3/auth/role/add', { name: 'root' });
    await admin.call('/v3/auth/user/add', { name: 'root', password: rootPassword });
    await admin.call('/v3/auth/user/grant', { user: 'root', role: 'root' });
    await admin.call('/v3/auth/role/add', { name: 'certpilot' });
    await admin.call('/v3/auth/role/grant', {
      name: 'certpilot',
      perm: {
        permType: 'READWRITE',
        key: Buffer.from('/tls/').toString('base64'),
        range_end: Buffer.from('/tls0').toString('base64'),
      },
    });
    await admin.call('/v3/auth/user/add', { name: 'certpilot', password });
    await admin.call('/v3/auth/user/grant', { user: 'certpilot', role: 'certpilot' });
    await admin.call('/v3/auth/enable', {});
    admin.close();
    settings = {
      endpoints: cluster.endpoints,
      prefix: '/tls/',
      caFile: file(tls.caPem, 0o644),
      certFile: file(tls.certPem, 0o644),
      keyFile: file(tls.keyPem),
      user: 'certpilot',
      passwordFile: file(password),
      encryptionKeys: [{ id: 'k1', file: keyFile() }],
      requestTimeoutMs: 2_000,
      retryForMs: 2_000,
      lockLeaseMs: 5_000,
    };
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('storage and locks work over https with a client certificate and a password', async () => {
    const backend = createEtcdBackend(settings);
    await backend.storage.put('certs/www/privkey.pem', 'sealed');
    expect((await backend.storage.get('certs/www/privkey.pem'))?.toString()).toBe('sealed');
    const lock = (await backend.locker.acquire('www', { wait: false, leaseMs: 5_000 }))!;
    await backend.storage.put('certs/www/cert.pem', 'fenced', { lock, mode: 0o644 });
    await lock.release();
    backend.close();
  });

  test('a wrong password, a key file others can read, no client certificate: clear errors, no secrets in them', async () => {
    const wrong = createEtcdBackend({ ...settings, passwordFile: file('not-the-password') });
    const err = (await wrong.storage.get('certs/www/privkey.pem').catch((e: unknown) => e)) as CertpilotError;
    expect(err).toMatchObject({ code: 'STORE_IO', retryable: false });
    expect(err.message).toContain('authentication failed');
    expect(err.message).not.toContain('not-the-password');
    wrong.close();

    const looseKey = crypto.randomBytes(32).toString('base64');
    const loose = file(looseKey, 0o644);
    const open = createEtcdBackend({ ...settings, encryptionKeys: [{ id: 'k1', file: loose }] });
    const looseErr = (await open.storage.put('certs/x', 'v').catch((e: unknown) => e)) as CertpilotError;
    expect(looseErr).toMatchObject({ code: 'STORE_IO' });
    expect(looseErr.message).toContain(`${loose} is readable by others`);
    expect(looseErr.message).not.toContain(looseKey);
    open.close();

    const { certFile: _c, keyFile: _k, ...noCert } = settings;
    const anonymous = createEtcdBackend(noCert);
    const tlsErr = (await anonymous.storage.get('certs/x').catch((e: unknown) => e)) as CertpilotError;
    expect(tlsErr).toMatchObject({ code: 'STORE_IO', details: { unavailable: true } });
    anonymous.close();
  });
});
