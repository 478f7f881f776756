import crypto from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
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
 *   3. chown if asked; 4. rename over the target; 5. fsync the directory so the rename survives.
 *
 * On any failure the temp file is removed and the target is left untouched.
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
  const temp = tempNameFor(target);
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
        await fs.rename(temp, target);
        done = true;
        await fsyncDir(path.dirname(target));
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

/**
 * Creates `dir` and any missing parents with `mode` (default 0700). The exact mode is set on
 * each directory this call creates, because mkdir's mode is filtered by the umask; existing
 * directories keep the mode the operator gave them.
 */
export async function ensureDir(dir: string, mode: number = DEFAULT_DIR_MODE): Promise<void> {
  const target = path.resolve(dir);
  let first: string | undefined;
  try {
    first = await fs.mkdir(target, { recursive: true, mode });
  } catch (err) {
    throw storeError(`cannot create directory ${target}`, err);
  }
  if (first === undefined) return;
  try {
    // mkdir returns the top-most directory it created; fix up that one and every one below it.
    for (let d = target; ; d = path.dirname(d)) {
      await fs.chmod(d, mode);
      if (d === first || path.dirname(d) === d) break;
    }
    await fsyncDir(path.dirname(first));
  } catch (err) {
    throw storeError(`cannot set mode of ${target}`, err);
  }
}
