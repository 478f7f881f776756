import type { CertificateSpec } from '../config/types';
import { certDeployOf } from '../config/access';
import { postVars } from '../deploy/env';
import type { RenewContext } from './context';
import type { CertOutcome } from './types';

function hookOptions(ctx: RenewContext, stopOnFailure: boolean) {
  return { log: ctx.log, ...(ctx.signal ? { signal: ctx.signal } : {}), stopOnFailure };
}

/** The global pre hooks: once, and only when some renewal or deploy work will happen. */
export async function runPreHooks(ctx: RenewContext, working: readonly string[]): Promise<string[]> {
  if (working.length === 0 || ctx.settings.hooks.pre.length === 0) return [];
  return ctx.runHooks(
    ctx.settings.hooks.pre,
    'hooks.pre',
    { CERTPILOT_CERT_NAMES: working.join(' ') },
    hookOptions(ctx, true),
  );
}

/** One certificate's own pre or post hooks (pre stops at the first failure). */
export async function runCertHooks(
  ctx: RenewContext,
  spec: CertificateSpec,
  phase: 'pre' | 'post',
  vars: Record<string, string>,
): Promise<string[]> {
  const list = certDeployOf(spec).hooks[phase];
  if (list.length === 0) return [];
  return ctx.runHooks(
    list,
    `certificates["${spec.name}"].hooks.${phase}`,
    { CERTPILOT_CERT_NAME: spec.name, CERTPILOT_DOMAINS: spec.domains.join(' '), ...vars },
    hookOptions(ctx, phase === 'pre'),
  );
}

/** A certificate's post hooks run after it renewed, deployed, or failed a renewal it attempted. */
export async function runCertPostHooks(
  ctx: RenewContext,
  spec: CertificateSpec,
  outcome: CertOutcome,
): Promise<string[]> {
  const attempted =
    outcome.status === 'renewed' ||
    outcome.status === 'deployed' ||
    (outcome.status === 'failed' && outcome.decision.renew);
  if (!attempted) return [];
  const ok = outcome.status !== 'failed';
  return runCertHooks(ctx, spec, 'post', postVars(ok ? [spec.name] : [], ok ? [] : [spec.name]));
}

/** The global post hooks: once at the end, always (nothing renewed is news too). */
export async function runPostHooks(ctx: RenewContext, outcomes: readonly CertOutcome[]): Promise<string[]> {
  if (ctx.settings.hooks.post.length === 0) return [];
  const renewed = outcomes
    .filter((o) => o.status === 'renewed' || o.status === 'deployed')
    .map((o) => o.name);
  const failed = outcomes.filter((o) => o.status === 'failed').map((o) => o.name);
  return ctx.runHooks(
    ctx.settings.hooks.post,
    'hooks.post',
    postVars(renewed, failed),
    hookOptions(ctx, false),
  );
}
