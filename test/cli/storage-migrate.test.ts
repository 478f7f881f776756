import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { EtcdSettings } from '../../src/config/types';
import { StateStore, emptyState } from '../../src/state/store';
import { CertStore, type CertificateFiles } from '../../src/store/cert-store';
import { createEtcdBackend, type EtcdBackend } from '../../src/store/etcd';
import { b64, prefixEnd } from '../../src/store/etcd/client';
import { FileStorage } from '../../src/store/file-storage';
import { readPointer } from '../../src/store/storage';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';
import { runCli } from '../helpers/testbed';

/**
 * `certpilot storage migrate`: a host's file store copied into a real etcd cluster and back,
 * dry run first, idempotent, verified, the source left as it was, conflicts refused.
 */
jest.setTimeout(60_000);

const ca = makeCa();
const DAY = 86_400_000;
function issue(name: string): CertificateFiles {
  const pair = makeCertificate({
    names: [`${name}.example.test`],
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 89 * DAY),
    issuer: ca,
  });
  return { cert: pair.certPem, chain: ca.certPem, fullchain: pair.certPem + ca.certPem, key: pair.keyPem };
}

let cluster: EtcdCluster;
let dir: string;
let settings: EtcdSettings;
let backend: EtcdBackend;

beforeAll(async () => {
  cluster = await startEtcdCluster({ size: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-migrate-'));
  const keyFile = path.join(dir, 'k1.key');
  fs.writeFileSync(keyFile, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  settings = {
    endpoints: cluster.endpoints,
    prefix: '/migrate/',
    encryptionKeys: [{ id: 'k1', file: keyFile }],
    requestTimeoutMs: 2_000,
    retryForMs: 5_000,
    lockLeaseMs: 5_000,
  };
  backend = createEtcdBackend(settings);
});
afterAll(async () => {
  backend?.close();
  await cluster?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function configFor(stateDir: string): string {
  const file = path.join(dir, `${path.basename(stateDir)}.yaml`);
  const etcd = {
    endpoints: settings.endpoints,
    prefix: settings.prefix,
    encryptionKeys: settings.encryptionKeys,
    lockLease: '5s',
  };
  fs.writeFileSync(file, stringify({ storage: { stateDir, backend: 'etcd', etcd }, watch: { files: [] } }));
  return file;
}

/** Every file and symlink under `root`: path -> content or link target, and mode. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(root, p);
      if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) walk(p);
      else out[rel] = `${(fs.statSync(p).mode & 0o777).toString(8)} ${fs.readFileSync(p, 'base64')}`;
    }
  };
  walk(root);
  return out;
}

/** mod_revision of every key certpilot's store wrote under the prefix (locks left out). */
async function written(): Promise<Record<string, string>> {
  const res = await backend.client.call<{ kvs?: { key: string; mod_revision: string }[] }>('/v3/kv/range', {
    key: b64(settings.prefix),
    range_end: b64(prefixEnd(settings.prefix)),
    keys_only: true,
  });
  const out: Record<string, string> = {};
  for (const kv of res.kvs ?? []) {
    const key = Buffer.from(kv.key, 'base64').toString();
    if (!key.includes('/.locks/')) out[key] = kv.mod_revision;
  }
  return out;
}

async function revision(): Promise<string> {
  const res = await backend.client.call<{ header: { revision: string } }>('/v3/kv/range', {
    key: b64('/'),
    range_end: b64(prefixEnd('/')),
    count_only: true,
  });
  return res.header.revision;
}

test('file -> etcd: dry run writes nothing; the copy reads the same; a second run copies nothing; the file store is untouched', async () => {
  const stateDir = path.join(dir, 'host');
  const files = new CertStore({ stateDir, archiveDepth: 3 });
  await files.install('www', issue('www'));
  await files.install('www', issue('www')); // the first version goes to the archive
  await files.install('api', issue('api'));
  const served = (await files.readInfo('www'))!;
  await new StateStore(stateDir).write({
    ...emptyState('www'),
    lastSuccess: { at: new Date(), serial: served.serial, notAfter: served.notAfter },
  });
  const config = configFor(stateDir);
  const before = snapshot(stateDir);

  const at = await revision();
  const dry = await runCli(['storage', 'migrate', '--to', 'etcd', '--dry-run', '--config', config]);
  expect(dry).toMatchObject({ code: 0 });
  expect(dry.stdout).toMatch(/^www\s+would-copy\s+\d+ keys$/m);
  expect(dry.stdout).toContain('dry run: nothing was written');
  expect(await revision()).toBe(at);

  const run = await runCli(['storage', 'migrate', '--to', 'etcd', '--json', '--config', config]);
  expect(run).toMatchObject({ code: 0 });
  const result = JSON.parse(run.stdout) as {
    certificates: { name: string; status: string; keys: string[] }[];
  };
  expect(result.certificates.map((c) => [c.name, c.status])).toEqual([
    ['api', 'copied'],
    ['www', 'copied'],
  ]);
  const www = result.certificates.find((c) => c.name === 'www')!.keys;
  expect(www).toEqual(expect.arrayContaining(['state/www.json', 'certs/www/current']));
  expect(www.at(-1)).toBe('certs/www/current');
  // The file backend's stable links are for programs reading files: not copied.
  expect(www).not.toContain('certs/www/fullchain.pem');

  const shared = new CertStore({ stateDir: '/nonexistent', archiveDepth: 3, storage: backend.storage });
  for (const name of ['www', 'api']) {
    const [a, b] = [await files.read(name), await shared.read(name)];
    expect(b?.info.serial).toBe(a?.info.serial);
    expect(b?.key).toBe(a?.key);
    expect(b?.fullchain).toBe(a?.fullchain);
  }
  expect(await shared.listArchive('www')).toHaveLength(1);
  expect((await new StateStore('/nonexistent', backend.storage).read('www')).state).toEqual(
    (await new StateStore(stateDir).read('www')).state,
  );
  // Private keys and state are sealed in the cluster, certificates are not.
  const current = (await readPointer(backend.storage, 'certs/www/current'))!;
  expect(await backend.storage.sealed(`${current}/privkey.pem`)).toBe(true);
  expect(await backend.storage.sealed('state/www.json')).toBe(true);
  expect(await backend.storage.sealed(`${current}/cert.pem`)).toBe(false);

  const again = await runCli(['storage', 'migrate', '--to', 'etcd', '--config', config]);
  expect(again).toMatchObject({ code: 0 });
  expect(again.stdout).toMatch(/^www\s+unchanged\s+already there$/m);
  const settled = await written();
  await runCli(['storage', 'migrate', '--to', 'etcd', '--config', config]);
  expect(await written()).toEqual(settled);
  expect(snapshot(stateDir)).toEqual(before);
});

test('a certificate the cluster holds with other content is a conflict and is not copied', async () => {
  const stateDir = path.join(dir, 'other-host');
  await new CertStore({ stateDir, archiveDepth: 3 }).install('www', issue('www'));
  const shared = new CertStore({ stateDir: '/nonexistent', archiveDepth: 3, storage: backend.storage });
  const live = (await shared.readInfo('www'))!.serial;
  const before = await written();
  const res = await runCli(['storage', 'migrate', '--to', 'etcd', '--config', configFor(stateDir)]);
  expect(res).toMatchObject({ code: 1 });
  expect(res.stdout).toMatch(/^www\s+conflict\s+the destination already holds other content at /m);
  expect(await written()).toEqual(before);
  expect((await shared.readInfo('www'))!.serial).toBe(live);
});

test('etcd -> file: a fresh state directory gets the certificates, the files programs read and the modes', async () => {
  const stateDir = path.join(dir, 'back');
  const res = await runCli(['storage', 'migrate', '--to', 'file', '--config', configFor(stateDir)]);
  expect(res).toMatchObject({ code: 0 });
  const shared = new CertStore({ stateDir: '/nonexistent', archiveDepth: 3, storage: backend.storage });
  const files = new CertStore({ stateDir, archiveDepth: 3 });
  const [a, b] = [await shared.read('www'), await files.read('www')];
  expect(b?.info.serial).toBe(a?.info.serial);
  expect(b?.key).toBe(a?.key);
  expect(fs.readFileSync(path.join(stateDir, 'certs/www/fullchain.pem'), 'utf8')).toBe(a?.fullchain);
  expect(fs.lstatSync(path.join(stateDir, 'certs/www/fullchain.pem')).isSymbolicLink()).toBe(true);
  const storage = new FileStorage(stateDir);
  const version = storage.keyAt(fs.realpathSync(path.join(stateDir, 'certs/www/current')))!;
  expect(fs.statSync(storage.locate(`${version}/privkey.pem`)).mode & 0o777).toBe(0o600);
  expect(fs.statSync(storage.locate(`${version}/cert.pem`)).mode & 0o777).toBe(0o644);
  expect((await new StateStore(stateDir).read('www')).state.lastSuccess?.serial).toBe(a?.info.serial);
});
