import type { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { readSecretFile } from '../config/secrets';
import type { FileOutput } from '../config/types';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { Stats } from 'node:fs';
import {
  openDirNoFollow,
  pathIn,
  prepareAtomicWriteIn,
  type DirPolicy,
  type OpenDir,
  type PreparedWrite,
} from './atomic';
import { renderOutput, verifyOutput, type OutputKind, type OutputParams } from './formats';

/**
 * Outputs: copies of a certificate written to paths outside the store, with the owner, group
 * and mode a consumer needs (an nginx under another user, a CDN pusher). They are not storage:
 * the paths are the operator's, not keys, so this module writes files directly.
 *
 * Two phases, so the certificate store can put the store update between them: `prepareOutputs`
 * writes every file as a synced temp file next to its target (a read-only or full output file
 * system fails here, with the store untouched), `commitOutputs` renames them back to back once
 * the new version is live. Owners are resolved before anything at all is written.
 *
 * Every file is read back before it counts (src/store/formats.ts verifyOutput): the temp file
 * once written and synced, checked against the version being installed (a PKCS#12 opened with
 * its password, a bundle's key paired with its certificate), so a bad file never replaces a
 * good one; and the target once renamed, which must hold exactly the bytes that were checked.
 *
 * Run as root, certpilot must not be steerable by the users whose directories an output path
 * crosses: a user who can write a directory on the way could plant a symlink there and have
 * root write (and chown to that user) a file inside a directory only root may write, for
 * example over another service's key. So the path is opened one directory at a time without
 * following links (src/store/atomic.ts openDirNoFollow), the files are created and renamed in
 * the directory held open, modes and owners are set on descriptors, and the walk refuses:
 *   - a directory owned by anyone but root, the user certpilot runs as, or the output's owner;
 *   - a directory that others (or a group other than root's) may write, unless it is sticky
 *     (/tmp: others cannot rename or remove what is not theirs, and what we open must be ours);
 *   - a symbolic link in a directory anyone but root or certpilot's own user may change (a link
 *     in /etc, such as /var/run -> /run, is followed, one in the output owner's directory not).
 */

/** Certificates are public; 0644 lets a non-root web server read them. */
const DEFAULT_CERT_MODE = 0o644;
/** Private keys are readable by their owner only. */
const DEFAULT_KEY_MODE = 0o600;
/**
 * Parent directories created for outputs: other services (nginx workers, a CDN pusher) must
 * be able to traverse them; the key file's own 0600 is what protects the key.
 */
export const OUTPUT_DIR_MODE = 0o755;
/** `id`/`getent` answer from local files or NSS; do not let a hung directory service hang the run. */
const ID_LOOKUP_TIMEOUT_MS = 10_000;

/** The four PEMs an output may take, key first (renamed first, so a new key never waits on a new cert). */
export interface OutputFiles {
  cert: string;
  chain: string;
  fullchain: string;
  key: string;
}
const FILE_KEYS: readonly (keyof OutputFiles)[] = ['key', 'cert', 'chain', 'fullchain'];

/** execFile as a promise; node:child_process loads when an owner name is first looked up. */
function execFileAsync(file: string, args: string[], opts: { timeout: number }): Promise<{ stdout: string }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const run = (require('node:child_process') as { execFile: typeof execFile }).execFile;
  return new Promise((resolve, reject) => {
    run(file, args, { ...opts, encoding: 'utf8' }, (err, stdout) =>
      err ? reject(err) : resolve({ stdout }),
    );
  });
}

function storeIo(message: string, cause?: unknown): CertpilotError {
  return new CertpilotError('STORE_IO', `store: ${message}`, cause === undefined ? {} : { cause });
}

export interface Owner {
  uid?: number;
  gid?: number;
}

const isRoot = (): boolean => process.getuid?.() === 0;

async function lookupId(kind: 'user' | 'group', value: string): Promise<number> {
  if (/^\d+$/.test(value)) return Number(value);
  try {
    if (kind === 'user') {
      const { stdout } = await execFileAsync('id', ['-u', '--', value], { timeout: ID_LOOKUP_TIMEOUT_MS });
      return parseIdOutput(stdout.trim(), kind, value);
    }
    // getent group NAME -> "name:x:GID:members"
    const { stdout } = await execFileAsync('getent', ['group', '--', value], {
      timeout: ID_LOOKUP_TIMEOUT_MS,
    });
    return parseIdOutput(stdout.split(':')[2]?.trim() ?? '', kind, value);
  } catch (err) {
    if (err instanceof CertpilotError) throw err;
    throw new CertpilotError(
      'STORE_IO',
      `store: output ${kind === 'user' ? 'owner' : 'group'} "${value}" is not a known ${kind}`,
      {
        cause: err,
      },
    );
  }
}

function parseIdOutput(text: string, kind: 'user' | 'group', value: string): number {
  if (!/^\d+$/.test(text)) {
    throw new CertpilotError('STORE_IO', `store: cannot resolve ${kind} "${value}" (got "${text}")`);
  }
  return Number(text);
}

/** Resolves owner/group of every output up front, so an unknown user fails before any write. */
export async function resolveOwners(outputs: readonly FileOutput[], log: Logger): Promise<Owner[]> {
  const root = isRoot();
  const result: Owner[] = [];
  for (const out of outputs) {
    if (out.owner === undefined && out.group === undefined) {
      result.push({});
    } else if (!root) {
      // Only root can give files away; a non-root agent writes them as itself.
      log.warn('output owner/group ignored: not running as root', { owner: out.owner, group: out.group });
      result.push({});
    } else {
      result.push({
        uid: out.owner === undefined ? undefined : await lookupId('user', out.owner),
        gid: out.group === undefined ? undefined : await lookupId('group', out.group),
      });
    }
  }
  return result;
}

/**
 * Writes every output file as a synced temp file next to its target (nothing is replaced yet).
 * On failure, removes the temp files already written and throws.
 */
export async function prepareOutputs(
  name: string,
  files: OutputFiles,
  outputs: readonly FileOutput[],
  owners: readonly Owner[],
): Promise<PreparedWrite[]> {
  const prepared: PreparedWrite[] = [];
  try {
    for (const [i, out] of outputs.entries()) {
      for (const file of await plannedFiles(name, out)) {
        const data = await renderOutput(file.kind, files, file.params);
        const check = (bytes: Buffer): Promise<void> => verifyOutput(file.kind, bytes, files, file.params);
        prepared.push(await prepareOutputFile(file.target, data, file.mode, owners[i] ?? {}, check));
      }
    }
  } catch (err) {
    await abortOutputs(prepared);
    throw err instanceof CertpilotError ? err : storeIo(`${name}: cannot write outputs`, err);
  }
  return prepared;
}

/** One file an output writes: where, what, with which mode. */
interface PlannedFile {
  target: string;
  kind: OutputKind;
  mode: number;
  params?: OutputParams;
}

/** The files of one output: the classic PEMs (key first), or its one `format` file. */
async function plannedFiles(name: string, out: FileOutput): Promise<PlannedFile[]> {
  if (out.format === undefined || out.path === undefined) {
    // FileOutput's modes are required, but the defaults also guard callers outside the config loader.
    return FILE_KEYS.flatMap((key) => {
      const target = out[key];
      if (target === undefined) return [];
      const mode = key === 'key' ? (out.keyMode ?? DEFAULT_KEY_MODE) : (out.certMode ?? DEFAULT_CERT_MODE);
      return [{ target, kind: key, mode }];
    });
  }
  const mode = out.certMode ?? DEFAULT_KEY_MODE;
  if (out.format === 'der')
    return [{ target: out.path, kind: out.content === 'key' ? 'der-key' : 'der-cert', mode }];
  if (out.format === 'pem-bundle') return [{ target: out.path, kind: 'pem-bundle', mode }];
  const params = { password: await readOutputPassword(out), friendlyName: out.friendlyName ?? name };
  return [{ target: out.path, kind: 'pkcs12', mode, params }];
}

/** A pkcs12 output's password, read at each install (rotation needs no reload); never in a message. */
async function readOutputPassword(out: FileOutput): Promise<string> {
  if (out.passwordFile === undefined) throw storeIo(`output ${out.path}: pkcs12 needs password_file`);
  const secret = await readSecretFile(out.passwordFile);
  if (!secret.ok) throw storeIo(`output ${out.path}: password_file: ${secret.message}`);
  return secret.value;
}

/** Renames prepared output files into place, back to back (key first). */
export async function commitOutputs(name: string, prepared: readonly PreparedWrite[]): Promise<void> {
  try {
    for (const write of prepared) await write.commit();
  } catch (err) {
    await abortOutputs(prepared);
    throw err instanceof CertpilotError ? err : storeIo(`${name}: cannot write outputs`, err);
  }
}

/** Removes the temp files of prepared outputs (after a failure before commitOutputs). */
export async function abortOutputs(prepared: readonly PreparedWrite[]): Promise<void> {
  await Promise.all(prepared.map((w) => w.abort().catch(() => undefined)));
}

/** Reads a file in a directory held open, never through a link. */
async function readBack(dir: OpenDir, name: string): Promise<Buffer> {
  const fh = await fs.open(pathIn(dir, name), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

const digest = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/**
 * One output file as a prepared write in its directory, held open until commit or abort. The
 * temp file is read back and `check`ed before this returns; after the rename the target is read
 * back and must hold the same bytes.
 */
async function prepareOutputFile(
  target: string,
  data: Buffer,
  mode: number,
  owner: Owner,
  check: (bytes: Buffer) => Promise<void>,
): Promise<PreparedWrite> {
  const abs = path.resolve(target);
  const dir = await openDirNoFollow('/', path.dirname(abs), {
    createMode: OUTPUT_DIR_MODE,
    policy: outputPolicy(abs, owner),
  });
  const name = path.basename(abs);
  let write: PreparedWrite;
  let written: string;
  try {
    write = await prepareAtomicWriteIn(dir, name, data, { mode, ...owner });
    try {
      const bytes = await fs.readFile(write.temp, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW });
      await check(bytes);
      written = digest(bytes);
    } catch (err) {
      await write.abort().catch(() => undefined);
      throw err instanceof CertpilotError ? withTarget(abs, err) : storeIo(`cannot read back ${abs}`, err);
    }
  } catch (err) {
    await dir.handle.close().catch(() => undefined);
    throw err;
  }
  const close = (): Promise<void> => dir.handle.close().catch(() => undefined);
  const commitAndReadBack = async (): Promise<void> => {
    await write.commit();
    let now: Buffer;
    try {
      now = await readBack(dir, name);
    } catch (err) {
      throw storeIo(`cannot read back ${abs} after replacing it`, err);
    }
    if (digest(now) !== written) throw storeIo(`${abs} does not hold what was written and checked`);
  };
  return {
    target: write.target,
    temp: write.temp,
    commit: () => commitAndReadBack().finally(close),
    abort: () => write.abort().finally(close),
  };
}

/** A verification error with the file it concerns. */
function withTarget(target: string, err: CertpilotError): CertpilotError {
  return new CertpilotError(err.code, `${err.message} (${target})`, { cause: err });
}

const STICKY = 0o1000;

/** Why untrusted users could change `dir`, or undefined when only `trusted` uids (and root's group) can. */
function untrustedWriter(st: Stats, trusted: ReadonlySet<number>, allowSticky: boolean): string | undefined {
  if (!trusted.has(st.uid)) return `is owned by uid ${st.uid}`;
  const sticky = allowSticky && (st.mode & STICKY) !== 0;
  if ((st.mode & 0o020) !== 0 && st.gid !== 0 && !sticky) return `is writable by group gid ${st.gid}`;
  if ((st.mode & 0o002) !== 0 && !sticky) return 'is writable by every user';
  return undefined;
}

function unsafeOutput(target: string, dir: string, st: Stats, why: string, hint: string): CertpilotError {
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  return new CertpilotError(
    'STORE_IO',
    `store: output ${target} refused: ${dir} ${why} (owner uid ${st.uid}, group gid ${st.gid}, mode ${mode}); ` +
      `certpilot would write wherever that user points it. ${hint}`,
  );
}

/**
 * Who may change the directories an output path crosses (see the module comment). The
 * output's owner may own the directories the file goes into (the file will be theirs anyway),
 * but a link they can plant is never followed: that is the way out of their own directories.
 */
function outputPolicy(target: string, owner: Owner): DirPolicy {
  const self = process.getuid?.() ?? 0;
  const linkTrusted = new Set([0, self]);
  const trusted = new Set([0, self, ...(owner.uid === undefined ? [] : [owner.uid])]);
  const fix =
    "Make it root's and not writable by others (chown root and chmod go-w), or choose another path.";
  return {
    checkDir(dir, st) {
      const why = untrustedWriter(st, trusted, true);
      if (why !== undefined) throw unsafeOutput(target, dir, st, why, fix);
    },
    checkLink(link, parent, parentStat) {
      const why = untrustedWriter(parentStat, linkTrusted, false);
      if (why !== undefined) {
        throw unsafeOutput(
          target,
          parent,
          parentStat,
          `${why} and holds the symbolic link ${link}`,
          'Give the path without links, or ' + fix[0]!.toLowerCase() + fix.slice(1),
        );
      }
    },
  };
}
