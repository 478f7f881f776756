import type { CheckResult } from './check';
import type { Finding } from './findings';

type LivenessFinding = Finding & { readonly severity: 'warning' | 'critical' };

/**
 * Is the renewer alive? `certpilot run` and `certpilot renew` record their last successful run
 * in the state directory; when that record is older than `daemon.silentAfter`, nothing has
 * renewed for that long: the timer stopped firing, the daemon died or hangs, or every run
 * fails. certbot#9931 (a scheduler silently stuck for months) is what this row catches: the
 * certificates still look fine until the day they expire.
 */

/** When `daemon.silentAfter` is not set: the timer fires twice a day, so 36 h is three missed runs. */
export const DEFAULT_SILENT_AFTER_MS = 36 * 3_600_000;

export interface LivenessInput {
  /** The recorded last successful run (none recorded: there is no row, see assessLiveness). */
  readonly lastRun: { readonly at: Date; readonly by: string } | undefined;
  /** Where the record lives (shown as the row's target). */
  readonly path: string;
  readonly now: Date;
  readonly silentAfterMs?: number;
  /** Set when the record could not be read. */
  readonly error?: string;
}

/**
 * The `renewer` row of `certpilot check`: ok, or a `renewer-silent` finding. Undefined when no
 * run was ever recorded: a host that only monitors (or a new install before its first run) is
 * not a silent renewer, and the certificates' own expiry findings still warn in time.
 */
export function assessLiveness(input: LivenessInput): CheckResult | undefined {
  if (!input.lastRun && input.error === undefined) return undefined;
  const limit = input.silentAfterMs ?? DEFAULT_SILENT_AFTER_MS;
  const hours = (ms: number): string => `${Math.round(ms / 360_000) / 10} h`;
  let finding: LivenessFinding | undefined;
  if (input.error !== undefined) {
    finding = {
      code: 'renewer-silent',
      severity: 'warning',
      message: `cannot read ${input.path}: ${input.error}`,
    };
  } else if (input.lastRun) {
    const age = input.now.getTime() - input.lastRun.at.getTime();
    if (age > limit) {
      finding = {
        code: 'renewer-silent',
        severity: 'critical',
        message: `no successful renewal run for ${hours(age)} (last: certpilot ${input.lastRun.by} at ${input.lastRun.at.toISOString()}; limit ${hours(limit)}): is the timer or the daemon running?`,
      };
    }
  }
  return {
    name: 'renewer',
    managed: false,
    source: 'file',
    target: input.path,
    status: finding ? finding.severity : 'ok',
    findings: finding ? [finding] : [],
  };
}
