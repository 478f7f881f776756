import { promises as fs } from 'node:fs';
import { registerSecret } from '../core/redact';
import path from 'node:path';
import type { IssueList } from './issues';
import type { SecretRef } from './types';

/**
 * Secrets given as `<option>_file`: the path of a file holding the value (systemd credentials,
 * Kubernetes secrets, a file only root can read). The file must be private to its owner: a
 * secret that every local user can read is no longer a secret, and a CA or DNS API key leaked
 * that way lets anyone issue certificates for the domains.
 */

/** Any group or other permission bit makes the file unfit to hold a secret. */
const GROUP_OTHER_BITS = 0o077;
const GROUP_OTHER_READ = 0o044;
/** Secrets are short; a large file is the wrong file (a PEM bundle, a log). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

export type SecretResult = { ok: true; value: string } | { ok: false; message: string };

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Reads and trims a secret file; never puts its content in a message. */
export async function readSecretFile(file: string): Promise<SecretResult> {
  if (!path.isAbsolute(file))
    return { ok: false, message: `must be an absolute path, not ${JSON.stringify(file)}` };
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const st = await handle.stat();
    if (!st.isFile()) return { ok: false, message: `${file} is not a regular file` };
    if ((st.mode & GROUP_OTHER_READ) !== 0) {
      return { ok: false, message: `${file} is readable by others (mode ${octal(st.mode)}); chmod 600` };
    }
    if ((st.mode & GROUP_OTHER_BITS) !== 0) {
      return {
        ok: false,
        message: `${file} grants access to group or others (mode ${octal(st.mode)}); chmod 600`,
      };
    }
    if (st.size > MAX_SECRET_FILE_BYTES) return { ok: false, message: `${file} is too large to be a secret` };
    const value = (await handle.readFile('utf8')).trim();
    if (value === '') return { ok: false, message: `${file} is empty` };
    registerSecret(value);
    return { ok: true, value };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, message: `cannot read ${file} (${code})` };
  } finally {
    await handle?.close();
  }
}

/** Reads a secret at use time; the message names the file, never the content. */
export async function readSecret(ref: SecretRef): Promise<string> {
  if ('value' in ref) return ref.value;
  const r = await readSecretFile(ref.file);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

/** For the loader: a secret file's content, or undefined with the problem recorded at `at`. */
export async function readSecretFileAt(
  file: string,
  at: string,
  issues: IssueList,
): Promise<string | undefined> {
  const secret = await readSecretFile(file);
  if (secret.ok) return secret.value;
  issues.add(at, secret.message);
  return undefined;
}
