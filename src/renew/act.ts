import { withDeadline } from '../core/abort';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { IssueRequest } from '../acme/service';
import type { AcmeSettings, CertificateSpec } from '../config/types';
import {
  afterFailure,
  afterSuccess,
  failureFromError,
  nextAction,
  withOrder,
  type FailureInfo,
} from '../plan/schedule';
import type { CertState } from '../state/store';
import type { StoredCertificate } from '../store/cert-store';
import { generatePrivateKey, keyTypeOfKey, type CertInfo } from '../x509';
import { isHeldBack, type Action, type Observation } from './choose';
import { ORDER_TIMEOUT_MS, type RenewCertStore, type RenewContext } from './context';
import { runCertHooks } from './hooks';
import { issuingCa, orderWithFallback } from './fallback';
import { ariSupportedFor } from './observe';
import { issuedProfileWarnings, withIssuedProfile } from './profile';
import { failedOutcome, outcomeFor, toDecision, withDeploy } from './report';
import type { CertOutcome } from './types';

/** One certificate's work under its lock; `state` is what gets persisted afterwards. */
interface Work {
  ctx: RenewContext;
  o: Observation;
  action: Action;
  log: Logger;
  started: number;
  state: CertState;
}

/**
 * Acts on the chosen action under the certificate's lock, and persists the scheduling state
 * whatever happens (an order the CA counted must be remembered even if the install failed).
 */
export async function actOnCertificate(
  ctx: RenewContext,
  o: Observation,
  action: Action,
  preFailed: boolean,
  log: Logger,
  started: number,
): Promise<CertOutcome> {
  const w: Work = { ctx, o, action, log, started, state: o.state };
  try {
    return await dispatch(w, preFailed);
  } finally {
    await ctx.states
      .write(w.state, ctx.clock.now())
      .catch((err: unknown) => log.error('renewal state not saved', { error: describeError(err) }));
  }
}

function failed(w: Work, err: unknown, what: string): CertOutcome {
  return failedOutcome(outcomeFor(w.o, w.action.next, 'failed'), err, what, w.log, w.started);
}

async function dispatch(w: Work, preFailed: boolean): Promise<CertOutcome> {
  const { ctx, o, action, log } = w;
  const { spec } = o;
  if (action.kind === 'guarded') return guarded(w);
  if (action.kind !== 'order' && action.kind !== 'redeploy' && action.kind !== 'reinstate') {
    const waiting = isHeldBack(action.next);
    if (waiting)
      log.info('renewal due but held back', { reason: action.next.reason, detail: action.next.detail });
    return outcomeFor(o, action.next, waiting ? 'waiting' : 'valid');
  }
  if (preFailed) return failed(w, new Error('skipped: a pre hook failed'), 'not renewed');
  const preErrors = await runCertHooks(ctx, spec, 'pre', {});
  if (preErrors.length > 0) return failed(w, new Error(preErrors.join('; ')), 'pre hook failed');
  if (action.kind === 'reinstate') return reinstate(w);
  return action.kind === 'redeploy' ? redeploy(w) : order(w);
}

/**
 * The exact-set guard holds the certificate back: a failure a human must look at, alerted once
 * per guarded period (the end of the period is persisted, so a daemon's cycles and restarts do
 * not repeat it). The detail names the setting, the date and the way out.
 */
async function guarded(w: Work): Promise<CertOutcome> {
  const { ctx, o, log } = w;
  const { detail, at: until } = w.action.next;
  const alerted = w.state.guard?.alertedUntil;
  if (alerted === undefined || alerted.getTime() < until.getTime()) {
    await ctx.notifier.notify({
      kind: 'renewal-failed',
      cert: o.spec.name,
      domains: o.spec.domains,
      serial: o.info?.serial,
      notAfter: o.info?.notAfter,
      message: `renewal held back by the exact-set guard: ${detail}`,
    });
    w.state = { ...w.state, guard: { alertedUntil: until } };
  }
  log.error('exact-set guard: not ordering again', { until });
  return {
    ...outcomeFor(o, w.action.next, 'failed'),
    error: detail,
    errorCode: 'GUARDED',
    durationMs: Math.round(performance.now() - w.started),
  };
}

/** After a failure of this run: backoff, with the fingerprint of the settings it ran with. */
function recordFailure(w: Work, failure: FailureInfo): void {
  const withPrint = { ...failure, ...(w.o.fingerprint ? { fingerprint: w.o.fingerprint } : {}) };
  w.state = afterFailure(w.state, withPrint, w.ctx.clock.now());
}

/**
 * A deploy that did not end verified (rolled back, or failed): the certificate enters backoff
 * like a failed order, so a due certificate is not ordered again at once. Issuance itself
 * worked, so the count starts again at one.
 */
function recordDeployFailure(w: Work, outcome: CertOutcome): void {
  w.state = { ...w.state, failures: { count: 0 } };
  const message = outcome.error ?? 'deploy failed';
  recordFailure(w, { message, ...(outcome.errorCode ? { code: outcome.errorCode } : {}) });
}

/** The scheduler's view after a new version is current: when it is due. */
async function decisionAfter(w: Work, info: CertInfo): Promise<CertOutcome['decision']> {
  const { ctx, o } = w;
  const after = nextAction(o.spec, info, w.state, ctx.clock.now(), ctx.policy, {
    supported: await ariSupportedFor(ctx, info, w.state),
  });
  return { ...toDecision(o.spec.name, w.action.next, o.info), renewAt: after.at, wakeAt: after.wakeAt };
}

/**
 * Installs and deploys the version a rollback replaced, instead of ordering a new one: the CA
 * already issued it, and the problem was the deploy (fixed since, or the backoff ran out).
 */
async function reinstate(w: Work): Promise<CertOutcome> {
  const { ctx, o, log } = w;
  const { spec } = o;
  const kept = o.kept!;
  log.info('deploying the version kept after a rollback; no new order', { serial: kept.info.serial });
  try {
    const installed = await ctx.store.install(spec.name, kept.files, spec.outputs);
    w.state = afterSuccess(w.state, installed.info, ctx.clock.now());
    const files: StoredCertificate = {
      name: spec.name,
      info: installed.info,
      dir: ctx.store.paths(spec.name).dir,
      ...kept.files,
    };
    const base: CertOutcome = {
      name: spec.name,
      status: 'deployed',
      decision: await decisionAfter(w, installed.info),
      serial: installed.info.serial,
      notAfter: installed.info.notAfter,
      durationMs: Math.round(performance.now() - w.started),
    };
    return await deployRenewed(w, base, files, installed.archived);
  } catch (err) {
    recordFailure(w, failureFromError(err));
    return failed(w, err, 'kept version not deployed');
  }
}

/** A version from an earlier run that was never verified: deploy it again, no new order. */
async function redeploy(w: Work): Promise<CertOutcome> {
  const { ctx, o, log } = w;
  log.info('deploy pending from an earlier run; deploying again without a new order', {
    serial: o.info?.serial,
  });
  try {
    const previous = o.info ? await ctx.deploy.previous(o.spec.name, o.info.serial) : null;
    const result = await ctx.deploy.run(o.spec, log, {
      ...(previous ? { previousSerial: previous.serial, rollbackTo: previous.dir } : {}),
    });
    const outcome = withDeploy(
      { ...outcomeFor(o, w.action.next, 'deployed'), durationMs: Math.round(performance.now() - w.started) },
      result,
    );
    if (outcome.status === 'failed') recordDeployFailure(w, outcome);
    else if (w.state.failures.count > 0) w.state = { ...w.state, failures: { count: 0 } };
    return outcome;
  } catch (err) {
    return failed(w, err, 'deploy failed');
  }
}

async function order(w: Work): Promise<CertOutcome> {
  const { ctx, o, log } = w;
  const { spec, info } = o;
  const next = w.action.next;
  log.info('renewing', { reason: next.reason, detail: next.detail });
  try {
    const keyPem = await chooseKey(spec, ctx.store, info ?? undefined);
    const { issued, ca } = await orderWithFallback(
      ctx,
      spec,
      { info, log, signal: withDeadline(ctx.signal, ORDER_TIMEOUT_MS) },
      (service, at) => service.issue(issueRequest(w, keyPem, at)),
    );
    // Counted at once: the CA has issued, whatever happens to the files next.
    w.state = withOrder(w.state, spec.domains, ctx.clock.now(), ca.directoryUrl);
    const installed = await ctx.store.install(spec.name, issued, spec.outputs);
    w.state = withIssuedProfile(afterSuccess(w.state, installed.info, ctx.clock.now()), issued);
    // Which CA issued this version: ARI and `replaces` go to that CA only.
    w.state = { ...w.state, lastSuccess: { ...w.state.lastSuccess!, ca: ca.directoryUrl } };
    const warnings = issuedProfileWarnings(spec, issued, installed.info, ca.directoryUrl, log);
    await ctx.faults?.afterInstall?.(spec.name, ctx.store.paths(spec.name));
    const renewed: CertOutcome = {
      name: spec.name,
      status: 'renewed',
      // The scheduler's view after this renewal: when the new certificate is due.
      decision: await decisionAfter(w, installed.info),
      serial: installed.info.serial,
      notAfter: installed.info.notAfter,
      durationMs: Math.round(performance.now() - w.started),
      ...(warnings.length > 0 ? { warnings } : {}),
      ...(ca.directoryUrl !== ctx.config.acme.directoryUrl ? { ca: ca.directoryUrl } : {}),
    };
    const files: StoredCertificate = {
      name: spec.name,
      info: installed.info,
      dir: ctx.store.paths(spec.name).dir,
      ...issued,
    };
    return await deployRenewed(w, renewed, files, installed.archived);
  } catch (err) {
    recordFailure(w, failureFromError(err));
    const outcome = failed(w, err, 'renewal failed');
    outcome.decision = { ...outcome.decision, wakeAt: w.state.failures.nextRetryAt };
    await ctx.notifier.notify({
      kind: 'renewal-failed',
      cert: spec.name,
      domains: spec.domains,
      serial: info?.serial,
      notAfter: info?.notAfter,
      message: outcome.error ?? 'renewal failed',
    });
    return outcome;
  }
}

/**
 * The order for one CA. `replaces` (RFC 9773 §5) names a certificate of the CA that issued
 * it; another CA does not know it, so it is sent only to that CA. Each CA gets its own order
 * deadline: a primary that hung until its deadline must not leave the fallback none.
 */
function issueRequest(w: Work, keyPem: string, ca: AcmeSettings): IssueRequest {
  const { ctx, o } = w;
  const { spec } = o;
  const replaces = w.action.next.replaces;
  const sameCa = issuingCa(o.state, o.info, ctx.config.acme) === ca.directoryUrl;
  return {
    name: spec.name,
    domains: spec.domains,
    keyPem,
    providerFor: (domain) => providerFor(spec, domain),
    solver: ctx.clients.solver(),
    signal: withDeadline(ctx.signal, ORDER_TIMEOUT_MS),
    journal: ctx.journal,
    ...(replaces && sameCa ? { replaces } : {}),
    ...(spec.profile ? { profile: spec.profile, profileMode: spec.profileMode } : {}),
  };
}

async function deployRenewed(
  w: Work,
  renewed: CertOutcome,
  files: StoredCertificate,
  archived: string | undefined,
): Promise<CertOutcome> {
  try {
    const previousSerial = w.o.info?.serial;
    const result = await w.ctx.deploy.run(w.o.spec, w.log, {
      installed: files,
      ...(previousSerial ? { previousSerial } : {}),
      ...(archived ? { rollbackTo: archived } : {}),
    });
    const outcome = withDeploy(renewed, result);
    if (outcome.status === 'failed') recordDeployFailure(w, outcome);
    else
      await w.ctx.deploy
        .dropKept(w.o.spec.name)
        .catch((err: unknown) => w.log.warn('kept version not removed', { error: describeError(err) }));
    return outcome;
  } catch (err) {
    // Deploy machinery itself failed (state not writable...): the new version stays
    // installed and its deploy state says pending, so the next run retries.
    return { ...failed(w, err, 'deploy failed'), serial: renewed.serial, notAfter: renewed.notAfter };
  }
}

async function chooseKey(
  spec: CertificateSpec,
  store: RenewCertStore,
  info: CertInfo | undefined,
): Promise<string> {
  if (spec.reuseKey && info) {
    const stored = await store.read(spec.name).catch(() => null);
    if (stored && keyTypeOfKey(stored.key) === spec.keyType) return stored.key;
  }
  return generatePrivateKey(spec.keyType);
}

/** Per-domain mapping first, then the certificate's default provider. The loader guarantees one exists. */
export function providerFor(spec: CertificateSpec, domain: string): string {
  const p = spec.domainProviders[domain] ?? spec.dnsProvider;
  if (!p) {
    throw new CertpilotError(
      'DNS_NO_PROVIDER',
      `renew: no DNS provider configured for ${domain} in certificate "${spec.name}"`,
    );
  }
  return p;
}
