import type { CertificateSpec } from '../config/types';
import { nextAction, type NextAction, type NextActionOptions, type SchedulePolicy } from '../plan/schedule';
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
}

/**
 * - `reinstate`: due, but a version issued earlier and rolled back is still fit: install and
 *   deploy it again instead of ordering (no order, so the exact-set guard does not apply).
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

/**
 * Pure: the action for one observed certificate. A kept version comes first (it costs no order);
 * then the guard (never bypassed, not even to redeploy); an ARI poll that is due comes before holding back,
 * because its answer can change the plan.
 */
export function chooseAction(
  o: Observation,
  policy: SchedulePolicy,
  options: NextActionOptions,
  now: Date,
): Action {
  const next = nextAction(o.spec, o.info, o.state, now, policy, { supported: o.ariSupported }, options);
  const recover = o.journalPending;
  if (o.kept && (next.renewNow || next.reason === 'guarded')) return { kind: 'reinstate', next, recover };
  if (next.reason === 'guarded') return { kind: 'guarded', next, recover };
  if (next.renewNow) return { kind: 'order', next, recover };
  if (o.deployPending && o.info) return { kind: 'redeploy', next, recover };
  if (ariPollDue(next, now)) return { kind: 'poll-ari', next, recover };
  if (isHeldBack(next)) return { kind: 'hold', next, recover };
  return { kind: 'nothing-due', next, recover };
}
