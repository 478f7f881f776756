import { checkpoint } from '../core/checkpoints';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FileOutput } from '../config/types';
import { systemClock, type Clock } from '../core/clock';
import { CertpilotError, describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import { keyMatchesCertificate, parseCertificate, splitPemChain, type CertInfo } from '../x509';
import { parseCertificateCached } from '../x509/cache';
import {
  atomicWriteFile,
  ensureDir,
  fsyncDir,
  isTempName,
  prepareAtomicWrite,
  type PreparedWrite,
} from './atomic';

/**
 * The certificate store.
 *
 * Layout under <stateDir>:
 *
 *   certs/<name>/cert.pem       -> current/cert.pem        stable paths for nginx & co.
 *   certs/<name>/chain.pem      -> current/chain.pem
 *   certs/<name>/fullchain.pem  -> current/fullchain.pem
 *   certs/<name>/privkey.pem    -> current/privkey.pem
 *   certs/<name>/current        -> versions/<id>           the one pointer that changes
 *   certs/<name>/versions/<id>/{cert,chain,fullchain,privkey}.pem
 *   archive/<name>/<id>/{cert,chain,fullchain,privkey}.pem previous versions, newest kept
 *
 * Why a versioned directory and a pointer: four files cannot be replaced in one step, and a
 * reader that pairs a new certificate with an old key takes the site down (nginx refuses to
 * start with a mismatched pair). Each version is written completely into its own directory,
 * fsynced, and only then made live by renaming a new `current` symlink over the old one:
 * rename(2) is atomic, so every path resolved through `current` sees one whole version. The
 * stable `*.pem` links never change, so the paths in `paths()` can go straight into nginx.
 * (certbot's live/ links are swapped one file at a time, which is the mix this avoids.)
 *
 * A reader that opens the four stable links one by one can still straddle a swap; `read()`
 * therefore resolves `current` once, reads all files from that version directory, and checks
 * that key and certificate match before returning anything.
 *
 * Concurrency: one install per certificate name at a time; the caller holds the lock.
 */

export interface CertificateFiles {
  /** PEM strings. */
  cert: string;
  chain: string;
  fullchain: string;
  key: string;
}

export interface StoredCertificate extends CertificateFiles {
  name: string;
  info: CertInfo;
  /** The directory the files were read from: a version directory (read) or archive directory. */
  dir: string;
}

export interface CertPaths {
  dir: string;
  cert: string;
  chain: string;
  fullchain: string;
  key: string;
}

export interface CertStoreOptions {
  stateDir: string;
  /** Previous versions to keep per certificate; 0 keeps none. */
  archiveDepth: number;
  log?: Logger;
  /** Time source for version and archive directory names. */
  clock?: Clock;
  /** Test-only fault hooks. */
  faults?: { beforeSwap?: () => void | Promise<void> };
}

/** Private keys are readable by their owner only. */
export const DEFAULT_KEY_MODE = 0o600;
/** Certificates are public; 0644 lets a non-root web server read them. */
export const DEFAULT_CERT_MODE = 0o644;
/** Directories holding keys. */
export const STORE_DIR_MODE = 0o700;
/**
 * Parent directories created for outputs: other services (nginx workers, a CDN pusher) must
 * be able to traverse them; the key file's own 0600 is what protects the key.
 */
export const OUTPUT_DIR_MODE = 0o755;
/** `id`/`getent` answer from local files or NSS; do not let a hung directory service hang the run. */
const ID_LOOKUP_TIMEOUT_MS = 10_000;
/** A read that straddles a concurrent swap retries; more than a couple of swaps in a row is a bug. */
const READ_ATTEMPTS = 3;

const FILE_NAMES = {
  cert: 'cert.pem',
  chain: 'chain.pem',
  fullchain: 'fullchain.pem',
  key: 'privkey.pem',
} as const;
type FileKey = keyof typeof FILE_NAMES;
/** Key first: within a version directory order does not matter, but it keeps output writes consistent. */
const FILE_KEYS: readonly FileKey[] = ['key', 'cert', 'chain', 'fullchain'];
const CURRENT = 'current';
const VERSIONS = 'versions';
/** Same rule as CertificateSpec.name; also keeps the name from escaping the state directory. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

const execFileAsync = promisify(execFile);

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function storeIo(message: string, cause?: unknown): CertpilotError {
  return new CertpilotError('STORE_IO', `store: ${message}`, cause === undefined ? {} : { cause });
}

/** "2026-11-27T19:43:06.123Z" -> "20261127T194306.123Z": sorts by time, safe in a file name. */
function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '');
}

function withTrailingNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

interface Normalised {
  files: CertificateFiles;
  info: CertInfo;
}

export class CertStore {
  private readonly stateDir: string;
  private readonly archiveDepth: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly faults: NonNullable<CertStoreOptions['faults']>;

  constructor(opts: CertStoreOptions) {
    this.stateDir = path.resolve(opts.stateDir);
    this.archiveDepth = Number.isFinite(opts.archiveDepth) ? Math.max(0, Math.floor(opts.archiveDepth)) : 0;
    this.log = opts.log ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.faults = opts.faults ?? {};
  }

  paths(name: string): CertPaths {
    checkName(name);
    const dir = path.join(this.stateDir, 'certs', name);
    return {
      dir,
      cert: path.join(dir, FILE_NAMES.cert),
      chain: path.join(dir, FILE_NAMES.chain),
      fullchain: path.join(dir, FILE_NAMES.fullchain),
      key: path.join(dir, FILE_NAMES.key),
    };
  }

  private archiveRoot(name: string): string {
    return path.join(this.stateDir, 'archive', name);
  }

  /**
   * The current certificate, or null when none was ever installed. Throws STORE_IO when files
   * are missing or unreadable, X509_PARSE when they cannot be parsed and STORE_KEY_MISMATCH
   * when key and certificate (or certificate and fullchain) belong to different versions.
   */
  async read(name: string): Promise<StoredCertificate | null> {
    const p = this.paths(name);
    for (let attempt = 1; ; attempt++) {
      const dir = await this.resolveCurrent(p);
      if (dir === null) return null;
      try {
        return await readVersionDir(name, dir);
      } catch (err) {
        // An install swapped `current` and removed the version we had resolved: read again.
        const moved = errnoCode(err) === 'ENOENT' || errnoCode((err as Error).cause) === 'ENOENT';
        if (moved && attempt < READ_ATTEMPTS && (await this.resolveCurrent(p)) !== dir) continue;
        throw err;
      }
    }
  }

  /**
   * Only the live certificate's parsed details, for planning. Reads and parses cert.pem alone:
   * deciding whether anything is due must stay cheap for a thousand certificates (a key load
   * costs about a millisecond in OpenSSL 3). The pair itself is verified by `read()`, by every
   * install, and reported by `certpilot check` (key-mismatch) if someone tampers with it.
   */
  async readInfo(name: string): Promise<CertInfo | null> {
    const p = this.paths(name);
    for (let attempt = 1; ; attempt++) {
      const dir = await this.resolveCurrent(p);
      if (dir === null) return null;
      try {
        // Cached by PEM text: the daemon plans every certificate each cycle, and an X509 parse
        // was 0.3 ms and most of an idle cycle's CPU and garbage (bench/README.md, Daemon).
        return parseCertificateCached(await fs.readFile(path.join(dir, FILE_NAMES.cert), 'utf8'));
      } catch (err) {
        const moved = errnoCode(err) === 'ENOENT';
        if (moved && attempt < READ_ATTEMPTS && (await this.resolveCurrent(p)) !== dir) continue;
        if (moved) return null;
        throw err instanceof CertpilotError ? err : storeIo(`cannot read ${name}`, err);
      }
    }
  }

  /**
   * The directory holding the live version: the target of `current`, or the certificate
   * directory itself for plain files put there by hand or by another tool. Null when empty.
   */
  private async resolveCurrent(p: CertPaths): Promise<string | null> {
    try {
      const target = await fs.readlink(path.join(p.dir, CURRENT));
      return path.resolve(p.dir, target);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw storeIo(`cannot read ${path.join(p.dir, CURRENT)}`, err);
    }
    try {
      await fs.lstat(p.cert);
      return p.dir;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw storeIo(`cannot read ${p.cert}`, err);
    }
  }

  /**
   * Installs a new version. Order, and why:
   *  1. validate (parse, key matches, fullchain starts with cert) and resolve output owners:
   *     a bad key or an unknown user must fail before anything is written;
   *  2. write the new version into its own directory (not live yet);
   *  3. archive the current version, so a failed deploy can roll back even after a crash;
   *  4. swap `current` (the only step readers notice), then tidy old versions and the archive;
   *  5. copy to the configured outputs: written and synced as temp files before step 3, renamed
   *     back to back after step 4. A read-only or full output file system thus fails the
   *     install with the store untouched; were the store updated first, the next run would see
   *     a valid certificate and never write the outputs again.
   * A failure before step 4 leaves the live version (and the outputs) untouched. A failure in
   * the renames of step 5 leaves the store updated and throws, so the caller does not report
   * success.
   */
  async install(
    name: string,
    files: CertificateFiles,
    outputs: readonly FileOutput[] = [],
  ): Promise<{ info: CertInfo; archived?: string }> {
    const p = this.paths(name);
    const next = normalise(name, files);
    const owners = await resolveOwners(outputs, this.log);

    const versionsDir = path.join(p.dir, VERSIONS);
    await ensureDir(versionsDir, STORE_DIR_MODE);
    await this.removeLeftovers([p.dir, versionsDir, this.archiveRoot(name)]);

    let previous: StoredCertificate | null = null;
    try {
      previous = await this.read(name);
    } catch (err) {
      // Renewing is exactly what a broken certificate needs; do not let it block the fix.
      this.log.warn('current certificate unreadable; not archived', {
        cert: name,
        error: describeError(err),
      });
    }

    const now = this.clock.now();
    const versionId = await uniqueName(versionsDir, `${stamp(now)}-${next.info.serial}`);
    const versionDir = path.join(versionsDir, versionId);
    let archived: string | undefined;
    let prepared: PreparedWrite[] = [];
    try {
      await writeVersion(versionDir, next.files);
      await fsyncDir(versionsDir);
      prepared = await prepareOutputs(name, next.files, outputs, owners);
      if (previous && this.archiveDepth > 0) {
        archived = await this.archive(name, previous, `${stamp(now)}-${previous.info.serial}`);
      }
      await this.faults.beforeSwap?.();
      await swapSymlink(path.join(p.dir, CURRENT), path.join(VERSIONS, versionId));
    } catch (err) {
      // The old version is still live: drop the new version and the copy of the old one just
      // archived, or the next install would archive it a second time.
      await abortAll(prepared);
      await fs.rm(versionDir, { recursive: true, force: true }).catch(() => undefined);
      if (archived) await fs.rm(archived, { recursive: true, force: true }).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot install ${name}`, err);
    }

    await this.ensureStableLinks(p);
    await this.removeOldVersions(versionsDir, versionId);
    await this.pruneArchive(name);
    this.log.info('certificate installed', {
      cert: name,
      serial: next.info.serial,
      notAfter: next.info.notAfter.toISOString(),
      ...(archived ? { archived } : {}),
    });

    await commitOutputs(name, prepared);
    return archived ? { info: next.info, archived } : { info: next.info };
  }

  /**
   * Makes an archived version (a path from listArchive) current again: the rollback after a
   * failed deploy. The archived files are validated like any install (key matches, fullchain
   * begins with the certificate), copied into a fresh version directory and swapped in with the
   * same atomic `current` rename, then written to the outputs. The version being replaced is
   * not archived: it failed to deploy, and keeping it would push good versions out of the
   * archive. The archive entry stays, so a second rollback is still possible.
   */
  async activate(
    name: string,
    archivedDir: string,
    outputs: readonly FileOutput[] = [],
  ): Promise<{ info: CertInfo }> {
    const p = this.paths(name);
    const source = await this.readArchived(archivedDir);
    if (path.basename(path.dirname(path.resolve(archivedDir))) !== name) {
      throw storeIo(`${archivedDir} is not an archived version of ${name}`);
    }
    const next = normalise(name, source);
    const owners = await resolveOwners(outputs, this.log);
    const versionsDir = path.join(p.dir, VERSIONS);
    await ensureDir(versionsDir, STORE_DIR_MODE);
    await this.removeLeftovers([p.dir, versionsDir]);
    const versionId = await uniqueName(versionsDir, `${stamp(this.clock.now())}-${next.info.serial}`);
    const versionDir = path.join(versionsDir, versionId);
    let prepared: PreparedWrite[] = [];
    try {
      await writeVersion(versionDir, next.files);
      await fsyncDir(versionsDir);
      prepared = await prepareOutputs(name, next.files, outputs, owners);
      await swapSymlink(path.join(p.dir, CURRENT), path.join(VERSIONS, versionId));
    } catch (err) {
      await abortAll(prepared);
      await fs.rm(versionDir, { recursive: true, force: true }).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot restore ${name}`, err);
    }
    await this.ensureStableLinks(p);
    await this.removeOldVersions(versionsDir, versionId);
    this.log.warn('previous certificate restored', {
      cert: name,
      serial: next.info.serial,
      from: archivedDir,
    });
    await commitOutputs(name, prepared);
    return { info: next.info };
  }

  /** Archived versions of `name`, newest first, as directory paths. */
  async listArchive(name: string): Promise<string[]> {
    checkName(name);
    const root = this.archiveRoot(name);
    let entries: string[];
    try {
      entries = await fs.readdir(root);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storeIo(`cannot list ${root}`, err);
    }
    // Names start with a UTC timestamp, so reverse lexical order is newest first.
    return entries
      .filter((e) => !e.startsWith('.'))
      .sort()
      .reverse()
      .map((e) => path.join(root, e));
  }

  /** Reads one archived version (a path from listArchive), with the same checks as read(). */
  async readArchived(dir: string): Promise<StoredCertificate> {
    const abs = path.resolve(dir);
    return readVersionDir(path.basename(path.dirname(abs)), abs);
  }

  /** Copies a version into the archive via a temp directory, so a listed archive entry is complete. */
  private async archive(name: string, stored: StoredCertificate, id: string): Promise<string> {
    const root = this.archiveRoot(name);
    await ensureDir(root, STORE_DIR_MODE);
    const finalName = await uniqueName(root, id);
    const temp = path.join(root, `.${finalName}.tmp-${crypto.randomBytes(6).toString('hex')}`);
    try {
      await writeVersion(temp, stored);
      await fs.rename(temp, path.join(root, finalName));
      await fsyncDir(root);
    } catch (err) {
      await fs.rm(temp, { recursive: true, force: true }).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot archive ${name}`, err);
    }
    return path.join(root, finalName);
  }

  private async pruneArchive(name: string): Promise<void> {
    const all = await this.listArchive(name);
    for (const dir of all.slice(this.archiveDepth)) {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Makes each stable *.pem a symlink into `current`; created once, replaced only if wrong. */
  private async ensureStableLinks(p: CertPaths): Promise<void> {
    for (const key of FILE_KEYS) {
      const link = p[key];
      const target = path.join(CURRENT, FILE_NAMES[key]);
      const existing = await fs.readlink(link).catch(() => undefined);
      if (existing !== target) await swapSymlink(link, target);
    }
  }

  private async removeOldVersions(versionsDir: string, keep: string): Promise<void> {
    for (const entry of await fs.readdir(versionsDir)) {
      if (entry !== keep) await fs.rm(path.join(versionsDir, entry), { recursive: true, force: true });
    }
  }

  /** Temp files and directories a crashed install left behind (the caller holds the lock). */
  private async removeLeftovers(roots: readonly string[]): Promise<void> {
    for (const root of roots) {
      for (const entry of await fs.readdir(root).catch(() => [] as string[])) {
        if (isTempName(entry)) await fs.rm(path.join(root, entry), { recursive: true, force: true });
      }
    }
  }
}

function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new CertpilotError(
      'STORE_IO',
      `store: invalid certificate name "${name}" (expected ${NAME_PATTERN.source})`,
    );
  }
}

/** Validates a new version and puts its PEMs in canonical form. Throws before anything is written. */
function normalise(name: string, files: CertificateFiles): Normalised {
  const info = parseCertificate(files.cert);
  const chain = splitPemChain(files.chain);
  const fullchain = splitPemChain(files.fullchain);
  if (fullchain[0] !== info.pem) {
    throw new CertpilotError('X509_PARSE', `store: ${name}: fullchain does not begin with the certificate`);
  }
  if (!keyMatchesCertificate(info.pem, files.key)) {
    throw new CertpilotError(
      'STORE_KEY_MISMATCH',
      `store: ${name}: private key does not match certificate ${info.serial}; nothing installed`,
      { details: { cert: name, serial: info.serial } },
    );
  }
  return {
    info,
    files: {
      cert: info.pem,
      chain: chain.join(''),
      fullchain: fullchain.join(''),
      key: withTrailingNewline(files.key),
    },
  };
}

async function readVersionDir(name: string, dir: string): Promise<StoredCertificate> {
  const raw: Partial<CertificateFiles> = {};
  await Promise.all(
    FILE_KEYS.map(async (key) => {
      const file = path.join(dir, FILE_NAMES[key]);
      try {
        raw[key] = await fs.readFile(file, 'utf8');
      } catch (err) {
        throw storeIo(`${name}: cannot read ${file}: ${errnoCode(err) ?? describeError(err)}`, err);
      }
    }),
  );
  const files = raw as CertificateFiles;
  let info: CertInfo;
  try {
    info = parseCertificate(files.cert);
  } catch (err) {
    throw new CertpilotError(
      'X509_PARSE',
      `store: ${name}: ${path.join(dir, FILE_NAMES.cert)}: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(info.pem, files.key);
  } catch (err) {
    throw new CertpilotError(
      'X509_PARSE',
      `store: ${name}: ${path.join(dir, FILE_NAMES.key)}: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  if (!matches) {
    throw new CertpilotError(
      'STORE_KEY_MISMATCH',
      `store: ${name}: key in ${dir} does not match its certificate`,
      {
        details: { cert: name, dir },
      },
    );
  }
  if (splitPemChain(files.fullchain)[0] !== info.pem) {
    throw new CertpilotError(
      'STORE_KEY_MISMATCH',
      `store: ${name}: fullchain.pem in ${dir} does not begin with cert.pem (files from different versions)`,
      { details: { cert: name, dir } },
    );
  }
  return { name, info, dir, ...files };
}

async function writeVersion(dir: string, files: CertificateFiles): Promise<void> {
  await ensureDir(dir, STORE_DIR_MODE);
  for (const [i, key] of FILE_KEYS.entries()) {
    // Crash tests kill here with half a version written: `current` must still be whole.
    if (i === 2) checkpoint('mid-store-write');
    await atomicWriteFile(path.join(dir, FILE_NAMES[key]), files[key], {
      mode: key === 'key' ? DEFAULT_KEY_MODE : DEFAULT_CERT_MODE,
    });
  }
}

/** Points `link` at `target` atomically: a new symlink under a temp name, renamed over the old one. */
async function swapSymlink(link: string, target: string): Promise<void> {
  const temp = path.join(
    path.dirname(link),
    `.${path.basename(link)}.tmp-${crypto.randomBytes(6).toString('hex')}`,
  );
  try {
    await fs.symlink(target, temp);
    await fs.rename(temp, link);
    await fsyncDir(path.dirname(link));
  } catch (err) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw storeIo(`cannot point ${link} at ${target}`, err);
  }
}

/** `base`, or `base-2`, `base-3`... if a directory of that name exists (two installs in one ms). */
async function uniqueName(dir: string, base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}-${n}`;
    try {
      await fs.lstat(path.join(dir, candidate));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return candidate;
      throw storeIo(`cannot check ${path.join(dir, candidate)}`, err);
    }
  }
}

// --- outputs ------------------------------------------------------------------------------

interface Owner {
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
async function resolveOwners(outputs: readonly FileOutput[], log: Logger): Promise<Owner[]> {
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
async function prepareOutputs(
  name: string,
  files: CertificateFiles,
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
    await abortAll(prepared);
    throw err instanceof CertpilotError ? err : storeIo(`${name}: cannot write outputs`, err);
  }
  return prepared;
}

/** Renames prepared output files into place, back to back (key first). */
async function commitOutputs(name: string, prepared: readonly PreparedWrite[]): Promise<void> {
  try {
    for (const write of prepared) await write.commit();
  } catch (err) {
    await abortAll(prepared);
    throw err instanceof CertpilotError ? err : storeIo(`${name}: cannot write outputs`, err);
  }
}

async function abortAll(prepared: readonly PreparedWrite[]): Promise<void> {
  await Promise.all(prepared.map((w) => w.abort().catch(() => undefined)));
}
