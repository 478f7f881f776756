import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import type { Notifier } from '../notify';
import type { CertStore, StoredCertificate } from '../store/cert-store';
import type { CommandSpec, CertificateDeploySpec, DeploySettings } from '../config/types';
import { runChecked } from './command';
import type { StepContext } from './deployers';
import { certPlaceholders, certVars, type CertVarsInput } from './env';
import {
  readDeployState,
  writeDeployState,
  type DeployState,
  type DeployStatus,
} from '../state/deploy-state';
import { endpointKey } from '../config/access';
import { writeKept } from '../state/kept';

import { describeRollback, hasDeployWork } from './work';

export { describeRollback, hasDeployWork };

/**
 * deploy → verify → (rollback) for one certificate whose new version is already in the store.
 *
 *   issued ──deploy steps──▶ deployed ──endpoints serve it──▶ verified
 *      │                        │
 *      └─ deploy-failed         └─ verify-failed
 *           └──────── rollback (default when endpoints exist) ──▶ rolled-back | rollback-failed
 *
 * Every transition is written to the deploy state before the next step, so a crash or a
 * failure anywhere leaves a state the next run can finish from without a new ACME order.
 */

export interface DeployContext {
  spec: CertificateSpec;
  deploy: CertificateDeploySpec;
  settings: DeploySettings;
  store: CertStore;
  stateDir: string;
  notifier: Notifier;
  log: Logger;
  signal?: AbortSignal;
}

export interface DeployRequest {
  /** The version now current in the store. */
  current: StoredCertificate;
  /** Serial of the version it replaced, for CERTPILOT_PREVIOUS_SERIAL. */
  previousSerial?: string;
  /** Archived directory of the version to restore if this one fails. */
  rollbackTo?: string;
}

export interface DeployResult {
  ok: boolean;
  status: DeployStatus;
  error?: string;
  errorCode?: string;
  /** Serial current after the run (the restored one after a rollback). */
  serial: string;
  notAfter: Date;
  endpoints: DeployState['endpoints'];
  /** `from` (the new serial) failed at `step`; `to` (the previous one) is current again. */
  rolledBack?: { from: string; to: string; step: RollbackCause };
}

/** What the new version failed: its deploy steps, or the verification of the endpoints. */
export type RollbackCause = 'deploy' | 'verification';

/**
 * The newest archived version with a serial other than `serial`, for rolling back a version
 * that is already current (a re-deploy on a later run). Unreadable entries are skipped.
 */
export async function findPrevious(
  store: CertStore,
  name: string,
  serial: string,
): Promise<StoredCertificate | null> {
  for (const dir of await store.listArchive(name)) {
    const stored = await store.readArchived(dir).catch(() => null);
    if (stored && stored.info.serial !== serial) return stored;
  }
  return null;
}

function varsInput(ctx: DeployContext, cert: StoredCertificate, previousSerial?: string): CertVarsInput {
  return {
    name: ctx.spec.name,
    domains: ctx.spec.domains,
    paths: ctx.store.paths(ctx.spec.name),
    serial: cert.info.serial,
    notAfter: cert.info.notAfter,
    ...(previousSerial !== undefined ? { previousSerial } : {}),
  };
}

/** Deployers in order, then the certificate's deploy hooks, then the global ones. */
async function runDeploySteps(
  ctx: DeployContext,
  cert: StoredCertificate,
  previousSerial?: string,
): Promise<void> {
  const input = varsInput(ctx, cert, previousSerial);
  const stepCtx: StepContext = {
    cert: input,
    fullchainPem: cert.fullchain,
    fingerprint256: cert.info.fingerprint256,
    log: ctx.log,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  };
  // The deployers (HTTP, DNS lookups) and the verifier (TLS probes) load when there is a deploy:
  // a renew with nothing due never needs them.
  const { runStep } = await import('./deployers');
  for (const [i, step] of ctx.deploy.deploy.entries()) await runStep(step, i, stepCtx);
  const hooks: [string, readonly CommandSpec[]][] = [
    [`certificates["${ctx.spec.name}"].hooks.deploy`, ctx.deploy.hooks.deploy],
    ['hooks.deploy', ctx.settings.hooks.deploy],
  ];
  for (const [base, list] of hooks) {
    for (const [i, hook] of list.entries()) {
      await runChecked(hook, {
        label: `${base}[${i}]`,
        vars: certVars(input),
        placeholders: certPlaceholders(input),
        log: ctx.log,
        checkpoint: 'during-deploy-hook',
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    }
  }
}

function pendingEndpoints(ctx: DeployContext): DeployState['endpoints'] {
  return Object.fromEntries(
    ctx.deploy.endpoints.map((e) => [endpointKey(e), { status: 'pending' as const }]),
  );
}

function endpointsFrom(err: unknown): DeployState['endpoints'] | undefined {
  const details = err instanceof CertpilotError ? err.details : undefined;
  return details?.endpoints as DeployState['endpoints'] | undefined;
}

/** Deploys and verifies `cert`; throws the first failure, having recorded it in `state`. */
async function deployAndVerify(
  ctx: DeployContext,
  cert: StoredCertificate,
  state: DeployState,
  previousSerial: string | undefined,
): Promise<void> {
  const save = async (patch: Partial<DeployState>): Promise<void> => {
    Object.assign(state, patch, { updatedAt: new Date().toISOString() });
    await writeDeployState(ctx.stateDir, ctx.spec.name, state);
  };
  try {
    await runDeploySteps(ctx, cert, previousSerial);
  } catch (err) {
    await save({ status: 'deploy-failed', error: describeError(err) });
    throw err;
  }
  await save({ status: 'deployed', error: undefined });
  if (ctx.deploy.endpoints.length === 0) {
    // Nothing to probe: a successful deploy is as far as certpilot can see.
    await save({ status: 'verified' });
    return;
  }
  try {
    const { verifyEndpoints } = await import('./verify');
    const outcomes = await verifyEndpoints(
      ctx.deploy.endpoints,
      cert.info,
      ctx.settings.verify,
      ctx.log,
      ctx.signal,
    );
    await save({ status: 'verified', endpoints: Object.fromEntries(outcomes.map((o) => [o.key, o.state])) });
  } catch (err) {
    await save({
      status: 'verify-failed',
      error: describeError(err),
      endpoints: endpointsFrom(err) ?? state.endpoints,
    });
    throw err;
  }
}

export async function deployCertificate(ctx: DeployContext, req: DeployRequest): Promise<DeployResult> {
  const { spec, notifier } = ctx;
  const log = ctx.log;
  const cert = req.current;
  const before = await readDeployState(ctx.stateDir, spec.name).catch(() => null);
  const state: DeployState = {
    serial: cert.info.serial,
    fingerprint: cert.info.fingerprint256,
    status: 'issued',
    updatedAt: new Date().toISOString(),
    ...(req.previousSerial ? { previousSerial: req.previousSerial } : {}),
    endpoints: pendingEndpoints(ctx),
    attempts: (before?.serial === cert.info.serial ? before.attempts : 0) + 1,
  };
  await writeDeployState(ctx.stateDir, spec.name, state);
  log.info('deploying', { serial: cert.info.serial, attempt: state.attempts });

  try {
    await deployAndVerify(ctx, cert, state, req.previousSerial);
    log.info('certificate deployed and verified', {
      serial: cert.info.serial,
      endpoints: Object.keys(state.endpoints),
    });
    return {
      ok: true,
      status: 'verified',
      serial: cert.info.serial,
      notAfter: cert.info.notAfter,
      endpoints: state.endpoints,
    };
  } catch (err) {
    const failure = state.status as 'deploy-failed' | 'verify-failed';
    const message = describeError(err);
    const errorCode = err instanceof CertpilotError ? err.code : undefined;
    log.error(failure === 'deploy-failed' ? 'deploy failed' : 'verification failed', { error: message });
    await notifier.notify({
      kind: failure,
      cert: spec.name,
      domains: spec.domains,
      serial: cert.info.serial,
      notAfter: cert.info.notAfter,
      message,
    });
    const failed: DeployResult = {
      ok: false,
      status: failure,
      error: message,
      ...(errorCode ? { errorCode } : {}),
      serial: cert.info.serial,
      notAfter: cert.info.notAfter,
      endpoints: state.endpoints,
    };
    if (!ctx.deploy.rollback) return failed;
    if (!req.rollbackTo) {
      log.warn('no previous version to roll back to', { serial: cert.info.serial });
      return failed;
    }
    return rollback(ctx, cert, req.rollbackTo, failed);
  }
}

/**
 * Restores the archived version, deploys it again and verifies it is served. The failed
 * version's files are only replaced through the store's atomic swap, and the deploy steps
 * (nginx -t first) run against the restored files, so no step leaves a server without a
 * valid certificate.
 */
async function rollback(
  ctx: DeployContext,
  failedCert: StoredCertificate,
  archivedDir: string,
  failed: DeployResult,
): Promise<DeployResult> {
  const { spec, log } = ctx;
  const failedSerial = failedCert.info.serial;
  const step: RollbackCause = failed.status === 'deploy-failed' ? 'deploy' : 'verification';
  log.warn('rolling back', { failedSerial, to: archivedDir });
  let restored: StoredCertificate | null = null;
  try {
    // Kept so that, once the deploy problem is fixed, the next run deploys it without an order.
    await writeKept(ctx.stateDir, spec.name, { ...failedCert, serial: failedSerial });
    await ctx.store.activate(spec.name, archivedDir, spec.outputs);
    restored = await ctx.store.read(spec.name);
    if (!restored) throw new CertpilotError('STORE_IO', `store: ${spec.name}: nothing current after restore`);
    const state: DeployState = {
      serial: restored.info.serial,
      fingerprint: restored.info.fingerprint256,
      status: 'issued',
      updatedAt: new Date().toISOString(),
      previousSerial: failedSerial,
      failedSerial,
      endpoints: pendingEndpoints(ctx),
      attempts: 1,
      error: failed.error,
    };
    await writeDeployState(ctx.stateDir, spec.name, state);
    await deployAndVerify(ctx, restored, state, failedSerial);
    await writeDeployState(ctx.stateDir, spec.name, {
      ...state,
      status: 'rolled-back',
      error: failed.error,
      updatedAt: new Date().toISOString(),
    });
    const rolledBack = { from: failedSerial, to: restored.info.serial, step };
    const message = `${describeRollback(rolledBack)}, which is served again (${failed.error})`;
    log.warn('rolled back', { failedSerial, serial: restored.info.serial });
    await ctx.notifier.notify({
      kind: 'rollback',
      cert: spec.name,
      domains: spec.domains,
      serial: restored.info.serial,
      failedSerial,
      notAfter: restored.info.notAfter,
      message,
    });
    return {
      ...failed,
      status: 'rolled-back',
      serial: restored.info.serial,
      notAfter: restored.info.notAfter,
      endpoints: state.endpoints,
      rolledBack,
    };
  } catch (err) {
    const message =
      `new serial ${failedSerial} failed ${step} (${failed.error}); rolling back failed too: ` +
      `${describeError(err)}`;
    log.error('rollback failed', { error: describeError(err) });
    const current = restored ?? failedCert;
    await writeDeployState(ctx.stateDir, spec.name, {
      serial: current.info.serial,
      fingerprint: current.info.fingerprint256,
      status: 'rollback-failed',
      updatedAt: new Date().toISOString(),
      failedSerial,
      endpoints: endpointsFrom(err) ?? {},
      attempts: 1,
      error: message,
    }).catch(() => undefined);
    // A failure, not a rollback: what is served now is unknown and needs a person.
    await ctx.notifier.notify({
      kind: 'rollback-failed',
      cert: spec.name,
      domains: spec.domains,
      serial: current.info.serial,
      failedSerial,
      notAfter: current.info.notAfter,
      message,
    });
    return {
      ...failed,
      status: 'rollback-failed',
      error: message,
      serial: current.info.serial,
      notAfter: current.info.notAfter,
    };
  }
}
