import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FileOutput } from '../config/types';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import { ensureDir, prepareAtomicWrite, type PreparedWrite } from './atomic';

/**
 * Outputs: copies of a certificate written to paths outside the store, with the owner, group
 * and mode a consumer needs (an nginx under another user, a CDN pusher). They are not storage:
 * the paths are the operator's, not keys, so this module writes files directly.
 *
 * Two phases, so the certificate store can put the store update between them: `prepareOutputs`
 * writes every file as a synced temp file next to its target (a read-only or full output file
 * system fails here, with the store untouched), `commitOutputs` renames them back to back once
 * the new version is live. Owners are resolved before anything at all is written.
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

const execFileAsync = promisify(execFile);

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
      for (const key of FILE_KEYS) {
        const target = out[key];
        if (target === undefined) continue;
        await ensureDir(path.dirname(target), OUTPUT_DIR_MODE);
        // FileOutput's modes are required, but the defaults also guard callers outside the config loader.
        const mode = key === 'key' ? (out.keyMode ?? DEFAULT_KEY_MODE) : (out.certMode ?? DEFAULT_CERT_MODE);
        prepared.push(await prepareAtomicWrite(target, files[key], { mode, ...owners[i] }));
      }
    }
  } catch (err) {
    await abortOutputs(prepared);
    throw err instanceof CertpilotError ? err : storeIo(`${name}: cannot write outputs`, err);
  }
  return prepared;
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
