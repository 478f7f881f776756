import { createHash } from 'node:crypto';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CertpilotError } from '../core/errors';
import { atomicWriteFile, ensureDir } from '../store/atomic';

/**
 * ACME accounts live under <stateDir>/accounts/<host>-<hash of directory URL>/: one account per
 * directory URL, so switching between staging and production never mixes keys.
 */
export interface StoredAccount {
  directoryUrl: string;
  /** The account URL (kid) returned by newAccount; absent until registered. */
  url?: string;
  keyPem: string;
  createdAt?: string;
}

export function accountDir(stateDir: string, directoryUrl: string): string {
  const u = new URL(directoryUrl);
  const hash = createHash('sha256').update(directoryUrl).digest('hex').slice(0, 12);
  const host = u.host.replace(/[^A-Za-z0-9.-]/g, '_');
  return path.join(stateDir, 'accounts', `${host}-${hash}`);
}

export async function readAccount(stateDir: string, directoryUrl: string): Promise<StoredAccount | null> {
  const dir = accountDir(stateDir, directoryUrl);
  let keyPem: string;
  try {
    keyPem = await readFile(path.join(dir, 'account.key'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CertpilotError('STORE_IO', `acme: cannot read account key in ${dir}`, { cause: err });
  }
  let meta: { url?: string; createdAt?: string } = {};
  try {
    meta = JSON.parse(await readFile(path.join(dir, 'account.json'), 'utf8')) as typeof meta;
  } catch (err) {
    // A key without metadata means registration did not finish: register again with the same key
    // (newAccount with an existing key returns the existing account, RFC 8555 §7.3.1).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CertpilotError('STORE_IO', `acme: account metadata in ${dir} is unreadable`, { cause: err });
    }
  }
  return { directoryUrl, keyPem, url: meta.url, createdAt: meta.createdAt };
}

export async function writeAccountKey(stateDir: string, directoryUrl: string, keyPem: string): Promise<void> {
  const dir = accountDir(stateDir, directoryUrl);
  await ensureDir(dir, 0o700);
  await atomicWriteFile(path.join(dir, 'account.key'), keyPem, { mode: 0o600 });
}

export async function writeAccountMeta(stateDir: string, account: StoredAccount): Promise<void> {
  const dir = accountDir(stateDir, account.directoryUrl);
  await ensureDir(dir, 0o700);
  const meta = { directoryUrl: account.directoryUrl, url: account.url, createdAt: account.createdAt };
  await atomicWriteFile(path.join(dir, 'account.json'), JSON.stringify(meta, null, 2) + '\n', {
    mode: 0o600,
  });
}

/**
 * Account key rollover (RFC 8555 §7.3.5) in three steps, each leaving a usable account:
 *  1. the new key is written as account.key.next (durable) before the CA is told;
 *  2. the CA is told (keyChange);
 *  3. account.key.next is renamed over account.key (atomic).
 * A crash between 1 and 3 leaves both keys on disk; `settleKeyChange` asks the CA which one it
 * knows and keeps that one.
 */
const NEXT_KEY = 'account.key.next';

export async function writeNextAccountKey(
  stateDir: string,
  directoryUrl: string,
  keyPem: string,
): Promise<void> {
  const dir = accountDir(stateDir, directoryUrl);
  await atomicWriteFile(path.join(dir, NEXT_KEY), keyPem, { mode: 0o600 });
}

export async function readNextAccountKey(stateDir: string, directoryUrl: string): Promise<string | null> {
  try {
    return await readFile(path.join(accountDir(stateDir, directoryUrl), NEXT_KEY), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CertpilotError('STORE_IO', `acme: cannot read ${NEXT_KEY}`, { cause: err });
  }
}

/** Step 3, or the repair after a crash once the CA confirmed the new key: one rename. */
export async function promoteNextAccountKey(stateDir: string, directoryUrl: string): Promise<void> {
  const dir = accountDir(stateDir, directoryUrl);
  await rename(path.join(dir, NEXT_KEY), path.join(dir, 'account.key'));
}

/** The CA never learnt the new key: forget it. */
export async function discardNextAccountKey(stateDir: string, directoryUrl: string): Promise<void> {
  await rm(path.join(accountDir(stateDir, directoryUrl), NEXT_KEY), { force: true });
}

/**
 * Moves a deactivated account's directory aside (`<dir>.deactivated-<time>`), so the next
 * order registers a new account instead of failing with the old one, and the old key is kept.
 */
export async function retireAccount(stateDir: string, directoryUrl: string, now: Date): Promise<string> {
  const dir = accountDir(stateDir, directoryUrl);
  const aside = `${dir}.deactivated-${now.toISOString().replace(/[-:]/g, '')}`;
  await rename(dir, aside);
  return aside;
}
