import type { CertificateSpec, RenewalPolicy } from '../config/types';
import { CertpilotError, describeError } from '../core/errors';
import { lifetimeMs, type CertInfo } from '../x509';
import {
  pickRenewalTime,
  tryAriCertId,
  ARI_LONG_TERM_ERROR_RETRY_MS,
  type RenewalInfo,
  type RenewalWindow,
} from '../acme/ari';
import type { CertState } from '../state/store';
import { DEFAULT_MAX_ORDERS_PER_WEEK, DEFAULT_RENEWAL_POLICY } from '../config/defaults';
import { planRenewals, type RenewReason } from './index';

/**
 * When to renew one certificate, given what is installed, the persisted scheduling state
 * (src/state/store.ts) and the CA's renewal information. Pure: the clock and the random source
 * are injected, so every rule is a row in a table test. Used by the daemon on every tick and by
 * `certpilot renew`, so both follow the same rules.
 *
 * Precedence:
 *   1. what must be renewed regardless of timing (plan: missing, expired, names-changed,
 *      key-changed; `force`; then profile-changed, from the caller);
 *   2. emergency: less than 1/20 of the lifetime left, whatever ARI says;
 *   3. ARI's window (a random time inside it, drawn once and persisted);
 *   4. the fallback: a third of the lifetime left (half under 10 days; src/plan renewalTime);
 * and then, for anything due:
 *   5. backoff after failures (1 min, 10 min, 100 min, then daily; a rateLimited Retry-After
 *      replaces it) — `force` skips this one;
 *   6. the exact-set guard: never more than maxOrdersPerWeek issuances of the same names in
 *      7 days (a renewal loop must not burn the CA's limit of 5), reported as critical.
 */

const MINUTE = 60_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;

/**
 * Let's Encrypt's advice for retries after a failed renewal: 1 min, 10 min, 100 min, then
 * daily (https://letsencrypt.org/docs/integration-guide/). Index = failures so far - 1.
 */
export const BACKOFF_STEPS_MS: readonly number[] = [1 * MINUTE, 10 * MINUTE, 100 * MINUTE];
/** After the steps: once a day, so a broken CA or DNS setup costs one attempt per day per certificate. */
export const BACKOFF_DAILY_MS = DAY;
/** ±10 %: a fleet that failed together (CA outage) must not retry in lockstep. */
export const BACKOFF_JITTER_RATIO = 0.1;
/** A rateLimited Retry-After is obeyed but capped: Let's Encrypt's longest window is 7 days. */
export const RATE_LIMIT_MAX_WAIT_MS = WEEK;
/** Defined with the other renewal defaults (src/config/defaults.ts): 3, to keep 2 of the CA's 5 for a human. */
export { DEFAULT_MAX_ORDERS_PER_WEEK } from '../config/defaults';
/** The exact-set window the guard counts in (the CA's window). */
export const GUARD_WINDOW_MS = WEEK;
/**
 * Short lifetimes legitimately need more than 3 issuances a week (a 6-day certificate renewed
 * at half its life: ~2.3; a few-minute test certificate: thousands). The guard allows
 * max(maxOrdersPerWeek, this factor × the renewals the lifetime needs), which stops a loop
 * without stopping normal short-lived operation.
 */
export const GUARD_LIFETIME_FACTOR = 2;
/** Renew immediately when less than 1/20 of the lifetime is left, whatever ARI says (certmagic's emergency rule). */
export const DEFAULT_EMERGENCY_RATIO = 1 / 20;
/** First retry of a failed renewalInfo poll; doubles per failure up to the RFC's six hours. */
export const ARI_ERROR_BACKOFF_BASE_MS = MINUTE;

export interface SchedulePolicy extends RenewalPolicy {
  /** Issuances of one exact set of names allowed in 7 days (see GUARD_LIFETIME_FACTOR). */
  readonly maxOrdersPerWeek: number;
  /** Fraction of the lifetime below which renewal is immediate (default 1/20). */
  readonly emergencyRatio: number;
  /**
   * RFC 9773 §4.2 step 4: a run that cannot wake exactly at the chosen time renews now when the
   * chosen time comes before its next normal run. 0 for the daemon (it schedules itself
   * exactly); the timer's interval (12 h) for `certpilot renew` from certpilot-renew.timer.
   */
  readonly lookaheadMs: number;
}

export const DEFAULT_SCHEDULE_POLICY: SchedulePolicy = {
  ...DEFAULT_RENEWAL_POLICY,
  maxOrdersPerWeek: DEFAULT_MAX_ORDERS_PER_WEEK,
  emergencyRatio: DEFAULT_EMERGENCY_RATIO,
  lookaheadMs: 0,
};

export type ScheduleReason =
  RenewReason | 'profile-changed' | 'ari' | 'emergency' | 'backoff' | 'rate-limited' | 'guarded';

export interface AriInput {
  /** The directory advertises `renewalInfo`. Without it, ARI state is ignored and never polled. */
  supported: boolean;
  /** Override of the persisted window and chosen time (e.g. a fetch not yet written to state). */
  window?: RenewalWindow;
  chosenAt?: Date;
}

export interface NextAction {
  renewNow: boolean;
  reason: ScheduleReason;
  /** renewNow: now. Otherwise when the renewal (or the next allowed attempt) is due. */
  at: Date;
  /** One sentence for logs and `status`. */
  detail: string;
  /** When to fetch renewalInfo next; absent when ARI does not apply (unsupported, no id, expired). */
  pollAriAt?: Date;
  /** The earlier of `at` and `pollAriAt`: when the daemon must look at this certificate again. */
  wakeAt: Date;
  /** ARI id to send as `replaces` on the order (installed certificate shares a name with the spec). */
  replaces?: string;
  /** Set for 'guarded': alert a human, this will not fix itself. */
  critical?: boolean;
  /** The fallback renewal time (ratio of the lifetime), for metrics; absent when nothing is installed. */
  fallbackAt?: Date;
}

export interface NextActionOptions {
  /** `certpilot renew --force`: renew now, ignoring timing and backoff (not the guard). */
  force?: boolean;
  /** `certpilot renew --override-guard` (a person at a terminal): order despite the exact-set guard. */
  overrideGuard?: boolean;
  /** The CA's directory URL: the guard counts only this CA's orders (each CA has its own limits). */
  ca?: string;
  /**
   * Fingerprint of the settings a failure depends on, as they are now. A failure recorded with
   * another fingerprint was made with settings the operator has since changed: no backoff.
   */
  fingerprint?: string;
  /**
   * The installed certificate was ordered with another ACME profile than configured (decided
   * by src/renew/profile.ts, which knows the stored profile): due now, like changed names,
   * and still subject to backoff and the guard.
   */
  profileChanged?: string;
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

function jitter(ms: number, random: () => number): number {
  return Math.round(ms * (1 + BACKOFF_JITTER_RATIO * (2 * random() - 1)));
}

/** Delay before the next attempt after the `failures`-th consecutive failure (1-based), with jitter. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const base = failures <= 0 ? 0 : (BACKOFF_STEPS_MS[failures - 1] ?? BACKOFF_DAILY_MS);
  return jitter(base, random);
}

/** The exact set of names, as the CA's limit sees it: lower-case, de-duplicated, order-free. */
export function exactSetKey(names: readonly string[]): string {
  return [...new Set(names.map((n) => n.toLowerCase()))].sort().join(',');
}

/** Issuances allowed per 7 days for a certificate of this lifetime (see GUARD_LIFETIME_FACTOR). */
export function guardLimit(
  policy: SchedulePolicy,
  info: Pick<CertInfo, 'notBefore' | 'notAfter'> | null,
): number {
  if (!info) return policy.maxOrdersPerWeek;
  const lifetime = lifetimeMs(info);
  if (lifetime <= 0) return policy.maxOrdersPerWeek;
  const ratio = lifetime < policy.shortLifetimeDays * DAY ? policy.shortLifetimeRatio : policy.renewRatio;
  const interval = Math.max(1, lifetime * (1 - ratio));
  return Math.max(policy.maxOrdersPerWeek, Math.ceil((GUARD_LIFETIME_FACTOR * WEEK) / interval));
}

/** Issuances of `names` by `ca` (all CAs when unknown) in the guard window, oldest first. */
function recentOrders(state: CertState, names: readonly string[], now: Date, ca: string | undefined): Date[] {
  const key = exactSetKey(names);
  const since = now.getTime() - GUARD_WINDOW_MS;
  // A record without a CA predates the field: counted against every CA (the safe side).
  const sameCa = (o: { ca?: string }): boolean => ca === undefined || o.ca === undefined || o.ca === ca;
  return state.orders
    .filter(
      (o) =>
        o.at.getTime() > since &&
        o.at.getTime() <= now.getTime() &&
        exactSetKey(o.names) === key &&
        sameCa(o),
    )
    .map((o) => o.at)
    .sort((a, b) => a.getTime() - b.getTime());
}

function sharesName(spec: CertificateSpec, info: CertInfo): boolean {
  const have = new Set(info.names.map((n) => n.toLowerCase()));
  return spec.domains.some((d) => have.has(d.toLowerCase()));
}

type Due = { reason: ScheduleReason; at: Date; detail: string };

/** Steps 1-4 of nextAction: whether a renewal is due, from when, and why. */
function whenDue(
  plan: ReturnType<typeof planRenewals>[number] | undefined,
  info: CertInfo | null,
  now: Date,
  policy: SchedulePolicy,
  ari: AriInput | undefined,
  ariState: CertState['ari'],
  ariApplies: boolean,
): Due {
  const t = now.getTime();
  if (!plan || (plan.reason !== 'valid' && plan.reason !== 'in-window')) {
    return {
      reason: plan?.reason ?? 'missing',
      at: new Date(now),
      detail: plan?.detail ?? 'no certificate installed',
    };
  } else {
    const i = info!;
    const lifetime = lifetimeMs(i);
    const left = i.notAfter.getTime() - t;
    const window = ari?.window ?? ariState?.window;
    // An override window without a chosen time counts from its start (the caller drew nothing).
    const chosenAt = ari?.chosenAt ?? (ari?.window ? undefined : ariState?.chosenAt);
    if (left < lifetime * policy.emergencyRatio) {
      return {
        reason: 'emergency',
        at: new Date(now),
        detail: `expires ${iso(i.notAfter)}: less than 1/${Math.round(1 / policy.emergencyRatio)} of its lifetime left`,
      };
    } else if (ariApplies && window) {
      const at = chosenAt ?? window.start;
      const explain = ariState?.explanationURL ? ` (${ariState.explanationURL})` : '';
      const span = `ARI window ${iso(window.start)} to ${iso(window.end)}${explain}`;
      return at.getTime() <= t + policy.lookaheadMs
        ? { reason: 'ari', at: new Date(now), detail: `${span}, chosen time ${iso(at)} reached` }
        : { reason: 'valid', at, detail: `${span}, renewal at ${iso(at)}` };
    } else {
      return {
        reason: plan.reason,
        at: plan.reason === 'in-window' ? new Date(now) : plan.renewAt!,
        detail: plan.detail,
      };
    }
  }
}

/** True when the last failure was recorded under other settings than the current ones. */
function settingsChanged(state: CertState, opts: NextActionOptions): boolean {
  const then = state.failures.fingerprint;
  return then !== undefined && opts.fingerprint !== undefined && then !== opts.fingerprint;
}

/** When the backoff of the last failure ends, if it still holds now (not forced, same settings). */
export function backoffUntil(state: CertState, now: Date, opts: NextActionOptions = {}): Date | undefined {
  const retryAt = state.failures.nextRetryAt;
  if (opts.force || !retryAt || retryAt.getTime() <= now.getTime() || settingsChanged(state, opts))
    return undefined;
  return retryAt;
}

/** A held-back certificate's sentence: until when, after what, and how to retry now. */
function heldBackDetail(spec: CertificateSpec, state: CertState, due: Due, retryAt: Date): string {
  const f = state.failures;
  const why = f.rateLimited ? "the CA's rate limit" : `${f.count} failed attempt(s)`;
  const last = f.lastError ? ` (last error: ${f.lastError})` : '';
  return (
    `${due.reason} (${due.detail}); held back until ${iso(retryAt)} after ${why}${last}; ` +
    `to retry now: certpilot renew --force ${spec.name}`
  );
}

function guardDetail(
  spec: CertificateSpec,
  policy: SchedulePolicy,
  due: Due,
  issued: number,
  limit: number,
  until: Date,
): string {
  const setting = `defaults.renewal.maxOrdersPerWeek is ${policy.maxOrdersPerWeek}`;
  const allowed =
    limit > policy.maxOrdersPerWeek ? `${setting}, raised to ${limit} for this lifetime` : setting;
  return (
    `${due.reason} (${due.detail}), but ${issued} certificates were already issued for exactly ` +
    `${exactSetKey(spec.domains)} by this CA in the last 7 days (${allowed}); no order before ` +
    `${iso(until)}. Look for a renewal loop first (a deploy or install failing after issuance, two ` +
    `hosts managing the same names); then wait, raise defaults.renewal.maxOrdersPerWeek, or order ` +
    `once from a terminal: certpilot renew --override-guard ${spec.name}`
  );
}

/**
 * The decision for one certificate. Callers: when `pollAriAt <= now`, fetch renewalInfo first
 * (fold it in with `withRenewalInfo`) and ask again; act on `renewNow` under the certificate's
 * lock; sleep until the earliest `wakeAt` of all certificates (bounded by the check interval).
 */
export function nextAction(
  spec: CertificateSpec,
  info: CertInfo | null,
  state: CertState,
  now: Date,
  policy: SchedulePolicy,
  ari?: AriInput,
  opts: NextActionOptions = {},
): NextAction {
  const [plan] = planRenewals([spec], new Map([[spec.name, info]]), now, policy, { force: opts.force });
  const t = now.getTime();
  const certId = info ? tryAriCertId(info) : undefined;
  const expired = info ? t > info.notAfter.getTime() : false;
  const ariApplies = ari?.supported === true && certId !== undefined && !expired;
  // RFC 9773 §4.3: poll right after issuance (no state for this certificate yet), then per Retry-After.
  const ariState = ariApplies && state.ari?.certId === certId ? state.ari : undefined;
  const pollAriAt = ariApplies ? (ariState?.nextPollAt ?? new Date(now)) : undefined;
  const replaces =
    ari?.supported === true && certId !== undefined && info && sharesName(spec, info) ? certId : undefined;
  const fallbackAt = plan?.renewAt;

  // Steps 1-4: is a renewal due, and from when? A changed profile comes after the plan's own
  // reasons (missing, forced, expired, names, key) and before timing.
  const timing = plan?.reason === 'valid' || plan?.reason === 'in-window';
  const due: Due =
    opts.profileChanged !== undefined && info && timing
      ? { reason: 'profile-changed', at: new Date(now), detail: opts.profileChanged }
      : whenDue(plan, info, now, policy, ari, ariApplies ? ariState : undefined, ariApplies);

  const finish = (a: Omit<NextAction, 'wakeAt' | 'pollAriAt' | 'replaces' | 'fallbackAt'>): NextAction => {
    const wake = pollAriAt && pollAriAt.getTime() < a.at.getTime() ? pollAriAt : a.at;
    return {
      ...a,
      wakeAt: new Date(wake),
      ...(pollAriAt ? { pollAriAt } : {}),
      ...(replaces ? { replaces } : {}),
      ...(fallbackAt ? { fallbackAt } : {}),
    };
  };

  if (due.at.getTime() > t)
    return finish({ renewNow: false, reason: due.reason, at: due.at, detail: due.detail });

  // Step 5: backoff (skipped by --force: an operator asked for it now; void when the settings
  // the failure depended on have changed since: the error it waits out may be fixed).
  const retryAt = backoffUntil(state, now, opts);
  if (retryAt) {
    return finish({
      renewNow: false,
      reason: state.failures.rateLimited ? 'rate-limited' : 'backoff',
      at: retryAt,
      detail: heldBackDetail(spec, state, due, retryAt),
    });
  }

  // Step 6: the exact-set guard.
  const limit = guardLimit(policy, info);
  const recent = recentOrders(state, spec.domains, now, opts.ca);
  if (recent.length >= limit && !opts.overrideGuard) {
    const until = new Date(recent[recent.length - limit]!.getTime() + GUARD_WINDOW_MS);
    return finish({
      renewNow: false,
      reason: 'guarded',
      at: until,
      critical: true,
      detail: guardDetail(spec, policy, due, recent.length, limit, until),
    });
  }

  return finish({ renewNow: true, reason: due.reason, at: new Date(now), detail: due.detail });
}

// ---- state transitions (pure: return a new state) ----

/** Call as soon as the CA issued a certificate (before installing it): the CA has counted it. */
export function withOrder(state: CertState, names: readonly string[], now: Date, ca?: string): CertState {
  const record = { at: new Date(now), names: exactSetKey(names).split(','), ...(ca ? { ca } : {}) };
  return { ...state, orders: [...state.orders, record] };
}

/** After the new certificate is installed: failures reset, ARI restarts for the new certificate. */
export function afterSuccess(
  state: CertState,
  info: Pick<CertInfo, 'serial' | 'notAfter'>,
  now: Date,
): CertState {
  const { ari: _dropped, ...rest } = state;
  return {
    ...rest,
    failures: { count: 0 },
    lastSuccess: { at: new Date(now), serial: info.serial, notAfter: new Date(info.notAfter) },
  };
}

export interface FailureInfo {
  message: string;
  code?: string;
  /** Retry-After of a rateLimited problem; replaces the backoff step. */
  rateLimitRetryAfterMs?: number;
  /** Of the settings the attempt used (see NextActionOptions.fingerprint). */
  fingerprint?: string;
}

/** Extracts what the schedule needs from any thrown value (rateLimited Retry-After included). */
export function failureFromError(err: unknown): FailureInfo {
  const message = describeError(err);
  if (!(err instanceof CertpilotError)) return { message };
  const retryAfter = err.details.retryAfterMs;
  const rateLimited =
    err.code === 'ACME_RATE_LIMITED' || err.details.problemType === 'urn:ietf:params:acme:error:rateLimited';
  return {
    message,
    code: err.code,
    ...(rateLimited && typeof retryAfter === 'number' ? { rateLimitRetryAfterMs: retryAfter } : {}),
  };
}

/** After a failed renewal: next attempt per backoff, or per the CA's Retry-After when rate limited. */
export function afterFailure(
  state: CertState,
  failure: FailureInfo,
  now: Date,
  random: () => number = Math.random,
): CertState {
  const count = state.failures.count + 1;
  const rateLimited = failure.rateLimitRetryAfterMs !== undefined;
  const wait = rateLimited
    ? Math.min(RATE_LIMIT_MAX_WAIT_MS, Math.max(0, failure.rateLimitRetryAfterMs!))
    : backoffDelay(count, random);
  return {
    ...state,
    failures: {
      count,
      nextRetryAt: new Date(now.getTime() + wait),
      lastFailureAt: new Date(now),
      lastError: failure.message,
      ...(failure.code ? { lastErrorCode: failure.code } : {}),
      ...(rateLimited ? { rateLimited: true } : {}),
      ...(failure.fingerprint ? { fingerprint: failure.fingerprint } : {}),
    },
  };
}

/**
 * Folds a successful renewalInfo answer in. The random time is redrawn only when the window
 * changed (or the certificate did): redrawing on every poll would drift the choice towards the
 * start of the window.
 */
export function withRenewalInfo(
  state: CertState,
  certId: string,
  info: RenewalInfo,
  now: Date,
  random: () => number = Math.random,
): CertState {
  const prev = state.ari?.certId === certId ? state.ari : undefined;
  const same =
    prev?.window !== undefined &&
    prev.window.start.getTime() === info.window.start.getTime() &&
    prev.window.end.getTime() === info.window.end.getTime();
  const chosenAt = same && prev?.chosenAt ? prev.chosenAt : pickRenewalTime(info.window, now, random);
  return {
    ...state,
    ari: {
      certId,
      window: { start: new Date(info.window.start), end: new Date(info.window.end) },
      ...(info.explanationURL ? { explanationURL: info.explanationURL } : {}),
      chosenAt,
      nextPollAt: new Date(now.getTime() + info.retryAfterMs),
      lastPolledAt: new Date(now),
      errorCount: 0,
    },
  };
}

/**
 * Folds a failed renewalInfo poll in: keep the last good window, ask again after the error's
 * `details.nextPollMs` (six hours for long-term errors, Retry-After for temporary ones) or an
 * exponential backoff from 1 minute capped at six hours.
 */
export function withAriError(
  state: CertState,
  certId: string,
  err: unknown,
  now: Date,
  random: () => number = Math.random,
): CertState {
  const prev = state.ari?.certId === certId ? state.ari : undefined;
  const errorCount = (prev?.errorCount ?? 0) + 1;
  const suggested =
    err instanceof CertpilotError && typeof err.details.nextPollMs === 'number'
      ? err.details.nextPollMs
      : undefined;
  const wait =
    suggested ??
    Math.min(ARI_LONG_TERM_ERROR_RETRY_MS, jitter(ARI_ERROR_BACKOFF_BASE_MS * 2 ** (errorCount - 1), random));
  return {
    ...state,
    ari: {
      ...(prev ?? {}),
      certId,
      nextPollAt: new Date(now.getTime() + wait),
      lastPolledAt: new Date(now),
      errorCount,
      lastError: describeError(err),
    },
  };
}
