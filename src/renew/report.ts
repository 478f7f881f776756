import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import type { DeployResult } from '../deploy/deploy';
import type { NextAction } from '../plan/schedule';
import type { CertInfo } from '../x509';
import { isHeldBack, type Action, type Observation } from './choose';
import type { RenewAcme, CertOutcome, Decision, OutcomeStatus, RenewReport } from './types';
import type { RenewContext } from './context';

const DAY_MS = 86_400_000;

export function toDecision(name: string, next: NextAction, info: CertInfo | null): Decision {
  return {
    name,
    renew: next.renewNow,
    reason: next.reason,
    detail: next.detail,
    renewAt: next.at,
    wakeAt: next.wakeAt,
    ...(info ? { notAfter: info.notAfter } : {}),
  };
}

export function outcomeFor(o: Observation, next: NextAction, status: OutcomeStatus): CertOutcome {
  return {
    name: o.spec.name,
    status,
    decision: toDecision(o.spec.name, next, o.info),
    serial: o.info?.serial,
    notAfter: o.info?.notAfter,
  };
}

/** A `failed` outcome for `err`, logged once. `message` overrides the error's own description. */
export function failedOutcome(
  base: CertOutcome,
  err: unknown,
  what: string,
  log: Logger,
  started: number,
  message = describeError(err),
): CertOutcome {
  log.error(what, { error: message });
  return {
    ...base,
    status: 'failed',
    error: message,
    errorCode: err instanceof CertpilotError ? err.code : undefined,
    durationMs: Math.round(performance.now() - started),
  };
}

/** A certificate that could not even be observed (its files are unreadable): nothing is known. */
export function unobservedOutcome(spec: CertificateSpec): CertOutcome {
  return {
    name: spec.name,
    status: 'failed',
    decision: {
      name: spec.name,
      renew: false,
      reason: 'missing',
      detail: 'not planned: its files could not be read',
    },
  };
}

export function withDeploy(outcome: CertOutcome, result: DeployResult | undefined): CertOutcome {
  if (!result) return outcome;
  const deploy = {
    status: result.status,
    endpoints: result.endpoints,
    ...(result.rolledBack ? { rolledBack: result.rolledBack } : {}),
  };
  if (result.ok) return { ...outcome, deploy };
  return {
    ...outcome,
    status: 'failed',
    serial: result.serial,
    notAfter: result.notAfter,
    error: result.error,
    errorCode: result.errorCode,
    deploy,
  };
}

/** `--dry-run`: what would happen, from the first observation alone. */
export function plannedOutcome(o: Observation, action: Action): CertOutcome {
  // The guard fails the real run (a human must look): so does its plan.
  if (action.kind === 'guarded')
    return { ...outcomeFor(o, action.next, 'failed'), error: action.next.detail, errorCode: 'GUARDED' };
  const works = action.kind === 'order' || action.kind === 'redeploy' || action.kind === 'reinstate';
  return outcomeFor(o, action.next, works ? 'planned' : isHeldBack(action.next) ? 'waiting' : 'valid');
}

/** Let's Encrypt no longer mails expiry warnings: say it when a failure leaves little time. */
export async function notifyCritical(
  ctx: RenewContext,
  specs: readonly CertificateSpec[],
  outcomes: readonly CertOutcome[],
): Promise<void> {
  const nowMs = ctx.clock.now().getTime();
  for (const o of outcomes) {
    // The guard's own alert (once per guarded period) carries the expiry already.
    if (o.status !== 'failed' || o.errorCode === 'GUARDED') continue;
    const left = o.notAfter ? o.notAfter.getTime() - nowMs : 0;
    if (left >= ctx.settings.notify.criticalDays * DAY_MS) continue;
    await ctx.notifier.notify({
      kind: 'critical',
      cert: o.name,
      domains: specs.find((s) => s.name === o.name)?.domains,
      serial: o.serial,
      notAfter: o.notAfter,
      message: o.notAfter
        ? `expires ${o.notAfter.toISOString()} (in ${Math.max(0, Math.floor(left / DAY_MS))} days) and this run failed: ${o.error ?? ''}`
        : `no usable certificate and this run failed: ${o.error ?? ''}`,
    });
  }
}

export function assembleReport(
  outcomes: CertOutcome[],
  hookErrors: readonly string[],
  service: RenewAcme | undefined,
  now: Date,
): RenewReport {
  // In date afterwards: a certificate held back by backoff is fine while it is still valid.
  const inDate = (o: CertOutcome): boolean =>
    o.notAfter !== undefined && o.notAfter.getTime() > now.getTime();
  const fine = (o: CertOutcome): boolean =>
    o.status !== 'failed' && (o.status === 'waiting' || o.status === 'busy' ? inDate(o) : true);
  return {
    outcomes,
    ok: outcomes.every(fine) && hookErrors.length === 0,
    ...(service
      ? { acmeRequests: { total: service.stats.total, byEndpoint: { ...service.stats.byEndpoint } } }
      : {}),
    ...(hookErrors.length > 0 ? { hookErrors: [...hookErrors] } : {}),
  };
}
