import { certDeployOf } from '../config/access';
import type { CertificateSpec, DeploySettings } from '../config/types';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { redactText } from '../core/redact';
import { deployCertificate, hasDeployWork, type DeployResult } from '../deploy/deploy';
import type { Notifier } from '../notify';
import type { CertStore, StoredCertificate } from '../store/cert-store';
import { commitOutputs, prepareOutputs, resolveOwners } from '../store/outputs';
import type { DeployRecord } from './records';

/**
 * One node deploys one version: its own outputs, its own deploy steps and hooks, its own
 * endpoints verified (src/deploy, with the node's local deploy state in its stateDir).
 *
 * The shared store is never changed here. The single-host rollback makes an archived version
 * current again in the store; in a fleet that would roll every node back because one failed,
 * so a node that fails goes back on its own: it rewrites its outputs from the version it
 * served before (found in the store's archive by fingerprint) and deploys that again, and its
 * record says `rolled-back`. The store keeps the new version for the nodes that can serve it.
 */

export interface NodeDeployContext {
  node: string;
  store: CertStore;
  stateDir: string;
  settings: DeploySettings;
  notifier: Notifier;
  log: Logger;
  signal?: AbortSignal;
  now: () => Date;
}

async function writeOutputs(spec: CertificateSpec, files: StoredCertificate, log: Logger): Promise<void> {
  if (spec.outputs.length === 0) return;
  const owners = await resolveOwners(spec.outputs, log);
  await commitOutputs(spec.name, await prepareOutputs(spec.name, files, spec.outputs, owners));
}

/** Outputs, then deploy steps and verification; never the store's rollback (see above). */
async function deployFiles(
  ctx: NodeDeployContext,
  spec: CertificateSpec,
  files: StoredCertificate,
  previousSerial: string | undefined,
): Promise<DeployResult> {
  await writeOutputs(spec, files, ctx.log);
  const deploy = { ...certDeployOf(spec), rollback: false };
  if (!hasDeployWork(deploy, ctx.settings)) {
    return {
      ok: true,
      status: 'verified',
      serial: files.info.serial,
      notAfter: files.info.notAfter,
      endpoints: {},
    };
  }
  return deployCertificate(
    {
      spec,
      deploy,
      settings: ctx.settings,
      store: ctx.store,
      stateDir: ctx.stateDir,
      notifier: ctx.notifier,
      log: ctx.log,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    },
    { current: files, ...(previousSerial ? { previousSerial } : {}) },
  );
}

/** The archived version with this fingerprint (what the node served before), or null. */
async function findServed(
  store: CertStore,
  name: string,
  fingerprint: string,
): Promise<StoredCertificate | null> {
  for (const dir of await store.listArchive(name).catch(() => [])) {
    const stored = await store.readArchived(dir).catch(() => null);
    if (stored?.info.fingerprint256 === fingerprint) return stored;
  }
  return null;
}

async function goBack(
  ctx: NodeDeployContext,
  spec: CertificateSpec,
  failed: StoredCertificate,
  before: DeployRecord | undefined,
): Promise<StoredCertificate | null> {
  if (!certDeployOf(spec).rollback || !before || before.status === 'failed') return null;
  const previous = await findServed(ctx.store, spec.name, before.fingerprint);
  if (!previous) {
    ctx.log.warn('no archived copy of the version this node served; not rolled back', {
      serial: before.serial,
    });
    return null;
  }
  const result = await deployFiles(ctx, spec, previous, failed.info.serial);
  if (!result.ok) return null;
  await ctx.notifier.notify({
    kind: 'rollback',
    cert: spec.name,
    domains: spec.domains,
    serial: previous.info.serial,
    failedSerial: failed.info.serial,
    notAfter: previous.info.notAfter,
    message: `node ${ctx.node}: new serial ${failed.info.serial} failed; this node serves ${previous.info.serial} again`,
  });
  return previous;
}

/**
 * Deploys `files` (the store's current version) on this node and returns the record to share.
 * Never throws for a deploy problem: the record says `failed` with the error.
 */
export async function deployOnNode(
  ctx: NodeDeployContext,
  spec: CertificateSpec,
  files: StoredCertificate,
  before: DeployRecord | undefined,
): Promise<DeployRecord> {
  const base = {
    node: ctx.node,
    cert: spec.name,
    serial: files.info.serial,
    fingerprint: files.info.fingerprint256,
  };
  let error: string;
  try {
    const result = await deployFiles(ctx, spec, files, before?.serial);
    if (result.ok) {
      const at = ctx.now().toISOString();
      return { ...base, status: 'verified', at, verifiedAt: at };
    }
    error = result.error ?? result.status;
  } catch (err) {
    error = describeError(err);
    ctx.log.error('deploy failed', { error });
  }
  let back: StoredCertificate | null = null;
  try {
    back = await goBack(ctx, spec, files, before);
  } catch (err) {
    ctx.log.error('going back to the previous version failed', { error: describeError(err) });
  }
  return {
    ...base,
    status: back ? 'rolled-back' : 'failed',
    at: ctx.now().toISOString(),
    error: redactText(error),
    ...servingAfterFailure(back, before),
  };
}

/** What a node serves after a failure: the version it went back to, or what it served before. */
function servingAfterFailure(
  back: StoredCertificate | null,
  before: DeployRecord | undefined,
): { servingSerial?: string } {
  if (back) return { servingSerial: back.info.serial };
  if (before?.status === 'verified') return { servingSerial: before.serial };
  return before?.servingSerial ? { servingSerial: before.servingSerial } : {};
}
