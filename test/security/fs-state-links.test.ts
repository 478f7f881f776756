import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertpilotError } from '../../src/core/errors';
import { FileStorage } from '../../src/store/file-storage';

/**
 * Below the state directory certpilot follows no symbolic link but its own pointers, and those
 * only to keys inside the directory. A link planted there (by a restore from a careless backup,
 * or by whoever got write access) must neither redirect a write nor feed a read from elsewhere.
 */
let base: string;
let outside: string;
let storage: FileStorage;

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-fs-state-'));
  outside = path.join(base, 'outside');
  fs.mkdirSync(outside, { mode: 0o700 });
  fs.writeFileSync(path.join(outside, 'privkey.pem'), 'not ours');
  storage = new FileStorage(path.join(base, 'state'));
});
afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<CertpilotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

test('a planted directory link redirects no write and feeds no read', async () => {
  await storage.put('certs/www/versions/1/cert.pem', 'one');
  fs.symlinkSync(outside, path.join(base, 'state', 'certs', 'www', 'versions', '2'));
  const write = await failure(storage.put('certs/www/versions/2/privkey.pem', 'ours'));
  expect(write.code).toBe('STORE_IO');
  expect(fs.readFileSync(path.join(outside, 'privkey.pem'), 'utf8')).toBe('not ours');
  expect(fs.readdirSync(outside)).toEqual(['privkey.pem']);
  const read = await failure(storage.get('certs/www/versions/2/privkey.pem'));
  expect(read.message).toContain('points outside');
});

test('a planted file link is replaced, not written through, and is not read through', async () => {
  const dir = path.join(base, 'state', 'certs', 'www');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.symlinkSync(path.join(outside, 'privkey.pem'), path.join(dir, 'privkey.pem'));
  expect((await failure(storage.get('certs/www/privkey.pem'))).message).toContain('points outside');
  await storage.put('certs/www/privkey.pem', 'ours');
  expect(fs.lstatSync(path.join(dir, 'privkey.pem')).isFile()).toBe(true);
  expect(fs.readFileSync(path.join(outside, 'privkey.pem'), 'utf8')).toBe('not ours');
});

test('the store’s own pointers still resolve, through two hops', async () => {
  await storage.put('certs/www/versions/1/cert.pem', 'one');
  await storage.setPointer('certs/www/current', 'certs/www/versions/1');
  await storage.setPointer('certs/www/cert.pem', 'certs/www/current/cert.pem');
  expect((await storage.get('certs/www/cert.pem'))?.toString()).toBe('one');
  expect(await storage.stat('certs/www/cert.pem')).toMatchObject({ size: 3 });
});
