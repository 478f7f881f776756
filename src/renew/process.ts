import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import type { Lock } from '../store/lock';
import { actOnCertificate } from './act';
import { ariPollDue, chooseAction, isHeldBack, needsLock, type Action, type Observation } from './choose';
import type { RenewContext } from './context';
import { describeFileProblem } from './fs-diagnosis';
import { observeCertificate, pollRenewalInfo } from './observe';
import { recoverInterrupted } from './recover';
import { failedOutcome, outcomeFor, unobservedOutcome } from './report';
import type { CertOutcome } from './types';

/** A certificate as first seen: observed and planned, or already failed (its files are unreadable). */
export type Planned =
  | { spec: CertificateSpec; observation: Observation; action: Action }
  | { spec: CertificateSpec; outcome: CertOutcome };

export function choose(ctx: RenewContext, o: Observation): Action {
  const options = {
    force: ctx.force,
    overrideGuard: ctx.overrideGuard,
    ca: ctx.config.acme.directoryUrl,
    fingerprint: o.fingerprint,
  };
  return chooseAction(o, ctx.policy, options, ctx.clock.now());
}

/** The message for an error nobody planned for: for a file, which one and how to fix it. */
async function explainFailure(ctx: RenewContext, err: unknown): Promise<{ message: string; code?: string }> {
  const file = await describeFileProblem(err, ctx.config.storage.stateDir).catch(() => undefined);
  if (file) return { message: file, code: 'STORE_IO' };
  return { message: describeError(err), ...(err instanceof CertpilotError ? { code: err.code } : {}) };
}

async function unexpectedFailure(
  ctx: RenewContext,
  base: CertOutcome,
  spec: CertificateSpec,
  err: unknown,
  log: Logger,
  started: number,
): Promise<CertOutcome> {
  const { message, code } = await explainFailure(ctx, err);
  const outcome = failedOutcome(base, err, 'certificate not processed', log, started, message);
  log.debug('unexpected error', { error: describeError(err) });
  await ctx.notifier.notify({ kind: 'renewal-failed', cert: spec.name, domains: spec.domains, message });
  return { ...outcome, errorCode: code };
}

/**
 * A certificate the configuration cannot renew (a name without a DNS provider, outside its
 * provider's zones): failed before anything is contacted, alone; the others go on.
 */
async function unrenewable(
  ctx: RenewContext,
  spec: CertificateSpec,
  problems: readonly string[],
  alert: boolean,
): Promise<Planned> {
  const log = ctx.log.child({ cert: spec.name });
  const message = `configuration: ${problems.join('; ')}`;
  const base: CertOutcome = {
    ...unobservedOutcome(spec),
    decision: { name: spec.name, renew: false, reason: 'missing', detail: 'not planned: see the error' },
  };
  const info = await ctx.store.readInfo(spec.name).catch(() => null);
  const outcome = failedOutcome(
    base,
    new CertpilotError('CONFIG_INVALID', message),
    'certificate not renewable',
    log,
    performance.now(),
  );
  if (alert)
    await ctx.notifier.notify({ kind: 'renewal-failed', cert: spec.name, domains: spec.domains, message });
  return {
    spec,
    outcome: { ...outcome, ...(info ? { serial: info.serial, notAfter: info.notAfter } : {}), durationMs: 0 },
  };
}

/** Observes one certificate for planning; an error fails that certificate alone. */
export async function planCertificate(
  ctx: RenewContext,
  spec: CertificateSpec,
  pendingJournals: ReadonlySet<string>,
  preflight: { problems: readonly string[]; alert: boolean } = { problems: [], alert: true },
): Promise<Planned> {
  if (preflight.problems.length > 0) return unrenewable(ctx, spec, preflight.problems, preflight.alert);
  const started = performance.now();
  try {
    const observation = await observeCertificate(ctx, spec, pendingJournals.has(spec.name));
    return { spec, observation, action: choose(ctx, observation) };
  } catch (err) {
    const log = ctx.log.child({ cert: spec.name });
    return { spec, outcome: await unexpectedFailure(ctx, unobservedOutcome(spec), spec, err, log, started) };
  }
}

async function lockCertificate(ctx: RenewContext, name: string, log: Logger): Promise<Lock | null> {
  try {
    return await ctx.acquireLock(name, {
      wait: ctx.lockWaitMs > 0,
      timeoutMs: ctx.lockWaitMs,
      purpose: 'renew',
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onBusy: (holder) => log.info('waiting for another certpilot process', { holderPid: holder?.pid }),
    });
  } catch (err) {
    if (err instanceof CertpilotError && err.code === 'LOCKED') return null;
    throw err;
  }
}

/**
 * The context of work under `lock`. Its loss (lease ran out while this process hung or was cut
 * off from the store) aborts the work: the ACME order stops and removes the challenge records it
 * presented. The certificate and its state are written fenced on the lock, so a write that
 * comes after the loss is refused by the store instead of replacing the new holder's.
 */
function underLockContext(ctx: RenewContext, lock: Lock): RenewContext {
  const { store, states } = ctx;
  return {
    ...ctx,
    signal: ctx.signal ? AbortSignal.any([ctx.signal, lock.signal]) : lock.signal,
    store: {
      readInfo: (...a) => store.readInfo(...a),
      read: (...a) => store.read(...a),
      paths: (...a) => store.paths(...a),
      install: (name, files, outputs, opts) => store.install(name, files, outputs, { ...opts, lock }),
    },
    states: {
      read: (...a) => states.read(...a),
      write: (state, now, opts) => states.write(state, now, { ...opts, lock }),
    },
  };
}

/** Under the lock: clean up after a killed run, look again (another process may have renewed), act. */
async function underLock(
  ctx: RenewContext,
  first: Observation,
  firstAction: Action,
  preFailed: boolean,
  log: Logger,
  started: number,
): Promise<CertOutcome> {
  const { spec } = first;
  if (firstAction.recover)
    await recoverInterrupted(spec.name, ctx.journal, ctx.clients.solver, log, ctx.signal);
  let o = await observeCertificate(ctx, spec, false);
  let action = choose(ctx, o);
  if (ariPollDue(action.next, ctx.clock.now())) {
    o = await pollRenewalInfo(ctx, o, ctx.log);
    action = choose(ctx, o);
  }
  return actOnCertificate(ctx, o, action, preFailed, log, started);
}

/**
 * lock → recover → re-observe → act → persist for one certificate. Never rejects: whatever
 * goes wrong becomes this certificate's `failed` outcome, and the others go on.
 */
export async function processCertificate(
  ctx: RenewContext,
  planned: Planned,
  preFailed: boolean,
): Promise<CertOutcome> {
  if ('outcome' in planned) return planned.outcome;
  const { observation: first, action, spec } = planned;
  // Nothing to do and no ARI poll due: no lock, no writes (a no-op run stays cheap and never
  // waits for a daemon that is busy with this certificate). Held back is not valid: a due
  // certificate must not report success.
  if (!needsLock(action))
    return outcomeFor(first, action.next, isHeldBack(action.next) ? 'waiting' : 'valid');
  const log = ctx.log.child({ cert: spec.name });
  const started = performance.now();
  try {
    const lock = await lockCertificate(ctx, spec.name, log);
    if (!lock) {
      log.warn('another certpilot process is working on this certificate; skipped');
      return { ...outcomeFor(first, action.next, 'busy'), error: 'another certpilot process holds its lock' };
    }
    try {
      return await underLock(underLockContext(ctx, lock), first, action, preFailed, log, started);
    } finally {
      await lock
        .release()
        .catch((err: unknown) => log.warn('lock not released', { error: describeError(err) }));
    }
  } catch (err) {
    return unexpectedFailure(ctx, outcomeFor(first, action.next, 'failed'), spec, err, log, started);
  }
}
