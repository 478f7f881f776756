import { checkpoint } from '../core/checkpoints';
import type { FileOutput } from '../config/types';
import { systemClock, type Clock } from '../core/clock';
import { CertpilotError, describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import { CERTIFICATE_NAME_PATTERN, isCertificateName } from '../core/names';
import { keyMatchesCertificate, parseCertificate, splitPemChain, type CertInfo } from '../x509';
import { parseCertificateCached } from '../x509/cache';
import type { PreparedWrite } from './atomic';
import { FileStorage } from './file-storage';
import { abortOutputs, commitOutputs, prepareOutputs, resolveOwners } from './outputs';
import {
  PUBLIC_MODE,
  SECRET_MODE,
  readPointer,
  supportsPointers,
  writePointer,
  type LockHandle,
  type Storage,
} from './storage';

export { OUTPUT_DIR_MODE } from './outputs';

/**
 * The certificate store, written against Storage (src/store/storage.ts).
 *
 * Keys (and, on the file backend, the layout under <stateDir>):
 *
 *   certs/<name>/cert.pem       -> current/cert.pem        stable paths for nginx & co.
 *   certs/<name>/chain.pem      -> current/chain.pem
 *   certs/<name>/fullchain.pem  -> current/fullchain.pem
 *   certs/<name>/privkey.pem    -> current/privkey.pem
 *   certs/<name>/current        -> versions/<id>           the one pointer that changes
 *   certs/<name>/versions/<id>/{cert,chain,fullchain,privkey}.pem
 *   archive/<name>/<id>/{cert,chain,fullchain,privkey}.pem previous versions, newest kept
 *
 * Why a versioned prefix and a pointer: four values cannot be replaced in one step, and a
 * reader that pairs a new certificate with an old key takes the site down (nginx refuses to
 * start with a mismatched pair). Each version is written completely under its own prefix and
 * only then made live by one atomic pointer write. On a backend with the pointer capability
 * (the file backend: a symlink renamed over the old one) the stable `*.pem` pointers are also
 * created, so the paths in `paths()` can go straight into nginx and switch versions atomically
 * for it too; certbot's live/ links are swapped one file at a time, which is the mix this
 * avoids. A backend without the capability keeps `current` as a plain key holding the version
 * prefix; nothing reads such a backend directly, so it needs no stable links.
 *
 * A reader that opens the four stable links one by one can still straddle a swap; `read()`
 * therefore resolves `current` once, reads all values of that version, and checks that key and
 * certificate match before returning anything.
 *
 * Archive entries are written key by key, so a crash can leave an incomplete one: listArchive
 * lists only entries holding all four values, and the next install removes the rest.
 *
 * Concurrency: one install per certificate name at a time; the caller holds the lock, and may
 * pass it (`lock`) to fence every write of the install on it.
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
  /** Where the values were read from: a version (read) or an archive entry (storage.locate of its prefix). */
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
  /** Time source for version and archive names. */
  clock?: Clock;
  /** Test-only fault hooks. */
  faults?: { beforeSwap?: () => void | Promise<void> };
  /** Where versions are kept. Default: the file backend rooted at `stateDir`. */
  storage?: Storage;
}

/** Options of the writing methods: the caller's lock (fenced writes) and cancellation. */
export interface StoreWriteOptions {
  lock?: LockHandle;
  signal?: AbortSignal;
}

/** Private keys are readable by their owner only. */
export const DEFAULT_KEY_MODE = SECRET_MODE;
/** Certificates are public; 0644 lets a non-root web server read them. */
export const DEFAULT_CERT_MODE = PUBLIC_MODE;
/** Directories holding keys. */
export const STORE_DIR_MODE = 0o700;
/** A read that straddles a concurrent swap retries; more than a couple of swaps in a row is a bug. */
const READ_ATTEMPTS = 3;

const FILE_NAMES = {
  cert: 'cert.pem',
  chain: 'chain.pem',
  fullchain: 'fullchain.pem',
  key: 'privkey.pem',
} as const;
type FileKey = keyof typeof FILE_NAMES;
/** Key first: within a version order does not matter, but it keeps output writes consistent. */
const FILE_KEYS: readonly FileKey[] = ['key', 'cert', 'chain', 'fullchain'];

const certKey = (name: string): string => `certs/${name}`;
const currentKey = (name: string): string => `certs/${name}/current`;
const versionsKey = (name: string): string => `certs/${name}/versions`;
const archiveKey = (name: string): string => `archive/${name}`;

function storeIo(message: string, cause?: unknown, details?: Record<string, unknown>): CertpilotError {
  return new CertpilotError('STORE_IO', `store: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    ...(details ? { details } : {}),
  });
}

/** A value of a version that is not there: the version may have been swapped out meanwhile. */
function isMissing(err: unknown): boolean {
  return err instanceof CertpilotError && err.details.missing === true;
}

/** "2026-11-27T19:43:06.123Z" -> "20261127T194306.123Z": sorts by time, safe in a key. */
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
  private readonly storage: Storage;
  private readonly archiveDepth: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly faults: NonNullable<CertStoreOptions['faults']>;

  constructor(opts: CertStoreOptions) {
    this.storage = opts.storage ?? new FileStorage(opts.stateDir);
    this.archiveDepth = Number.isFinite(opts.archiveDepth) ? Math.max(0, Math.floor(opts.archiveDepth)) : 0;
    this.log = opts.log ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.faults = opts.faults ?? {};
  }

  paths(name: string): CertPaths {
    checkName(name);
    const at = (file: string): string => this.storage.locate(`${certKey(name)}/${file}`);
    return {
      dir: this.storage.locate(certKey(name)),
      cert: at(FILE_NAMES.cert),
      chain: at(FILE_NAMES.chain),
      fullchain: at(FILE_NAMES.fullchain),
      key: at(FILE_NAMES.key),
    };
  }

  /**
   * The current certificate, or null when none was ever installed. Throws STORE_IO when values
   * are missing or unreadable, X509_PARSE when they cannot be parsed and STORE_KEY_MISMATCH
   * when key and certificate (or certificate and fullchain) belong to different versions.
   */
  async read(name: string): Promise<StoredCertificate | null> {
    checkName(name);
    for (let attempt = 1; ; attempt++) {
      const version = await this.resolveCurrent(name);
      if (version === null) return null;
      try {
        return await readVersion(this.storage, name, version);
      } catch (err) {
        // An install swapped `current` and removed the version we had resolved: read again.
        if (isMissing(err) && attempt < READ_ATTEMPTS && (await this.resolveCurrent(name)) !== version)
          continue;
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
    checkName(name);
    for (let attempt = 1; ; attempt++) {
      const version = await this.resolveCurrent(name);
      if (version === null) return null;
      const key = `${version}/${FILE_NAMES.cert}`;
      let pem: Buffer | null;
      try {
        pem = await this.storage.get(key);
      } catch (err) {
        throw err instanceof CertpilotError ? err : storeIo(`cannot read ${name}`, err);
      }
      if (pem === null) {
        if (attempt < READ_ATTEMPTS && (await this.resolveCurrent(name)) !== version) continue;
        return null;
      }
      // Cached by PEM text: the daemon plans every certificate each cycle, and an X509 parse
      // was 0.3 ms and most of an idle cycle's CPU and garbage (bench/README.md, Daemon).
      return parseCertificateCached(pem.toString('utf8'));
    }
  }

  /**
   * The prefix holding the live version: the target of `current`, or the certificate's own
   * prefix for plain files put there by hand or by another tool. Null when empty.
   */
  private async resolveCurrent(name: string): Promise<string | null> {
    const target = await readPointer(this.storage, currentKey(name));
    if (target !== null) return target;
    const plain = await this.storage.stat(`${certKey(name)}/${FILE_NAMES.cert}`);
    return plain === null ? null : certKey(name);
  }

  /**
   * Installs a new version. Order, and why:
   *  1. validate (parse, key matches, fullchain starts with cert) and resolve output owners:
   *     a bad key or an unknown user must fail before anything is written;
   *  2. write the new version under its own prefix (not live yet);
   *  3. archive the current version, so a failed deploy can roll back even after a crash;
   *  4. swap `current` (the only step readers notice), then tidy old versions and the archive;
   *  5. copy to the configured outputs (src/store/outputs.ts): written and synced as temp files
   *     before step 3, renamed back to back after step 4. A read-only or full output file
   *     system thus fails the install with the store untouched; were the store updated first,
   *     the next run would see a valid certificate and never write the outputs again.
   * A failure before step 4 leaves the live version (and the outputs) untouched. A failure in
   * the renames of step 5 leaves the store updated and throws, so the caller does not report
   * success.
   */
  async install(
    name: string,
    files: CertificateFiles,
    outputs: readonly FileOutput[] = [],
    opts: StoreWriteOptions = {},
  ): Promise<{ info: CertInfo; archived?: string }> {
    checkName(name);
    const next = normalise(name, files);
    const owners = await resolveOwners(outputs, this.log);
    await this.storage.sweep(certKey(name), opts);
    await this.storage.sweep(archiveKey(name), opts);

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
    const id = await this.uniqueId(versionsKey(name), `${stamp(now)}-${next.info.serial}`);
    const version = `${versionsKey(name)}/${id}`;
    let archived: string | undefined;
    let prepared: PreparedWrite[] = [];
    try {
      await writeVersion(this.storage, version, next.files, opts);
      prepared = await prepareOutputs(name, next.files, outputs, owners);
      if (previous && this.archiveDepth > 0) {
        archived = await this.archive(name, previous, `${stamp(now)}-${previous.info.serial}`, opts);
      }
      await this.faults.beforeSwap?.();
      await writePointer(this.storage, currentKey(name), version, opts);
    } catch (err) {
      // The old version is still live: drop the new version and the copy of the old one just
      // archived, or the next install would archive it a second time.
      await abortOutputs(prepared);
      await this.storage.delete(version).catch(() => undefined);
      if (archived) await this.storage.delete(archived).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot install ${name}`, err);
    }

    await this.ensureStableLinks(name, opts);
    await this.removeOldVersions(name, version, opts);
    await this.pruneArchive(name, opts);
    const archivedAt = archived === undefined ? undefined : this.storage.locate(archived);
    this.log.info('certificate installed', {
      cert: name,
      serial: next.info.serial,
      notAfter: next.info.notAfter.toISOString(),
      ...(archivedAt ? { archived: archivedAt } : {}),
    });

    await commitOutputs(name, prepared);
    return archivedAt ? { info: next.info, archived: archivedAt } : { info: next.info };
  }

  /**
   * Makes an archived version (a location from listArchive) current again: the rollback after
   * a failed deploy. The archived values are validated like any install (key matches, fullchain
   * begins with the certificate), copied into a fresh version and swapped in with the same
   * atomic `current` write, then written to the outputs. The version being replaced is not
   * archived: it failed to deploy, and keeping it would push good versions out of the archive.
   * The archive entry stays, so a second rollback is still possible.
   */
  async activate(
    name: string,
    archivedDir: string,
    outputs: readonly FileOutput[] = [],
    opts: StoreWriteOptions = {},
  ): Promise<{ info: CertInfo }> {
    checkName(name);
    const source = await this.readArchived(archivedDir);
    if (source.name !== name) throw storeIo(`${archivedDir} is not an archived version of ${name}`);
    const next = normalise(name, source);
    const owners = await resolveOwners(outputs, this.log);
    await this.storage.sweep(certKey(name), opts);
    const id = await this.uniqueId(versionsKey(name), `${stamp(this.clock.now())}-${next.info.serial}`);
    const version = `${versionsKey(name)}/${id}`;
    let prepared: PreparedWrite[] = [];
    try {
      await writeVersion(this.storage, version, next.files, opts);
      prepared = await prepareOutputs(name, next.files, outputs, owners);
      await writePointer(this.storage, currentKey(name), version, opts);
    } catch (err) {
      await abortOutputs(prepared);
      await this.storage.delete(version).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot restore ${name}`, err);
    }
    await this.ensureStableLinks(name, opts);
    await this.removeOldVersions(name, version, opts);
    this.log.warn('previous certificate restored', {
      cert: name,
      serial: next.info.serial,
      from: archivedDir,
    });
    await commitOutputs(name, prepared);
    return { info: next.info };
  }

  /** Names of every certificate in the store (configured or not), sorted. */
  async listNames(): Promise<string[]> {
    const names = await this.storage.list('certs');
    return names.filter((name) => isCertificateName(name));
  }

  /**
   * Removes a certificate from the store: its live version is copied to the archive first
   * (however deep the archive is set, so `delete` never destroys the last copy of a key), then
   * everything under certs/<name> goes. Returns the archive entry's location, or undefined when
   * nothing readable was there to archive. The caller holds the certificate's lock.
   */
  async remove(name: string, opts: StoreWriteOptions = {}): Promise<string | undefined> {
    checkName(name);
    let current: StoredCertificate | null = null;
    try {
      current = await this.read(name);
    } catch (err) {
      this.log.warn('current certificate unreadable; not archived', {
        cert: name,
        error: describeError(err),
      });
    }
    let archived: string | undefined;
    if (current) {
      const entry = await this.archive(
        name,
        current,
        `${stamp(this.clock.now())}-${current.info.serial}`,
        opts,
      );
      archived = this.storage.locate(entry);
    }
    await this.storage.delete(certKey(name), opts);
    return archived;
  }

  /** Complete archived versions of `name`, newest first, as locations (file backend: directory paths). */
  async listArchive(name: string): Promise<string[]> {
    checkName(name);
    const { complete } = await this.archiveEntries(name);
    // Ids start with a UTC timestamp, so reverse lexical order is newest first.
    return complete
      .sort()
      .reverse()
      .map((id) => this.storage.locate(`${archiveKey(name)}/${id}`));
  }

  /** Reads one archived version (a location from listArchive), with the same checks as read(). */
  async readArchived(dir: string): Promise<StoredCertificate> {
    const key = this.storage.keyAt(dir);
    const parts = key?.split('/') ?? [];
    if (key === null || parts.length !== 3 || parts[0] !== 'archive' || !isCertificateName(parts[1])) {
      throw storeIo(`${dir} is not an archived certificate version`);
    }
    return readVersion(this.storage, parts[1]!, key);
  }

  /** Ids under archive/<name>, split into complete entries and ones a crash left incomplete. */
  private async archiveEntries(name: string): Promise<{ complete: string[]; incomplete: string[] }> {
    const counts = new Map<string, number>();
    for (const key of await this.storage.list(archiveKey(name), { recursive: true })) {
      const [id, file] = key.split('/');
      counts.set(id!, (counts.get(id!) ?? 0) + (file !== undefined && isVersionFile(file) ? 1 : 0));
    }
    const complete: string[] = [];
    const incomplete: string[] = [];
    for (const [id, n] of counts) (n === FILE_KEYS.length ? complete : incomplete).push(id);
    return { complete, incomplete };
  }

  /** Copies a version into the archive and returns the entry's key. */
  private async archive(
    name: string,
    stored: StoredCertificate,
    id: string,
    opts: StoreWriteOptions,
  ): Promise<string> {
    const entry = `${archiveKey(name)}/${await this.uniqueId(archiveKey(name), id)}`;
    try {
      await writeVersion(this.storage, entry, stored, opts);
    } catch (err) {
      await this.storage.delete(entry).catch(() => undefined);
      throw err instanceof CertpilotError ? err : storeIo(`cannot archive ${name}`, err);
    }
    return entry;
  }

  private async pruneArchive(name: string, opts: StoreWriteOptions): Promise<void> {
    const { complete, incomplete } = await this.archiveEntries(name);
    const drop = [...complete.sort().reverse().slice(this.archiveDepth), ...incomplete];
    for (const id of drop) await this.storage.delete(`${archiveKey(name)}/${id}`, opts);
  }

  /** Makes each stable *.pem a pointer into `current`; created once, replaced only if wrong. */
  private async ensureStableLinks(name: string, opts: StoreWriteOptions): Promise<void> {
    const storage = this.storage;
    if (!supportsPointers(storage)) return;
    for (const key of FILE_KEYS) {
      const link = `${certKey(name)}/${FILE_NAMES[key]}`;
      const target = `${currentKey(name)}/${FILE_NAMES[key]}`;
      const existing = await storage.getPointer(link).catch(() => undefined);
      if (existing !== target) await storage.setPointer(link, target, opts);
    }
  }

  private async removeOldVersions(name: string, keep: string, opts: StoreWriteOptions): Promise<void> {
    for (const id of await this.storage.list(versionsKey(name))) {
      const version = `${versionsKey(name)}/${id}`;
      if (version !== keep) await this.storage.delete(version, opts);
    }
  }

  /** `base`, or `base-2`, `base-3`... if that id exists under `prefix` (two installs in one ms). */
  private async uniqueId(prefix: string, base: string): Promise<string> {
    const taken = new Set(await this.storage.list(prefix));
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? base : `${base}-${n}`;
      if (!taken.has(candidate)) return candidate;
    }
  }
}

function isVersionFile(file: string): boolean {
  return (Object.values(FILE_NAMES) as string[]).includes(file);
}

function checkName(name: string): void {
  if (!isCertificateName(name)) {
    throw new CertpilotError(
      'STORE_IO',
      `store: invalid certificate name "${name}" (expected ${CERTIFICATE_NAME_PATTERN.source})`,
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

/** Reads the four values of a version (or archive entry) at `prefix` and checks they belong together. */
async function readVersion(storage: Storage, name: string, prefix: string): Promise<StoredCertificate> {
  const dir = storage.locate(prefix);
  const at = (key: FileKey): string => storage.locate(`${prefix}/${FILE_NAMES[key]}`);
  const raw: Partial<CertificateFiles> = {};
  await Promise.all(
    FILE_KEYS.map(async (key) => {
      const value = await storage.get(`${prefix}/${FILE_NAMES[key]}`).catch((err: unknown) => {
        throw storeIo(`${name}: cannot read ${at(key)}: ${describeError(err)}`, err);
      });
      if (value === null)
        throw storeIo(`${name}: cannot read ${at(key)}: ENOENT`, undefined, { missing: true });
      raw[key] = value.toString('utf8');
    }),
  );
  const files = raw as CertificateFiles;
  const parseError = (key: FileKey, err: unknown): CertpilotError =>
    new CertpilotError('X509_PARSE', `store: ${name}: ${at(key)}: ${describeError(err)}`, { cause: err });
  let info: CertInfo;
  try {
    info = parseCertificate(files.cert);
  } catch (err) {
    throw parseError('cert', err);
  }
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(info.pem, files.key);
  } catch (err) {
    throw parseError('key', err);
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

/** Writes the four values of a version under `prefix`: keys 0600, certificates 0644. */
async function writeVersion(
  storage: Storage,
  prefix: string,
  files: CertificateFiles,
  opts: StoreWriteOptions,
): Promise<void> {
  for (const [i, key] of FILE_KEYS.entries()) {
    // Crash tests kill here with half a version written: `current` must still be whole.
    if (i === 2) checkpoint('mid-store-write');
    await storage.put(`${prefix}/${FILE_NAMES[key]}`, files[key], {
      ...opts,
      mode: key === 'key' ? DEFAULT_KEY_MODE : DEFAULT_CERT_MODE,
    });
  }
}
