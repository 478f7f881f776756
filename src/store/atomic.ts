import crypto from 'node:crypto';
import { constants as fsConstants, existsSync, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { CertpilotError } from '../core/errors';

/**
 * Crash-safe file replacement. A reader sees either the complete old file or the complete new
 * one, never a truncated mix, and after a power cut the file is one of the two:
 *
 *   1. create a temp file in the SAME directory (rename is only atomic within one file system)
 *      with O_EXCL (never follow or reuse something an attacker or a crashed run left there)
 *      and with the final mode, so a private key is never briefly world-readable;
 *   2. write, fsync (data on disk before the name points at it: ext4 delalloc, XFS);
 *   3. chown if asked (on the descriptor); 4. rename over the target; 5. fsync the directory so
 *      the rename survives.
 *
 * On any failure the temp file is removed and the target is left untouched.
 *
 * Writes can also go into a directory held open (`OpenDir`, from `openDirNoFollow`): every name is
 * then looked up in that very directory, so nobody can redirect the write by renaming a parent
 * or swapping it for a symlink once the directory was opened and checked. Node has no openat(2);
 * on Linux the path /proc/self/fd/<fd>/<name> gives the same lookup relative to the descriptor.
 */

export interface AtomicWriteOptions {
  mode: number;
  uid?: number;
  gid?: number;
  /**
   * Test-only fault hook, called after the temp file is written and synced and before the
   * rename. Throwing from it simulates a crash or I/O error at the worst moment.
   */
  beforeRename?: () => void | Promise<void>;
}

/** Default mode of directories certpilot creates: they hold private keys. */
export const DEFAULT_DIR_MODE = 0o700;

function storeError(message: string, cause: unknown): CertpilotError {
  if (cause instanceof CertpilotError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  // Running out of space or a busy file may clear up by the next attempt; EACCES/EROFS will not.
  const retryable = code === 'ENOSPC' || code === 'EBUSY' || code === 'EAGAIN' || code === 'EMFILE';
  return new CertpilotError('STORE_IO', `store: ${message}: ${(cause as Error)?.message ?? String(cause)}`, {
    cause,
    retryable,
  });
}

/** Temp names start with "." so directory listings (archive, outputs) can skip them. */
export function tempNameFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`,
  );
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes('.tmp-');
}

/** fsync a directory so entries created or renamed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A temp file written and synced but not yet renamed into place. Splitting prepare from commit
 * lets a caller prepare several files (cert and key of one output) and rename them back to
 * back, so the window in which a reader could pair an old key with a new certificate is as
 * small as the file system allows, and nothing is renamed at all if any preparation fails.
 */
export interface PreparedWrite {
  readonly target: string;
  readonly temp: string;
  commit(): Promise<void>;
  /** Removes the temp file; safe to call after commit or twice. */
  abort(): Promise<void>;
}

export async function prepareAtomicWrite(
  target: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
): Promise<PreparedWrite> {
  return prepareWrite(target, tempNameFor(target), target, data, opts, () => fsyncDir(path.dirname(target)));
}

/**
 * prepareAtomicWrite for the entry `name` of a directory held open: the temp file and the rename
 * are looked up in `dir` itself (see the module comment). The caller keeps `dir` open until the
 * write is committed or aborted.
 */
export async function prepareAtomicWriteIn(
  dir: OpenDir,
  name: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
): Promise<PreparedWrite> {
  const display = path.join(dir.path, name);
  const temp = path.basename(tempNameFor(display));
  return prepareWrite(display, pathIn(dir, temp), pathIn(dir, name), data, opts, () => dir.handle.sync());
}

async function prepareWrite(
  target: string,
  temp: string,
  renameTo: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
  syncDir: () => Promise<void>,
): Promise<PreparedWrite> {
  let done = false;
  const abort = async (): Promise<void> => {
    if (done) return;
    done = true;
    await fs.rm(temp, { force: true });
  };
  try {
    const fh = await fs.open(
      temp,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      opts.mode,
    );
    try {
      // open() applied the umask, which can only remove bits; set the exact mode (still before
      // any data is written, so a key never exists with wider permissions than asked).
      await fh.chmod(opts.mode);
      if (opts.uid !== undefined || opts.gid !== undefined) await fh.chown(opts.uid ?? -1, opts.gid ?? -1);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await opts.beforeRename?.();
  } catch (err) {
    await abort().catch(() => undefined);
    throw storeError(`cannot write ${target}`, err);
  }
  return {
    target,
    temp,
    commit: async () => {
      if (done) throw new CertpilotError('STORE_IO', `store: write of ${target} was already finished`);
      try {
        await fs.rename(temp, renameTo);
        done = true;
        await syncDir();
      } catch (err) {
        await abort().catch(() => undefined);
        throw storeError(`cannot replace ${target}`, err);
      }
    },
    abort,
  };
}

/** Replaces `target` with `data` atomically and durably (see the module comment). */
export async function atomicWriteFile(
  target: string,
  data: string | Buffer,
  opts: AtomicWriteOptions,
): Promise<void> {
  const prepared = await prepareAtomicWrite(target, data, opts);
  await prepared.commit();
}

/** A directory held open by descriptor; `path` is for messages and for the fallback below. */
export interface OpenDir {
  readonly path: string;
  readonly handle: fs.FileHandle;
}

/** What a walk may meet; a policy throws to refuse (its message names the path). */
export interface DirPolicy {
  /**
   * Every directory the walk opens, the starting one first, with its fstat. Without it no
   * directory is fstat'ed: a read below the state directory walks four or five of them.
   */
  checkDir?(dir: string, st: Stats): void;
  /** A symbolic link `link` met in directory `parent`: throw to refuse following it. */
  checkLink(link: string, parent: string, parentStat: Stats): void;
}

export interface OpenDirOptions {
  /** Create missing directories with exactly this mode (set on the descriptor, never by path). */
  createMode?: number;
  /** Without a policy no symbolic link is followed at all. */
  policy?: DirPolicy;
}

/** A symlink chain longer than this is a loop (the kernel's own limit is 40). */
const MAX_LINKS = 40;
const DIR_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY;
const PROC_FD = '/proc/self/fd';
let procFd: boolean | undefined;

/**
 * The name of `name` inside the open directory: through /proc/self/fd where Linux offers it
 * (the lookup starts at the descriptor, whatever happened to the path since); elsewhere the
 * plain path, which is only as safe as the directories above it.
 */
export function pathIn(dir: OpenDir, name: string): string {
  procFd ??= existsSync(PROC_FD);
  return procFd ? `${PROC_FD}/${dir.handle.fd}/${name}` : path.join(dir.path, name);
}

const noLinks: DirPolicy = {
  checkLink: (link) => {
    throw new CertpilotError(
      'STORE_IO',
      `store: ${link} is a symbolic link; certpilot does not follow it here`,
    );
  },
};

/**
 * Opens `rel` (a relative path, '' for `base` itself) below `base` one component at a time with
 * O_NOFOLLOW, each lookup relative to the directory opened before it, so a link planted on the
 * way is met as a link (and followed only if the policy allows) and never silently traversed.
 * `base` itself is opened by its path: it is the operator's choice (a state directory that is a
 * symlink to another disk is fine). Missing directories are created when `createMode` is given.
 */
export async function openDirNoFollow(
  base: string,
  rel: string,
  opts: OpenDirOptions = {},
): Promise<OpenDir> {
  const policy = opts.policy ?? noLinks;
  const start = path.resolve(base);
  let cur: OpenDir;
  try {
    cur = { path: start, handle: await fs.open(start, DIR_FLAGS) };
  } catch (err) {
    throw storeError(`cannot open directory ${start}`, err);
  }
  try {
    if (policy.checkDir) policy.checkDir(cur.path, await cur.handle.stat());
    const queue = rel.split('/').filter((c) => c !== '' && c !== '.');
    let links = 0;
    while (queue.length > 0) {
      const name = queue.shift()!;
      const next = await openChild(cur, name, opts.createMode);
      if (typeof next === 'string') {
        if (++links > MAX_LINKS)
          throw new CertpilotError('STORE_IO', `store: too many symbolic links at ${next}`);
        policy.checkLink(path.join(cur.path, name), cur.path, await cur.handle.stat());
        const target = await fs.readlink(pathIn(cur, name));
        queue.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
        if (path.isAbsolute(target)) await replace(cur, { path: '/', handle: await fs.open('/', DIR_FLAGS) });
        continue;
      }
      // Held as `cur` before the check, so a refusal closes it in the catch below.
      const parent = await replace(cur, next);
      if (policy.checkDir) policy.checkDir(parent.path, await parent.handle.stat());
    }
    return cur;
  } catch (err) {
    await cur.handle.close().catch(() => undefined);
    throw storeError(`cannot open directory ${path.join(start, rel)}`, err);
  }

  async function replace(old: OpenDir, next: OpenDir): Promise<OpenDir> {
    await old.handle.close();
    cur = next;
    return next;
  }
}

/** A directory held open by a plain descriptor (FileStorage's synchronous reads walk with it). */
export interface OpenDirFd {
  readonly path: string;
  readonly fd: number;
}

/** pathIn() for a plain descriptor. */
export function pathInFd(dir: OpenDirFd, name: string): string {
  procFd ??= existsSync(PROC_FD);
  return procFd ? `${PROC_FD}/${dir.fd}/${name}` : path.join(dir.path, name);
}

/**
 * Opens the directory `name` inside `dir` without following a link; returns the link's display
 * path instead when it is one. Creates the directory when asked and it is missing.
 */
async function openChild(
  dir: OpenDir,
  name: string,
  createMode: number | undefined,
): Promise<OpenDir | string> {
  const shown = name === '..' ? path.dirname(dir.path) : path.join(dir.path, name);
  for (let attempt = 0; ; attempt++) {
    try {
      return { path: shown, handle: await fs.open(pathIn(dir, name), DIR_FLAGS | fsConstants.O_NOFOLLOW) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        const st = await fs.lstat(pathIn(dir, name));
        if (st.isSymbolicLink()) return shown;
        throw err;
      }
      if (code !== 'ENOENT' || createMode === undefined || attempt > 0) throw err;
    }
    try {
      await fs.mkdir(pathIn(dir, name), createMode);
    } catch (err) {
      // Someone else created it meanwhile: open (and check) whatever is there now.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    const handle = await fs.open(pathIn(dir, name), DIR_FLAGS | fsConstants.O_NOFOLLOW);
    // mkdir's mode went through the umask; set the exact one on the descriptor, not by path.
    await handle.chmod(createMode);
    await dir.handle.sync();
    return { path: shown, handle };
  }
}

/**
 * Creates `dir` and any missing parents with `mode` (default 0700). The exact mode is set on
 * each directory this call creates (through its descriptor: mkdir's mode is filtered by the
 * umask, and a chmod by path could be redirected); existing directories keep the mode the
 * operator gave them. Links on the way are followed: this is for directories the operator names
 * (the state directory, a cache); what lies below the state directory goes through
 * openDirNoFollow without links (src/store/file-storage.ts).
 */
export async function ensureDir(dir: string, mode: number = DEFAULT_DIR_MODE): Promise<void> {
  const target = path.resolve(dir);
  const opened = await openDirNoFollow('/', target, { createMode: mode, policy: followLinks });
  await opened.handle.close();
}

/** For directories certpilot is told to use (state, cache): links are the operator's. */
const followLinks: DirPolicy = { checkLink: () => undefined };
