import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertpilotError } from '../../src/core/errors';
import { atomicWriteFile, ensureDir, prepareAtomicWrite } from '../../src/store/atomic';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-atomic-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const modeOf = (p: string): number => fs.statSync(p).mode & 0o777;

/** Runs `fn` with a umask, restoring the previous one; shows modes are exact, not umask-filtered. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

describe('atomicWriteFile', () => {
  it.each([
    { mode: 0o600, umask: 0o022 },
    { mode: 0o644, umask: 0o077 },
    { mode: 0o640, umask: 0o000 },
  ])('creates a file with exactly mode $mode under umask $umask', async ({ mode, umask }) => {
    const target = path.join(dir, 'file.pem');
    await withUmask(umask, () => atomicWriteFile(target, 'hello\n', { mode }));
    expect(fs.readFileSync(target, 'utf8')).toBe('hello\n');
    expect(modeOf(target)).toBe(mode);
    expect(fs.readdirSync(dir)).toEqual(['file.pem']);
  });

  it('replaces an existing file and its mode', async () => {
    const target = path.join(dir, 'key.pem');
    fs.writeFileSync(target, 'old', { mode: 0o644 });
    await atomicWriteFile(target, Buffer.from('new'), { mode: 0o600 });
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    expect(modeOf(target)).toBe(0o600);
  });

  it('an interrupted write leaves the old file byte-identical and no temp file', async () => {
    const target = path.join(dir, 'privkey.pem');
    const old = crypto.randomBytes(4096);
    fs.writeFileSync(target, old, { mode: 0o600 });
    const boom = new Error('power cut');
    let seenTemp: string[] = [];
    const err = await atomicWriteFile(target, crypto.randomBytes(4096), {
      mode: 0o600,
      beforeRename: () => {
        seenTemp = fs.readdirSync(dir).filter((e) => e !== 'privkey.pem');
        throw boom;
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect((err as CertpilotError).code).toBe('STORE_IO');
    expect((err as Error).message).toMatch(/^store: cannot write .*privkey\.pem: power cut$/);
    expect((err as Error).cause).toBe(boom);
    // The temp file existed (same directory) at the moment of the fault, and is gone now.
    expect(seenTemp).toHaveLength(1);
    expect(fs.readFileSync(target).equals(old)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['privkey.pem']);
  });

  it('an async fault hook is awaited', async () => {
    const target = path.join(dir, 'a');
    fs.writeFileSync(target, 'old');
    await expect(
      atomicWriteFile(target, 'new', {
        mode: 0o600,
        beforeRename: async () => Promise.reject(new Error('later')),
      }),
    ).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(fs.readFileSync(target, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toEqual(['a']);
  });

  it('the temp file of a key already has the final mode before any rename', async () => {
    const target = path.join(dir, 'privkey.pem');
    let tempMode = -1;
    await withUmask(0o000, () =>
      atomicWriteFile(target, 'secret', {
        mode: 0o600,
        beforeRename: () => {
          const [temp] = fs.readdirSync(dir);
          tempMode = modeOf(path.join(dir, temp));
        },
      }),
    );
    expect(tempMode).toBe(0o600);
  });

  it('fails with STORE_IO when the directory does not exist', async () => {
    await expect(atomicWriteFile(path.join(dir, 'missing', 'f'), 'x', { mode: 0o600 })).rejects.toMatchObject(
      {
        code: 'STORE_IO',
        message: expect.stringMatching(/^store: cannot write /),
      },
    );
  });

  it('chowns the file when asked', async () => {
    // As root, give the file away; otherwise "chown" to ourselves, which any user may do.
    const asRoot = process.getuid?.() === 0;
    const uid = asRoot ? 65534 : (process.getuid?.() ?? 0);
    const gid = asRoot ? 65533 : (process.getgid?.() ?? 0);
    const target = path.join(dir, 'owned');
    await atomicWriteFile(target, 'x', { mode: 0o640, uid, gid });
    const st = fs.statSync(target);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([uid, gid, 0o640]);
  });

  it('prepared writes rename nothing until committed, and abort removes the temp file', async () => {
    const a = path.join(dir, 'a');
    fs.writeFileSync(a, 'old');
    const prepared = await prepareAtomicWrite(a, 'new', { mode: 0o644 });
    expect(fs.readFileSync(a, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toHaveLength(2);
    await prepared.abort();
    await prepared.abort();
    expect(fs.readdirSync(dir)).toEqual(['a']);
    const again = await prepareAtomicWrite(a, 'new', { mode: 0o644 });
    await again.commit();
    expect(fs.readFileSync(a, 'utf8')).toBe('new');
    expect(fs.readdirSync(dir)).toEqual(['a']);
  });
});

describe('ensureDir', () => {
  it('creates missing parents with exactly 0700 by default, whatever the umask', async () => {
    const deep = path.join(dir, 'a', 'b', 'c');
    await withUmask(0o022, () => ensureDir(deep));
    for (const d of [path.join(dir, 'a'), path.join(dir, 'a', 'b'), deep]) expect(modeOf(d)).toBe(0o700);
  });

  it('applies a requested mode and leaves existing directories alone', async () => {
    const existing = path.join(dir, 'existing');
    fs.mkdirSync(existing, { mode: 0o750 });
    fs.chmodSync(existing, 0o750);
    await ensureDir(path.join(existing, 'new'), 0o755);
    await ensureDir(existing);
    expect(modeOf(existing)).toBe(0o750);
    expect(modeOf(path.join(existing, 'new'))).toBe(0o755);
  });

  it('fails with STORE_IO when a file is in the way', async () => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    await expect(ensureDir(path.join(dir, 'file', 'sub'))).rejects.toMatchObject({ code: 'STORE_IO' });
  });
});
