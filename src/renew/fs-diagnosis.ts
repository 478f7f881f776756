import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';

/** The parts of a Node system error that say what went wrong where. */
interface ErrnoFacts {
  code: string;
  path?: string;
  syscall?: string;
}

const FS_CODES = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EROFS', 'ENOSPC', 'EDQUOT', 'ELOOP']);

/** The first system error in a cause chain, and a path from it or from a wrapper's message. */
function findErrno(err: unknown): { errno: ErrnoFacts; path?: string } | undefined {
  let current: unknown = err;
  let mentioned: string | undefined;
  // Duck-typed: system errors made in another realm (a VM context) are not `instanceof Error`.
  for (let depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    const e = current as { message?: unknown } & Partial<ErrnoFacts>;
    const message = typeof e.message === 'string' ? e.message : '';
    // Wrappers such as "state: cannot read /x/state/a.json: EISDIR ..." name the file when
    // the system error does not (a read(2) on a directory carries no path).
    mentioned ??= /(\/[^\s:'"()]+)/.exec(message)?.[1];
    if (typeof e.code === 'string' && FS_CODES.has(e.code)) {
      return { errno: { code: e.code, path: e.path, syscall: e.syscall }, path: e.path ?? mentioned };
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** What a path under the state directory is, in words an operator recognises. */
function kindOf(file: string, stateDir: string, isDir: boolean): string {
  const top = path.relative(path.resolve(stateDir), path.resolve(file)).split(path.sep)[0];
  const kinds: Record<string, string> = {
    state: 'state file',
    certs: 'certificate file',
    archive: 'archived certificate',
    locks: 'lock file',
    journal: 'challenge journal',
    deploy: 'deploy state file',
    cache: 'cache file',
  };
  const kind = top !== undefined && !top.startsWith('..') ? kinds[top] : undefined;
  if (isDir) return kind && file.endsWith('.json') ? kind : 'directory';
  return kind ?? 'file';
}

async function userName(uid: number): Promise<string> {
  try {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const line = passwd.split('\n').find((l) => l.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? String(uid);
  } catch {
    return String(uid);
  }
}

/**
 * A one-line explanation of a file-system error that names the file and the fix, e.g.
 * "state file /var/lib/certpilot/state/x.json is not readable by uid 998 (owned by root): fix
 * with chown certpilot /var/lib/certpilot/state/x.json". Undefined when `err` is not one.
 */
export async function describeFileProblem(err: unknown, stateDir: string): Promise<string | undefined> {
  const found = findErrno(err);
  if (!found) return undefined;
  const { errno } = found;
  const file = found.path;
  if (!file) return undefined;
  const st = await lstat(file).catch(() => null);
  const kind = kindOf(file, stateDir, st?.isDirectory() ?? false);
  switch (errno.code) {
    case 'EISDIR':
      return `${kind} ${file} is a directory, not a file: move it aside (mv ${file} ${file}.bad) and run again`;
    case 'EACCES':
    case 'EPERM': {
      const uid = process.getuid?.() ?? -1;
      const me = await userName(uid);
      const owner = st ? await userName(st.uid) : 'unknown';
      const need = /read|open|scandir|stat|access/.test(errno.syscall ?? '') ? 'readable' : 'writable';
      const recursive = st?.isDirectory() ? '-R ' : '';
      return `${kind} ${file} is not ${need} by uid ${uid} (owned by ${owner}): fix with chown ${recursive}${me} ${file}`;
    }
    case 'ENOTDIR':
      return `${kind} ${file}: a parent of it is a file, not a directory (ENOTDIR): move that file aside`;
    case 'EROFS':
      return `${kind} ${file} is on a read-only file system (EROFS): certpilot needs its state directory writable`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `${kind} ${file}: no space left on the file system (${errno.code}): free some space`;
    default:
      return `${kind} ${file}: ${errno.code}`;
  }
}
