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
 *
 * The owner matters as much as the mode: whoever owns the file can chmod it or change the
 * secret. It must be root or the user certpilot runs as. Started as root, certpilot loads the
 * configuration first and then may drop to the owner of the state directory (src/cli/privileges.ts),
 * so at load time the user it will run as is not known yet: a file owned by another non-root
 * uid is recorded here and checked by actAsStateOwner against the uid it drops to (refused if
 * it stays root or drops to someone else). Run as anyone else, the rule applies at once.
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

/** A secret file read as root that belongs to a non-root user, awaiting the privilege drop. */
export interface PendingSecretOwner {
  file: string;
  /** The config path that named it (`dns.providers.bind.tsigSecret_file`), or the file again. */
  at: string;
  uid: number;
  mode: number;
}
const pendingOwners = new Map<string, PendingSecretOwner>();
/** The uid certpilot runs as once actAsStateOwner decided; until then undefined. */
let settledUser: number | undefined;

/**
 * Called once the user certpilot runs as is decided (after the privilege drop, or the decision
 * not to drop): returns the recorded files that user may not trust, and from now on applies the
 * rule at once (a daemon that stays root re-reads its config on SIGHUP as root).
 */
export function settleSecretOwner(runAs: number): PendingSecretOwner[] {
  settledUser = runAs;
  const wrong = [...pendingOwners.values()].filter((p) => p.uid !== runAs);
  pendingOwners.clear();
  return wrong;
}

/** The message for a secret file owned by `uid` when certpilot runs as `runAs`. */
export function secretOwnerMessage(file: string, uid: number, mode: number, runAs: number): string {
  const who = runAs === 0 ? 'root' : `root or uid ${runAs}`;
  return (
    `${file} is owned by uid ${uid} (mode ${octal(mode)}), but certpilot runs as uid ${runAs}: ` +
    `a secret file must belong to ${who}, or its owner can change it; chown it`
  );
}

/** Reads and trims a secret file; never puts its content in a message. */
export async function readSecretFile(file: string, at: string = file): Promise<SecretResult> {
  if (!path.isAbsolute(file))
    return { ok: false, message: `must be an absolute path, not ${JSON.stringify(file)}` };
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const st = await handle.stat();
    if (!st.isFile()) return { ok: false, message: `${file} is not a regular file` };
    // The owner first: whoever owns the file can chmod it, so its mode says nothing without it.
    const self = process.geteuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== self) {
      if (self !== 0 || settledUser !== undefined)
        return { ok: false, message: secretOwnerMessage(file, st.uid, st.mode, self) };
      pendingOwners.set(file, { file, at, uid: st.uid, mode: st.mode });
    }
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
  const secret = await readSecretFile(file, at);
  if (secret.ok) return secret.value;
  issues.add(at, secret.message);
  return undefined;
}
