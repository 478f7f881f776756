import { FileStorage } from './file-storage';
import { SECRET_MODE, type Storage } from './storage';

/**
 * A challenge record as the DNS-01 solver wrote it: which provider instance, which zone, the
 * record's FQDN, and the TXT record itself. (The solver's PresentedRecord has this shape; the
 * store keeps its own definition because it sits below the DNS layer.)
 */
export interface PresentedRecord {
  readonly provider: string;
  readonly zone: string;
  readonly fqdn: string;
  readonly record: { readonly name: string; readonly value: string; readonly ttl: number };
}

/**
 * The journal of challenge records written to DNS. An entry is written *before* the provider is
 * asked to append (intent), and removed once cleanup succeeded. A run that died in between
 * (SIGKILL, power loss) leaves the entry; the next run for that certificate deletes exactly
 * those records first, so stale `_acme-challenge` values never pile up (acme.sh#5106).
 * Deleting a value that was never written is harmless by the provider contract.
 *
 * Entries are the keys `journal/<cert>.json` of a Storage (src/store/storage.ts), by default
 * the files <stateDir>/journal/<cert>.json.
 */
export class ChallengeJournal {
  private readonly storage: Storage;

  constructor(stateDir: string, storage?: Storage) {
    this.storage = storage ?? new FileStorage(stateDir);
  }

  private key(cert: string): string {
    return `journal/${cert}.json`;
  }

  /** Adds records to the certificate's entry (durable before returning). */
  async add(cert: string, records: readonly PresentedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const current = await this.read(cert);
    const key = (r: PresentedRecord): string =>
      `${r.provider}\u0000${r.zone}\u0000${r.fqdn}\u0000${r.record.value}`;
    const seen = new Set(current.map(key));
    const merged = [...current, ...records.filter((r) => !seen.has(key(r)))];
    await this.storage.put(this.key(cert), JSON.stringify({ cert, records: merged }, null, 2) + '\n', {
      mode: SECRET_MODE,
    });
  }

  async read(cert: string): Promise<PresentedRecord[]> {
    const value = await this.storage.get(this.key(cert));
    if (value === null) return [];
    // A torn or corrupt entry cannot be replayed (an atomic put makes it unexpected): throw.
    const data = JSON.parse(value.toString('utf8')) as { records?: PresentedRecord[] };
    return Array.isArray(data.records) ? data.records : [];
  }

  async clear(cert: string): Promise<void> {
    await this.storage.delete(this.key(cert));
  }

  /** Certificates with a leftover entry. */
  async pending(): Promise<string[]> {
    return (await this.storage.list('journal'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length));
  }
}
