import { withDeadline } from '../core/abort';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { Dns01Solver } from '../dns/solver';
import type { ChallengeJournal } from '../store/journal';

/** Cleaning up after a dead run gets the same bound as any cleanup. */
export const RECOVERY_TIMEOUT_MS = 60_000;

/**
 * Removes the challenge records a previous run wrote but never cleaned up (it was killed).
 * Runs at the start of work on a certificate, under that certificate's lock, so it never
 * touches records of a run that is still alive. Returns how many records were removed.
 */
export async function recoverInterrupted(
  cert: string,
  journal: ChallengeJournal,
  solver: () => Dns01Solver,
  log: Logger,
  signal?: AbortSignal,
): Promise<number> {
  const records = await journal.read(cert);
  if (records.length === 0) {
    await journal.clear(cert);
    return 0;
  }
  // Left by a run that was killed, or whose own cleanup failed (the DNS server refused it).
  log.warn('removing challenge records an earlier run left behind', {
    cert,
    names: [...new Set(records.map((r) => r.fqdn))],
  });
  try {
    await solver().cleanup(records, withDeadline(signal, RECOVERY_TIMEOUT_MS));
  } catch (err) {
    // Keep the entry: the next run tries again. The renewal itself may still go ahead; the
    // new values are different, and a leftover value only adds noise.
    log.error('could not remove leftover challenge records', { cert, error: describeError(err) });
    return 0;
  }
  await journal.clear(cert);
  return records.length;
}
