import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PresentedRecord } from '../dns/solver';
import { atomicWriteFile, ensureDir } from './atomic';

/**
 * The journal of challenge records written to DNS. An entry is written *before* the provider is
 * asked to append (intent), and removed once cleanup succeeded. A run that died in between
 * (SIGKILL, power loss) leaves the entry; the next run for that certificate deletes exactly
 * those records first, so stale `_acme-challenge` values never pile up (acme.sh#5106).
 * Deleting a value that was never written is harmless by the provider contract.
 */
export class ChallengeJournal {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'journal');
  }

  private file(cert: string): string {
    return path.join(this.dir, `${cert}.json`);
  }

  /** Adds records to the certificate's entry (durable before returning). */
  async add(cert: string, records: readonly PresentedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const current = await this.read(cert);
    const key = (r: PresentedRecord): string =>
      `${r.provider}\u0000${r.zone}\u0000${r.fqdn}\u0000${r.record.value}`;
    const seen = new Set(current.map(key));
    const merged = [...current, ...records.filter((r) => !seen.has(key(r)))];
    await ensureDir(this.dir, 0o700);
    await atomicWriteFile(this.file(cert), JSON.stringify({ cert, records: merged }, null, 2) + '\n', {
      mode: 0o600,
    });
  }

  async read(cert: string): Promise<PresentedRecord[]> {
    try {
      const data = JSON.parse(await readFile(this.file(cert), 'utf8')) as { records?: PresentedRecord[] };
      return Array.isArray(data.records) ? data.records : [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      // A torn or corrupt entry cannot be replayed; an atomic write makes this unexpected.
      throw err;
    }
  }

  async clear(cert: string): Promise<void> {
    await rm(this.file(cert), { force: true });
  }

  /** Certificates with a leftover entry. */
  async pending(): Promise<string[]> {
    try {
      return (await readdir(this.dir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
