import type { CertificateSpec } from '../config/types';
import {
  backoffUntil,
  nextAction,
  type NextAction,
  type NextActionOptions,
  type SchedulePolicy,
} from '../plan/schedule';
import type { CertState } from '../state/store';
import type { CertificateFiles } from '../store/cert-store';
import type { CertInfo } from '../x509';

/** A version issued earlier whose deploy was rolled back, fit to be deployed instead of an order. */
export interface Kept {
  files: CertificateFiles;
  info: CertInfo;
}

/** What is known about one certificate before acting on it. */
export interface Observation {
  spec: CertificateSpec;
  /** The installed certificate; null when none (or when it is unreadable: reissuing repairs it). */
  info: CertInfo | null;
  state: CertState;
  /** The CA offers ARI and the installed certificate has an ARI id. */
  ariSupported: boolean;
  /** The installed version's deploy or verification never finished (an earlier run). */
  deployPending: boolean;
  /** A killed run left challenge records for this certificate in the journal. */
  journalPending: boolean;
  /** Of the settings a failure depends on (src/renew/fingerprint.ts). */
  fingerprint?: string;
  /** The version a rollback replaced, when it is still fit to serve (see src/state/kept.ts). */
  kept?: Kept;
  /** The installed version was ordered with another ACME profile (src/renew/profile.ts). */
  profileChanged?: string;
}

/**
 * - `reinstate`: a version issued earlier and rolled back is still fit, and the backoff of its
 *   failed deploy is over: install and deploy it again instead of ordering (no order, so the
 *   exact-set guard does not apply).
 * - `order`: renew now.
 * - `redeploy`: nothing to order, but finish the pending deploy of the installed version.
 * - `guarded`: due, but the exact-set guard refuses another order (a human must look).
 * - `poll-ari`: nothing else to do, but renewalInfo is due.
 * - `hold`: due, but backoff or a rate limit from an earlier failure holds it back.
 * - `nothing-due`: in date, nothing to do.
 */
export type ActionKind = 'reinstate' | 'order' | 'redeploy' | 'guarded' | 'poll-ari' | 'hold' | 'nothing-due';

export interface Action {
  kind: ActionKind;
  /** The scheduler's decision behind it: reason, times, the ARI id to replace. */
  next: NextAction;
  /** Remove leftover challenge records first (needs the lock even when nothing is due). */
  recover: boolean;
}

/** Due, but an earlier failure (backoff, rate limit) or the exact-set guard holds it back. */
export function isHeldBack(next: NextAction): boolean {
  return next.reason === 'backoff' || next.reason === 'rate-limited' || next.reason === 'guarded';
}

export function ariPollDue(next: NextAction, now: Date): boolean {
  return next.pollAriAt !== undefined && next.pollAriAt.getTime() <= now.getTime();
}

/** True when acting needs the certificate's lock; a no-op run takes no lock and writes nothing. */
export function needsLock(action: Action): boolean {
  return action.recover || (action.kind !== 'hold' && action.kind !== 'nothing-due');
}

/** A kept version waiting for the backoff of its failed deploy to end. */
function keptHeld(o: Observation, kept: Kept, next: NextAction, until: Date): NextAction {
  const at = until.toISOString().replace('.000Z', 'Z');
  const last = o.state.failures.lastError ? ` (last error: ${o.state.failures.lastError})` : '';
  return {
    ...next,
    renewNow: false,
    reason: 'backoff',
    at: until,
    wakeAt: next.wakeAt.getTime() < until.getTime() ? next.wakeAt : until,
    detail:
      `new serial ${kept.info.serial} was rolled back${last}; deployed again without a new order after ` +
      `${at}; to deploy it now: certpilot renew --force ${o.spec.name}`,
  };
}

/**
 * Pure: the action for one observed certificate. A kept version comes first (deploying it costs
 * no order, and waiting for it is the backoff of its deploy); then the guard (never bypassed, not even to redeploy); an ARI poll that is due comes before holding back,
 * because its answer can change the plan.
 */
export function chooseAction(
  o: Observation,
  policy: SchedulePolicy,
  options: NextActionOptions,
  now: Date,
): Action {
  const opts = o.profileChanged ? { ...options, profileChanged: o.profileChanged } : options;
  const next = nextAction(o.spec, o.info, o.state, now, policy, { supported: o.ariSupported }, opts);
  const recover = o.journalPending;
  if (o.kept) {
    const heldUntil = backoffUntil(o.state, now, options);
    if (!heldUntil) return { kind: 'reinstate', next, recover };
    return { kind: 'hold', next: keptHeld(o, o.kept, next, heldUntil), recover };
  }
  if (next.reason === 'guarded') return { kind: 'guarded', next, recover };
  if (next.renewNow) return { kind: 'order', next, recover };
  if (o.deployPending && o.info) return { kind: 'redeploy', next, recover };
  if (ariPollDue(next, now)) return { kind: 'poll-ari', next, recover };
  if (isHeldBack(next)) return { kind: 'hold', next, recover };
  return { kind: 'nothing-due', next, recover };
}
