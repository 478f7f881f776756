import { mapLimit } from '../core/concurrency';
import { describeError } from '../core/errors';
import type { AgentConfig } from '../config/types';
import type { DeployAwareConfig } from '../config/types';
import { createRenewContext, selectCertificates, type RenewContext } from './context';
import { runCertPostHooks, runPostHooks, runPreHooks } from './hooks';
import { planCertificate, processCertificate, type Planned } from './process';
import { recoverInterrupted } from './recover';
import { assembleReport, notifyCritical, plannedOutcome } from './report';
import type { RenewDeps, RenewOptions, RenewReport } from './types';

export {
  LOCK_WAIT_MS,
  ORDER_TIMEOUT_MS,
  RENEW_LOOKAHEAD_MS,
  schedulePolicy,
  selectCertificates,
  type RenewContext,
} from './context';
export { providerFor } from './act';
export type { CertOutcome, Decision, OutcomeStatus, RenewDeps, RenewOptions, RenewReport } from './types';

/**
 * observe → choose (ARI, backoff, the exact-set guard) → lock → issue → store → deploy →
 * verify, for every selected certificate. One certificate's failure, expected or not, is its
 * own `failed` outcome; the others go on. The ACME and DNS clients are closed on every path.
 * `overrides` replaces collaborators of the context (unit tests).
 */
export async function runRenew(
  config: AgentConfig | DeployAwareConfig,
  options: RenewOptions,
  deps: RenewDeps,
  overrides: Partial<RenewContext> = {},
): Promise<RenewReport> {
  const specs = selectCertificates(config as AgentConfig, options.names);
  const ctx = createRenewContext(config, options, deps, overrides);
  try {
    const pendingJournals = await pendingJournalsOf(ctx);
    const problems = deps.certificateProblems ?? new Map<string, readonly string[]>();
    const planned = await Promise.all(
      specs.map((spec) =>
        planCertificate(ctx, spec, pendingJournals, {
          problems: problems.get(spec.name) ?? [],
          // A dry run contacts nothing: no alert either.
          alert: options.dryRun !== true,
        }),
      ),
    );
    if (options.dryRun) return dryRunReport(planned, ctx.clock.now());

    await recoverOrphans(ctx, pendingJournals);
    const working = planned.filter(isWorking).map((p) => p.spec.name);
    const hookErrors = await runPreHooks(ctx, working);
    const preFailed = hookErrors.length > 0;
    const outcomes = await mapLimit(planned, ctx.config.concurrency, async (p) => {
      const outcome = await processCertificate(ctx, p, preFailed);
      hookErrors.push(...(await runCertPostHooks(ctx, p.spec, outcome)));
      return outcome;
    });
    await notifyCritical(ctx, specs, outcomes);
    hookErrors.push(...(await runPostHooks(ctx, outcomes)));
    return assembleReport(outcomes, hookErrors, await ctx.clients.openedAcme(), ctx.clock.now());
  } finally {
    await ctx.clients.close();
  }
}

/**
 * Certificates with a killed run's challenge records to clean. An unreadable journal (the
 * store is unreachable: etcd down) fails no run by itself: each certificate then meets the
 * store on its own and fails alone, with its alert, and the next run finds the journal again.
 */
async function pendingJournalsOf(ctx: RenewContext): Promise<Set<string>> {
  try {
    return new Set(await ctx.journal.pending());
  } catch (err) {
    ctx.log.error('challenge journal not readable; interrupted runs are cleaned up next time', {
      error: describeError(err),
    });
    return new Set();
  }
}

function isWorking(p: Planned): boolean {
  return 'action' in p && ['order', 'redeploy', 'reinstate'].includes(p.action.kind);
}

/** The plan, with the exit status the real run would have (a held-back expired certificate fails it). */
function dryRunReport(planned: readonly Planned[], now: Date): RenewReport {
  const outcomes = planned.map((p) => ('outcome' in p ? p.outcome : plannedOutcome(p.observation, p.action)));
  return { outcomes, ok: assembleReport(outcomes, [], undefined, now).ok };
}

/**
 * Journals of certificates no longer configured (a run was killed, then the config changed):
 * nobody else will ever clean them. Configured ones are replayed under their own lock.
 */
async function recoverOrphans(ctx: RenewContext, pending: ReadonlySet<string>): Promise<void> {
  const configured = new Set(ctx.config.certificates.map((c) => c.name));
  for (const name of pending) {
    if (configured.has(name)) continue;
    try {
      const lock = await ctx.acquireLock(name, { wait: false, purpose: 'recover' });
      if (!lock) continue;
      try {
        await recoverInterrupted(name, ctx.journal, ctx.clients.solver, ctx.log, ctx.signal);
      } finally {
        await lock.release();
      }
    } catch (err) {
      // Not a configured certificate: its leftovers must not stop the renewals of the others.
      ctx.log.error('could not recover an interrupted run', { cert: name, error: describeError(err) });
    }
  }
}
