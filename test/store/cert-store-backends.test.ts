import fs from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { CertStore, type CertificateFiles } from '../../src/store/cert-store';
import { FileStorage } from '../../src/store/file-storage';
import { FileLocker } from '../../src/store/lock';
import { supportsPointers, type Storage } from '../../src/store/storage';
import { parseCertificate } from '../../src/x509';
import { makeCa, makeCertificate } from '../helpers/certs';

/**
 * CertStore over backends other than the default: one without the pointer capability (what an
 * etcd backend looks like to the store) and fenced installs under a lock.
 */

/** The file backend with its pointer capability hidden: `current` must become a plain key. */
function withoutPointers(inner: FileStorage): Storage {
  return {
    put: (k, v, o) => inner.put(k, v, o),
    get: (k, o) => inner.get(k, o),
    stat: (k, o) => inner.stat(k, o),
    list: (k, o) => inner.list(k, o),
    delete: (k, o) => inner.delete(k, o),
    locate: (k) => inner.locate(k),
    keyAt: (l) => inner.keyAt(l),
    sweep: (k, o) => inner.sweep(k, o),
  };
}

const ca = makeCa();
const DAY = 86_400_000;
function issue(): CertificateFiles {
  const pair = makeCertificate({
    names: ['example.test'],
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 89 * DAY),
    issuer: ca,
  });
  return { cert: pair.certPem, chain: ca.certPem, fullchain: pair.certPem + ca.certPem, key: pair.keyPem };
}
const serial = (f: CertificateFiles): string => parseCertificate(f.cert).serial;

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-backends-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('a backend without pointers keeps `current` as a plain key: install, archive, read, roll back', async () => {
  const storage = withoutPointers(new FileStorage(root));
  expect(supportsPointers(storage)).toBe(false);
  let t = Date.parse('2026-11-01T00:00:00Z');
  const store = new CertStore({
    stateDir: root,
    archiveDepth: 2,
    storage,
    clock: { now: () => new Date((t += 1000)) },
  });
  const [v1, v2] = [issue(), issue()];
  await store.install('site', v1);
  const { archived } = await store.install('site', v2);

  const current = (await storage.get('certs/site/current'))!.toString().trim();
  expect(current).toMatch(/^certs\/site\/versions\/\d{8}T\d{6}\.\d{3}Z-[0-9A-F]+$/i);
  expect(fs.lstatSync(path.join(root, 'certs', 'site', 'current')).isFile()).toBe(true);
  // No stable links: nothing reads such a backend directly.
  expect(await storage.list('certs/site')).toEqual(['current', 'versions']);
  expect((await store.read('site'))?.info.serial).toBe(serial(v2));
  expect((await store.readInfo('site'))?.serial).toBe(serial(v2));
  expect(await store.listArchive('site')).toEqual([archived]);

  await store.activate('site', archived!);
  expect((await store.read('site'))?.key).toBe(v1.key);
  expect(await storage.list('certs/site/versions')).toHaveLength(1);
});

test('an archive entry a crash left incomplete is not listed, and the next install removes it', async () => {
  const storage = new FileStorage(root);
  const store = new CertStore({ stateDir: root, archiveDepth: 3 });
  await store.install('site', issue());
  await storage.put('archive/site/20261101T000000.000Z-AB/cert.pem', 'half an entry');
  expect(await store.listArchive('site')).toEqual([]);
  const { archived } = await store.install('site', issue());
  expect(await store.listArchive('site')).toEqual([archived]);
  expect(await storage.list('archive/site')).toEqual([path.basename(archived!)]);
});

test('an install fenced on a lock that was lost fails with LOCKED and leaves the live version', async () => {
  const locker = new FileLocker(root);
  const store = new CertStore({ stateDir: root, archiveDepth: 3 });
  const v1 = issue();
  const first = (await locker.acquire('site', { wait: false, leaseMs: 60_000 }))!;
  await store.install('site', v1, [], { lock: first });
  await first.release();

  const held = (await locker.acquire('site', { wait: false, leaseMs: 300 }))!;
  if (!held.signal.aborted) await once(held.signal, 'abort');
  const taker = (await new FileLocker(root).acquire('site', { wait: false }))!;
  expect(taker).not.toBeNull();
  await expect(store.install('site', issue(), [], { lock: held })).rejects.toMatchObject({
    code: 'LOCKED',
    details: { lost: true },
  });
  expect((await store.read('site'))?.key).toBe(v1.key);
  expect(await store.listArchive('site')).toEqual([]);
  await taker.release();
});
