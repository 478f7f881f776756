import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileStorage } from '../../src/store/file-storage';
import { FileLocker } from '../../src/store/lock';
import { supportsPointers } from '../../src/store/storage';
import { runStorageConformance } from './conformance';

runStorageConformance('FileStorage + FileLocker', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'certpilot-storage-conf-'));
  return {
    storage: new FileStorage(root),
    // Two lockers in one process stand for two processes: a lock file of a live pid is held.
    lockers: [new FileLocker(root), new FileLocker(root)],
    teardown: () => rm(root, { recursive: true, force: true }),
  };
});

describe('FileStorage specifics', () => {
  let root: string;
  let storage: FileStorage;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'certpilot-storage-'));
    storage = new FileStorage(path.join(root, 'state'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const modeOf = (p: string): number => fs.statSync(p).mode & 0o777;

  test('keys are paths under the root: values 0600 unless asked, directories 0700', async () => {
    await storage.put('certs/www/privkey.pem', 'secret');
    await storage.put('certs/www/cert.pem', 'public', { mode: 0o644 });
    const dir = path.join(root, 'state', 'certs', 'www');
    expect(fs.readFileSync(path.join(dir, 'privkey.pem'), 'utf8')).toBe('secret');
    expect(modeOf(path.join(dir, 'privkey.pem'))).toBe(0o600);
    expect(modeOf(path.join(dir, 'cert.pem'))).toBe(0o644);
    for (const d of ['state', 'state/certs', 'state/certs/www'])
      expect(modeOf(path.join(root, d))).toBe(0o700);
    expect(storage.locate('certs/www/cert.pem')).toBe(path.join(dir, 'cert.pem'));
    expect(storage.keyAt(path.join(root, 'elsewhere'))).toBeNull();
    expect(fs.readdirSync(dir).sort()).toEqual(['cert.pem', 'privkey.pem']);
  });

  test('pointers are relative symlinks swapped by rename; reads resolve through them', async () => {
    expect(supportsPointers(storage)).toBe(true);
    await storage.put('certs/www/versions/1/cert.pem', 'one');
    await storage.put('certs/www/versions/2/cert.pem', 'two');
    await storage.setPointer('certs/www/current', 'certs/www/versions/1');
    await storage.setPointer('certs/www/cert.pem', 'certs/www/current/cert.pem');
    const dir = path.join(root, 'state', 'certs', 'www');
    expect(fs.readlinkSync(path.join(dir, 'current'))).toBe('versions/1');
    expect(fs.readlinkSync(path.join(dir, 'cert.pem'))).toBe('current/cert.pem');
    expect((await storage.get('certs/www/cert.pem'))?.toString()).toBe('one');
    await storage.setPointer('certs/www/current', 'certs/www/versions/2');
    expect((await storage.get('certs/www/cert.pem'))?.toString()).toBe('two');
    expect(await storage.getPointer('certs/www/current')).toBe('certs/www/versions/2');
    await expect(storage.getPointer('certs/www/versions/1/cert.pem')).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    // Recursive listings do not descend into pointers.
    expect(await storage.list('certs/www', { recursive: true })).toEqual([
      'cert.pem',
      'current',
      'versions/1/cert.pem',
      'versions/2/cert.pem',
    ]);
  });

  test('a pointer loop is an error, a dangling pointer reads as absent', async () => {
    await storage.put('certs/www/versions/1/cert.pem', 'one');
    const dir = path.join(root, 'state', 'certs', 'www');
    fs.symlinkSync('b', path.join(dir, 'a'));
    fs.symlinkSync('a', path.join(dir, 'b'));
    await expect(storage.get('certs/www/a/cert.pem')).rejects.toThrow(
      /too many pointers at .*certs\/www\/[ab]/,
    );
    await expect(storage.get('certs/www/a')).rejects.toThrow(/too many pointers/);
    fs.symlinkSync('versions/9', path.join(dir, 'current'));
    expect(await storage.get('certs/www/current/cert.pem')).toBeNull();
    expect(await storage.stat('certs/www/current/cert.pem')).toBeNull();
    // A pointer to a pointer to a directory, then a file below it.
    fs.symlinkSync('versions/1', path.join(dir, 'v1'));
    fs.symlinkSync('v1', path.join(dir, 'latest'));
    expect((await storage.get('certs/www/latest/cert.pem'))?.toString()).toBe('one');
  });

  test('temp entries a crash left are never listed, and sweep removes them', async () => {
    await storage.put('journal/www.json', '{}');
    const dir = path.join(root, 'state', 'journal');
    fs.writeFileSync(path.join(dir, '.www.json.tmp-1-abc'), 'half');
    fs.mkdirSync(path.join(dir, '.old.tmp-del-1-abc'));
    expect(await storage.list('journal')).toEqual(['www.json']);
    await storage.sweep('journal');
    expect(fs.readdirSync(dir)).toEqual(['www.json']);
  });

  test('a failed put leaves the old value and no temp file (ENOENT parent made into a file)', async () => {
    await storage.put('a/b', 'old');
    fs.writeFileSync(path.join(root, 'state', 'x'), 'a file where a directory is needed');
    await expect(storage.put('x/y', 'v')).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(fs.readdirSync(path.join(root, 'state')).sort()).toEqual(['a', 'x']);
    expect((await storage.get('a/b'))?.toString()).toBe('old');
  });
});

describe('a FIFO where a value should be', () => {
  test('fails the read at once instead of blocking the process', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-fifo-'));
    try {
      const storage = new FileStorage(root);
      await storage.put('certs/www/state.json', '{}');
      fs.rmSync(path.join(root, 'certs', 'www', 'state.json'));
      execFileSync('mkfifo', [path.join(root, 'certs', 'www', 'state.json')]);
      await expect(storage.get('certs/www/state.json')).rejects.toMatchObject({ code: 'STORE_IO' });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
