import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AcmeSettings } from '../config/types';
import { fetchDirectoryInfo, type DirectoryInfo } from '../acme/ari';
import { atomicWriteFile, ensureDir } from '../store/atomic';

/**
 * What the CA's directory offers (ARI `renewalInfo`, profiles), cached in the state directory
 * so that a no-op `renew` from a timer makes no request at all: directories change rarely,
 * and ARI itself is polled per certificate on its own Retry-After schedule.
 */
export const DIRECTORY_CACHE_MS = 24 * 3_600_000;
/** A CA that could not be reached is asked again after an hour, not on every run. */
export const DIRECTORY_FAILURE_CACHE_MS = 3_600_000;

interface CacheFile {
  directoryUrl: string;
  fetchedAt: string;
  ok: boolean;
  info: DirectoryInfo;
}

const NONE: DirectoryInfo = { profiles: {} };

function cacheFile(stateDir: string, directoryUrl: string): string {
  const hash = createHash('sha256').update(directoryUrl).digest('hex').slice(0, 12);
  return path.join(stateDir, 'cache', `directory-${hash}.json`);
}

/**
 * The cached directory only: no request, no write (`renew --dry-run`). Without a fresh cache
 * entry the plan is made as for a CA without ARI, which is what a CA that was never asked is.
 */
export async function readCachedDirectoryInfo(
  acme: AcmeSettings,
  stateDir: string,
  now: Date,
): Promise<DirectoryInfo> {
  try {
    const cached = JSON.parse(await readFile(cacheFile(stateDir, acme.directoryUrl), 'utf8')) as CacheFile;
    const age = now.getTime() - Date.parse(cached.fetchedAt);
    if (cached.directoryUrl === acme.directoryUrl && age >= 0 && age < DIRECTORY_CACHE_MS)
      return cached.info ?? NONE;
  } catch {
    // No cache: nothing known.
  }
  return NONE;
}

export async function cachedDirectoryInfo(
  acme: AcmeSettings,
  stateDir: string,
  now: Date,
  log: Logger,
  signal?: AbortSignal,
  /** The trusted CA certificates (acme.caBundle), read once per run by the caller. */
  readCa: () => Promise<string | undefined> = async () =>
    acme.caBundle ? readFile(acme.caBundle, 'utf8') : undefined,
): Promise<DirectoryInfo> {
  const file = cacheFile(stateDir, acme.directoryUrl);
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
    const age = now.getTime() - Date.parse(cached.fetchedAt);
    const ttl = cached.ok ? DIRECTORY_CACHE_MS : DIRECTORY_FAILURE_CACHE_MS;
    if (cached.directoryUrl === acme.directoryUrl && age >= 0 && age < ttl) return cached.info ?? NONE;
  } catch {
    // Missing or unreadable cache: fetch.
  }
  let entry: CacheFile;
  try {
    const ca = await readCa();
    const info = await fetchDirectoryInfo(acme.directoryUrl, {
      timeoutMs: acme.requestTimeoutMs,
      ...(ca ? { ca } : {}),
      ...(signal ? { signal } : {}),
    });
    entry = { directoryUrl: acme.directoryUrl, fetchedAt: now.toISOString(), ok: true, info };
  } catch (err) {
    log.warn('could not read the ACME directory; renewal timing falls back to the certificate lifetime', {
      directory: acme.directoryUrl,
      error: describeError(err),
    });
    entry = { directoryUrl: acme.directoryUrl, fetchedAt: now.toISOString(), ok: false, info: NONE };
  }
  try {
    await ensureDir(path.dirname(file), 0o700);
    await atomicWriteFile(file, JSON.stringify(entry) + '\n', { mode: 0o600 });
  } catch (err) {
    log.debug('directory cache not written', { error: describeError(err) });
  }
  return entry.info;
}
