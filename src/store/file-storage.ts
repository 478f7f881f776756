import crypto from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  promises as fs,
  readFileSync,
  readlinkSync,
  type Dirent,
} from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { throwIfAborted } from '../core/abort';
import { CertpilotError } from '../core/errors';
import { readOpenFileSync } from '../core/read-fd';
import {
  DEFAULT_DIR_MODE,
  ensureDir,
  fsyncDir,
  isTempName,
  openDirNoFollow,
  pathIn,
  pathInFd,
  prepareAtomicWriteIn,
  tempNameFor,
  type OpenDir,
  type OpenDirFd,
} from './atomic';
import {
  KEY_SEGMENT,
  SECRET_MODE,
  assertKey,
  type CallOptions,
  type KeyStat,
  type ListOptions,
  type LockHandle,
  type PointerStorage,
  type PutOptions,
} from './storage';

/**
 * The file backend of Storage (contracts in ./storage.ts). A key is a path below `root`
 * ("certs/www/cert.pem" -> <root>/certs/www/cert.pem), so the on-disk layout is exactly the
 * keys the callers choose, and servers keep reading the files they always read.
 *
 * - put: src/store/atomic.ts (temp file in the same directory with O_EXCL and the final mode,
 *   fsync, rename, fsync of the directory). Directories are created 0700.
 * - delete of a prefix renames the directory aside to a temp name first, so it disappears in
 *   one step for readers, then removes it; a crash in between leaves a temp entry for sweep.
 * - Pointers are symlinks with a relative target, swapped by renaming a new symlink over the
 *   old one, so <root>/certs/<name>/current/... switches versions atomically for every reader
 *   that resolves it, including servers that know nothing of certpilot.
 * - Symbolic links: below `root` certpilot follows only its own pointers, and only the way
 *   getPointer reads them (a relative link to a key inside root; anything else is an error).
 *   Reads resolve pointers key by key, then open the value one directory at a time with
 *   O_NOFOLLOW (src/store/atomic.ts openDirNoFollow); writes and new directories never cross
 *   a link. `root` itself may be a link: it is the operator's path.
 * - Temp entries start with '.', which no key segment may, so list never shows them.
 * - Fencing (PutOptions.lock) is checked just before the rename: the lock file is local, so
 *   no write can be conditional on it inside the kernel; see PutOptions.lock.
 */
export class FileStorage implements PointerStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  locate(key: string): string {
    assertKey(key, true);
    return key === '' ? this.root : path.join(this.root, ...key.split('/'));
  }

  keyAt(location: string): string | null {
    const rel = path.relative(this.root, path.resolve(location));
    if (rel === '') return '';
    const key = rel.split(path.sep).join('/');
    return key.split('/').every((s) => KEY_SEGMENT.test(s)) ? key : null;
  }

  async put(key: string, value: string | Uint8Array, opts: PutOptions = {}): Promise<void> {
    assertKey(key);
    throwIfAborted(opts.signal, 'store');
    const dir = await this.openParent(key);
    try {
      const data =
        typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const prepared = await prepareAtomicWriteIn(dir, path.posix.basename(key), data, {
        mode: opts.mode ?? SECRET_MODE,
      });
      try {
        throwIfAborted(opts.signal, 'store');
        await opts.lock?.check({ signal: opts.signal });
      } catch (err) {
        await prepared.abort();
        throw err;
      }
      await prepared.commit();
    } finally {
      await dir.handle.close();
    }
  }

  /** The directory of `key`, created (0700) as needed, opened without crossing any link. */
  private async openParent(key: string): Promise<OpenDir> {
    const open = (): Promise<OpenDir> =>
      openDirNoFollow(this.root, path.posix.dirname(key), { createMode: DEFAULT_DIR_MODE });
    try {
      return await open();
    } catch (err) {
      // Only a missing root is created here (by its path, links included: it is the operator's).
      if (errnoOf(err) !== 'ENOENT') throw err;
      await ensureDir(this.root);
      return open();
    }
  }

  /**
   * Opens the value at `key`; returns its descriptor, which the caller closes. The walk opens
   * one component at a time with O_NOFOLLOW, each relative to the directory opened before it
   * (openDirNoFollow's rule, synchronously: reads are small local files, where a promise and a
   * thread-pool round trip per call cost more than the system call itself). The store's own
   * pointers are the one kind of link followed below root: a component that is a link is read
   * as getPointer reads it (it must name a key inside root), and the walk restarts from root
   * at its target, which may cross pointers itself (certs/www/cert.pem -> current/cert.pem ->
   * versions/<id>/cert.pem). A link is found by the no-follow open refusing it, so a read with
   * no pointer on its way costs one open per component and no lstat.
   *
   * Every public read still yields one turn of the event loop first, so a caller reading in a
   * loop cannot starve timers and other I/O.
   */
  private openValue(key: string): number {
    let parts = key.split('/');
    for (let hops = 0; ;) {
      const opened = this.walk(parts);
      if ('fd' in opened) return opened.fd;
      const prefix = parts.slice(0, opened.link + 1).join('/');
      if (++hops > MAX_POINTER_HOPS) throw ioError(`too many pointers at ${this.locate(prefix)}`);
      const target = this.readPointer(prefix);
      // Gone since the walk met it: the next walk reports what is there now.
      if (target === null) continue;
      parts = [...(target === '' ? [] : target.split('/')), ...parts.slice(opened.link + 1)];
    }
  }

  /** One no-follow walk down `parts` from root: the value's descriptor, or where a link stood. */
  private walk(parts: readonly string[]): { fd: number } | { link: number } {
    const last = parts.length - 1;
    let dir: OpenDirFd;
    try {
      // Root itself is opened by its path: it is the operator's choice (links included).
      dir = { path: this.root, fd: openSync(this.root, DIR_FLAGS) };
    } catch (err) {
      throw ioError(`cannot open directory ${this.root}`, err);
    }
    try {
      for (let i = 0; i <= last; i++) {
        const name = parts[i];
        let fd: number;
        try {
          // O_NONBLOCK: a FIFO where a value should be is opened without blocking the process
          // (and then refused by get's regular-file check); regular files ignore the flag.
          fd = openSync(pathInFd(dir, name), i === last ? VALUE_FLAGS : DIR_FLAGS | fsConstants.O_NOFOLLOW);
        } catch (err) {
          // O_NOFOLLOW meets a link as ELOOP, or as ENOTDIR when a directory was asked for.
          const code = errnoOf(err);
          if ((code === 'ELOOP' || code === 'ENOTDIR') && isLinkIn(dir, name)) return { link: i };
          // An absent key is common (a certificate without state yet) and its callers only ask
          // for the code: no wrapping error is built for it.
          if (i === last || code === 'ENOENT') throw err;
          throw ioError(`cannot open directory ${path.join(dir.path, name)}`, err);
        }
        if (i === last) return { fd };
        closeSync(dir.fd);
        dir = { path: path.join(dir.path, name), fd };
      }
      // parts is never empty: assertKey refuses '' for values.
      throw ioError(`no value at ${this.root}`);
    } finally {
      closeSync(dir.fd);
    }
  }

  async get(key: string, opts: CallOptions = {}): Promise<Buffer | null> {
    assertKey(key);
    await nextTurn();
    throwIfAborted(opts.signal, 'store');
    const file = this.locate(key);
    try {
      const fd = this.openValue(key);
      try {
        // Only a regular file holds a value: a FIFO opened without blocking would read as empty.
        // A directory is left to the read, whose EISDIR the callers diagnose.
        const st = fstatSync(fd);
        if (!st.isFile() && !st.isDirectory()) throw ioError(`${file} is not a regular file`);
        return st.isFile() ? readOpenFileSync(fd, st.size) : readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      const code = errnoOf(err);
      // A directory where a value should be is not an absent key: the value is unknown, and
      // treating it as absent would, for example, forget a certificate's backoff state.
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw ioError(`cannot read ${file}`, err);
    }
  }

  async stat(key: string, opts: CallOptions = {}): Promise<KeyStat | null> {
    assertKey(key);
    await nextTurn();
    throwIfAborted(opts.signal, 'store');
    const file = this.locate(key);
    try {
      const fd = this.openValue(key);
      let st: ReturnType<typeof fstatSync>;
      try {
        st = fstatSync(fd);
      } finally {
        closeSync(fd);
      }
      return st.isFile() ? { key, size: st.size, modified: st.mtime } : null;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw ioError(`cannot stat ${file}`, err);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<string[]> {
    assertKey(prefix, true);
    throwIfAborted(opts.signal, 'store');
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      const dir = this.locate(rel);
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError(`cannot list ${dir}`, err);
      }
      for (const e of entries) {
        // Temp entries and anything no key could name (a stray "Foo bar" file) are not keys.
        if (!KEY_SEGMENT.test(e.name)) continue;
        const child = rel === '' ? e.name : `${rel}/${e.name}`;
        // Pointers (symlinks) are listed as keys and not followed: a recursive listing of a
        // certificate would otherwise list its live version twice.
        if (opts.recursive && e.isDirectory()) await walk(child);
        else out.push(child);
      }
    };
    await walk(prefix);
    const cut = prefix === '' ? 0 : prefix.length + 1;
    return out.map((k) => k.slice(cut)).sort();
  }

  async delete(key: string, opts: CallOptions & { lock?: LockHandle } = {}): Promise<void> {
    assertKey(key);
    throwIfAborted(opts.signal, 'store');
    await opts.lock?.check({ signal: opts.signal });
    const target = this.locate(key);
    let isDir: boolean;
    try {
      isDir = (await fs.lstat(target)).isDirectory();
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw ioError(`cannot delete ${target}`, err);
    }
    if (!isDir) {
      // One value (or pointer): unlink is already atomic.
      try {
        await fs.unlink(target);
        await fsyncDir(path.dirname(target));
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw ioError(`cannot delete ${target}`, err);
      }
      return;
    }
    const aside = path.join(
      path.dirname(target),
      `.${path.basename(target)}.tmp-del-${process.pid}-${crypto.randomBytes(6).toString('hex')}`,
    );
    try {
      await fs.rename(target, aside);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw ioError(`cannot delete ${target}`, err);
    }
    try {
      await fsyncDir(path.dirname(target));
      await fs.rm(aside, { recursive: true, force: true });
    } catch (err) {
      throw ioError(`cannot delete ${target}`, err);
    }
  }

  async sweep(prefix: string, opts: CallOptions = {}): Promise<void> {
    assertKey(prefix, true);
    throwIfAborted(opts.signal, 'store');
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (isTempName(e.name)) await fs.rm(p, { recursive: true, force: true });
        else if (e.isDirectory()) await walk(p);
      }
    };
    await walk(this.locate(prefix));
  }

  async setPointer(key: string, target: string, opts: PutOptions = {}): Promise<void> {
    assertKey(key);
    assertKey(target, true);
    throwIfAborted(opts.signal, 'store');
    const link = this.locate(key);
    const relative = path.relative(path.dirname(link), this.locate(target)) || '.';
    const dir = await this.openParent(key);
    const temp = pathIn(dir, path.basename(tempNameFor(link)));
    try {
      await fs.symlink(relative, temp);
      throwIfAborted(opts.signal, 'store');
      await opts.lock?.check({ signal: opts.signal });
      await fs.rename(temp, pathIn(dir, path.basename(link)));
      await dir.handle.sync();
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw err instanceof CertpilotError ? err : ioError(`cannot point ${link} at ${relative}`, err);
    } finally {
      await dir.handle.close();
    }
  }

  async getPointer(key: string, opts: CallOptions = {}): Promise<string | null> {
    assertKey(key);
    await nextTurn();
    throwIfAborted(opts.signal, 'store');
    return this.readPointer(key);
  }

  private readPointer(key: string): string | null {
    const link = this.locate(key);
    let target: string;
    try {
      target = readlinkSync(link);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw ioError(`cannot read ${link}`, err);
    }
    const resolved = this.keyAt(path.resolve(path.dirname(link), target));
    if (resolved === null) throw ioError(`${link} points outside ${this.root} (${target})`);
    return resolved;
  }
}

const DIR_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY;
const VALUE_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

/** Whether `name` in the open directory is a symbolic link (false when it is gone). */
function isLinkIn(dir: OpenDirFd, name: string): boolean {
  return lstatSync(pathInFd(dir, name), { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
}

/** A pointer chain longer than this is a loop (the kernel's own limit for links is 40). */
const MAX_POINTER_HOPS = 40;

/** The errno of a failure, also when src/store/atomic.ts wrapped it in a STORE_IO error. */
function errnoOf(err: unknown): string | undefined {
  const inner = err instanceof CertpilotError ? (err.cause ?? err) : err;
  const code = (inner as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function ioError(message: string, cause?: unknown): CertpilotError {
  if (cause instanceof CertpilotError) return cause;
  const code = errnoOf(cause);
  const retryable = code === 'ENOSPC' || code === 'EBUSY' || code === 'EAGAIN' || code === 'EMFILE';
  const suffix = cause === undefined ? '' : `: ${(cause as Error)?.message ?? String(cause)}`;
  return new CertpilotError('STORE_IO', `store: ${message}${suffix}`, { cause, retryable });
}
