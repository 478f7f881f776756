import { CertpilotError } from '../core/errors';
import { isCertificateName } from '../core/names';
import { FileStorage } from '../store/file-storage';
import { SECRET_MODE, type Storage } from '../store/storage';
import type { CertificateFiles } from '../store/cert-store';

/**
 * The newly issued version a rollback replaced, one JSON value per certificate under
 * `kept/<name>.json` (mode 0600: it holds the private key).
 *
 * Why: a rollback restores the previous version, which is usually due; without this the next
 * run would order again for a certificate the CA already issued, and a broken reload would
 * then cost an order per attempt until the exact-set guard stopped it. With it, once the
 * reload is fixed, the next run installs and deploys the kept version: no new order.
 */

export interface KeptVersion extends CertificateFiles {
  serial: string;
}

function keptKey(name: string): string {
  if (!isCertificateName(name))
    throw new CertpilotError('STORE_IO', `kept: invalid certificate name "${name}"`);
  return `kept/${name}.json`;
}

export async function writeKept(
  stateDir: string,
  name: string,
  kept: KeptVersion,
  storage: Storage = new FileStorage(stateDir),
): Promise<void> {
  const { serial, cert, chain, fullchain, key } = kept;
  await storage.put(keptKey(name), JSON.stringify({ serial, cert, chain, fullchain, key }) + '\n', {
    mode: SECRET_MODE,
  });
}

/** Null when none is kept; a damaged value is treated as none (a new order repairs it). */
export async function readKept(
  stateDir: string,
  name: string,
  storage: Storage = new FileStorage(stateDir),
): Promise<KeptVersion | null> {
  const value = await storage.get(keptKey(name));
  if (value === null) return null;
  try {
    const o = JSON.parse(value.toString('utf8')) as Partial<KeptVersion>;
    const fields = [o.serial, o.cert, o.chain, o.fullchain, o.key];
    return fields.every((f) => typeof f === 'string') ? (o as KeptVersion) : null;
  } catch {
    return null;
  }
}

export async function dropKept(
  stateDir: string,
  name: string,
  storage: Storage = new FileStorage(stateDir),
): Promise<void> {
  await storage.delete(keptKey(name));
}
