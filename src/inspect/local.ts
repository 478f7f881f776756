import fs from 'node:fs';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { throwIfAborted } from '../core/abort';
import { describeError } from '../core/errors';
import { readOpenFileSync } from '../core/read-fd';
import { splitPemChain, type CertInfo } from '../x509';
import { parseCertificateCached } from '../x509/cache';
import { mapWithConcurrency } from '../core/concurrency';
import { assessCertificate, type AssessContext, type CheckStatus, type Finding } from './findings';

/**
 * Inventory of certificate files on disk: which files a set of watch patterns names, and what
 * each of them holds.
 */

/**
 * PEM bundles are a few KiB; even a long chain with a key stays far under this. A glob that
 * catches a log file or a disk image must not make us read it whole.
 */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/**
 * Files read at once. Reads are cheap but each holds a descriptor; 32 keeps us far from the
 * common 1024 soft limit while still overlapping I/O latency on network file systems.
 */
export const DEFAULT_FILE_CONCURRENCY = 32;

export interface FileInspectContext extends Omit<AssessContext, 'keyPem' | 'chainPems'> {
  /** Private key to check against the leaf. Without it, a key block inside the file is used. */
  readonly keyPath?: string;
  /**
   * Check that the file carries the chain after the leaf (default true: servers such as nginx
   * read leaf and intermediates from one file). Set false for a leaf-only `cert.pem`.
   */
  readonly checkChain?: boolean;
  readonly signal?: AbortSignal;
  /**
   * Read the files with synchronous system calls: for a one-shot `certpilot check`, where
   * nothing else waits on the event loop (a file system that hangs holds the process either
   * way), and a callback per open, fstat, read and close cost a fifth of a 1,000-file check.
   * The daemon leaves it off, so a hung mount never blocks /healthz or its timers.
   */
  readonly readSync?: boolean;
}

export interface FileInspection {
  /** As given (callers pass absolute paths from expandWatchPaths or configuration). */
  readonly path: string;
  /** `unknown` when the file could not be read or holds no parsable certificate. */
  readonly status: CheckStatus;
  /** Why the file could not be inspected; absent when it could. */
  readonly error?: string;
  /** The first certificate of the file (the leaf, by the fullchain convention). */
  readonly certificate?: CertInfo;
  /** The certificates after the leaf, in file order. */
  readonly chain: CertInfo[];
  readonly daysLeft?: number;
  readonly lifetimeLeftRatio?: number;
  readonly findings: Finding[];
  /**
   * The file holds a private key and no certificate (a `privkey.pem` next to the chain). A glob
   * that matches it is not reporting a broken certificate file; a literal path still is.
   */
  readonly keyOnly?: boolean;
}

const PRIVATE_KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/;

/** Why `file` is not read: not a regular file, or larger than any PEM bundle. */
function refuseFile(file: string, st: fs.Stats): Error | undefined {
  if (!st.isFile()) return new Error(`${file} is not a regular file`);
  if (st.size > MAX_PEM_FILE_BYTES) {
    return new Error(`${file} is ${st.size} bytes, larger than any PEM bundle (limit ${MAX_PEM_FILE_BYTES})`);
  }
  return undefined;
}

/**
 * Opens, checks and reads one small file. Written with fs callbacks rather than a FileHandle:
 * each FileHandle step is a promise of its own (open, stat, read, close, plus readFile's
 * chunking), which cost twice the syscalls' time over 1,000 files.
 */
function readSmallFile(file: string, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    fs.open(file, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      // Closed whatever happened; a failed close is the error, as from a `finally` that closes.
      const finish = (outcome: { text: string } | { error: unknown }): void =>
        fs.close(fd, (closeError) => {
          if (closeError) reject(closeError);
          else if ('text' in outcome) resolve(outcome.text);
          else reject(outcome.error);
        });
      fs.fstat(fd, (statError, st) => {
        if (statError) return finish({ error: statError });
        const refused = refuseFile(file, st);
        if (refused) return finish({ error: refused });
        // As readFile: a regular file's size bytes (less at an early end of file); when fstat
        // says 0 (some pseudo files), whatever it holds up to its end.
        const size = st.size;
        let buf = Buffer.allocUnsafe(size > 0 ? size : 8192);
        let length = 0;
        const readMore = (): void => {
          if (signal?.aborted) return finish({ error: signal.reason });
          if (length === buf.length) {
            const bigger = Buffer.allocUnsafe(buf.length * 2);
            buf.copy(bigger, 0, 0, length);
            buf = bigger;
          }
          fs.read(fd, buf, length, buf.length - length, null, (readError, n) => {
            if (readError) return finish({ error: readError });
            length += n;
            if (n === 0 || length === size) return finish({ text: buf.toString('utf8', 0, length) });
            readMore();
          });
        };
        readMore();
      });
    });
  });
}

/** readSmallFile's checks and reads with synchronous calls (FileInspectContext.readSync). */
function readSmallFileSync(file: string): string {
  // O_NONBLOCK: a FIFO matched by a glob fails the regular-file check below instead of
  // blocking in open(); regular files ignore the flag.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    const refused = refuseFile(file, st);
    if (refused) throw refused;
    // As readSmallFile: size bytes (less at an early end of file); when fstat says 0, whatever
    // the file holds up to its end.
    return readOpenFileSync(fd, st.size).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function failed(file: string, error: string): FileInspection {
  return { path: file, status: 'unknown', error, chain: [], findings: [] };
}

/**
 * Reads one PEM bundle (leaf first, then chain; a private key block may be included, as
 * HAProxy expects) and assesses it. Never throws for a bad file: the problem is reported in
 * `error` so one broken file does not hide the other 999. Cancellation does throw.
 */
export async function inspectFile(file: string, ctx: FileInspectContext): Promise<FileInspection> {
  throwIfAborted(ctx.signal, 'inspect');
  let text: string;
  try {
    text = ctx.readSync ? readSmallFileSync(file) : await readSmallFile(file, ctx.signal);
  } catch (err) {
    throwIfAborted(ctx.signal, 'inspect');
    return failed(file, `inspect: cannot read ${file}: ${describeError(err)}`);
  }
  let pems: string[];
  let leaf: CertInfo;
  let chain: CertInfo[];
  try {
    pems = splitPemChain(text);
    if (pems.length === 0) {
      const keyOnly = PRIVATE_KEY_BLOCK.test(text);
      return {
        ...failed(file, `inspect: ${file} holds no certificate${keyOnly ? ', only a private key' : ''}`),
        ...(keyOnly ? { keyOnly } : {}),
      };
    }
    [leaf, ...chain] = pems.map((p) => parseCertificateCached(p)) as [CertInfo, ...CertInfo[]];
  } catch (err) {
    return failed(file, `inspect: cannot parse ${file}: ${describeError(err)}`);
  }

  let keyPem: string | undefined;
  if (ctx.keyPath !== undefined) {
    try {
      keyPem = ctx.readSync ? readSmallFileSync(ctx.keyPath) : await readSmallFile(ctx.keyPath, ctx.signal);
    } catch (err) {
      throwIfAborted(ctx.signal, 'inspect');
      return {
        ...failed(file, `inspect: cannot read key ${ctx.keyPath}: ${describeError(err)}`),
        certificate: leaf,
        chain,
      };
    }
  } else {
    keyPem = PRIVATE_KEY_BLOCK.exec(text)?.[0];
  }

  const assessment = assessCertificate(leaf, {
    now: ctx.now,
    thresholds: ctx.thresholds,
    expectedNames: ctx.expectedNames,
    keyPem,
    chainPems: ctx.checkChain === false ? undefined : pems.slice(1),
  });
  return {
    path: file,
    status: assessment.status,
    certificate: leaf,
    chain,
    daysLeft: assessment.daysLeft,
    lifetimeLeftRatio: assessment.lifetimeLeftRatio,
    findings: assessment.findings,
  };
}

/** inspectFile over many files, a bounded number at a time; results in input order. */
export function inspectFiles(
  files: readonly string[],
  ctx: FileInspectContext,
  concurrency = DEFAULT_FILE_CONCURRENCY,
): Promise<FileInspection[]> {
  return mapWithConcurrency(files, concurrency, (f) => inspectFile(f, ctx), ctx.signal, 'inspect');
}

/**
 * Splits a pattern into the literal directory before its first wildcard segment and the rest,
 * so the crawl starts there instead of at the working directory (tinyglobby's advice for
 * absolute patterns, and it keeps `/etc/ssl/**` from walking `/`).
 */
function splitPattern(pattern: string): { base: string; rest: string } {
  const abs = path.resolve(pattern);
  const segments = abs.split(path.sep);
  const firstDynamic = segments.findIndex((s) => isDynamicPattern(s));
  return {
    base: segments.slice(0, firstDynamic).join(path.sep) || path.sep,
    rest: segments.slice(firstDynamic).join('/'),
  };
}

/**
 * Expands watch patterns (`*`, `?`, `**`, `{a,b}`, `[ab]`) into absolute, sorted, distinct
 * file paths. Literal paths are returned as given even when missing, so inspectFile reports
 * "cannot read" instead of the file silently dropping out of the inventory. Dot files are not
 * matched by wildcards (shell convention; it also skips editors' and certpilot's own temp
 * files); symlinks are followed, as certbot's `live/` directory consists of them.
 *
 * Async (Node 20 has no fs.glob; tinyglobby crawls with fdir, in parallel).
 */
export async function expandWatchPaths(patterns: readonly string[], signal?: AbortSignal): Promise<string[]> {
  const found = new Set<string>();
  await Promise.all(
    patterns.map(async (pattern) => {
      if (!isDynamicPattern(pattern)) {
        found.add(path.resolve(pattern));
        return;
      }
      const { base, rest } = splitPattern(pattern);
      const matches = await glob(rest, {
        cwd: base,
        absolute: true,
        onlyFiles: true,
        dot: false,
        followSymbolicLinks: true,
        // A literal directory in a pattern must not turn into "everything below it".
        expandDirectories: false,
        signal,
      });
      for (const m of matches) found.add(path.resolve(m));
    }),
  );
  throwIfAborted(signal, 'inspect');
  return [...found].sort();
}
