import { tryAriCertId } from '../acme/ari';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import { renewalTime } from '../plan/index';
import { exactSetKey, withAriError, withRenewalInfo } from '../plan/schedule';
import { parseCertificate, type CertInfo } from '../x509';
import type { Kept, Observation } from './choose';
import type { CertState } from '../state/store';
import { issuingCa } from './fallback';
import { settingsFingerprint } from './fingerprint';
import { observeProfileChange } from './profile';
import type { RenewContext } from './context';

/**
 * Only certificates that exist can have ARI; the directory is looked up only for them. ARI is
 * asked of the primary only, so a certificate a fallback CA issued (acme.fallback) has none:
 * the primary does not know it, and it is renewed by its lifetime, back at the primary first.
 */
export async function ariSupportedFor(
  ctx: RenewContext,
  info: CertInfo | null,
  state?: CertState,
): Promise<boolean> {
  if (info === null || tryAriCertId(info) === undefined) return false;
  if (state && issuingCa(state, info, ctx.config.acme) !== ctx.config.acme.directoryUrl) return false;
  return (await ctx.directory()).renewalInfo !== undefined;
}

/**
 * Reads what is installed and persisted for one certificate. Used before locking (to plan and
 * decide on the pre hook) and again under the lock (another process may have renewed it).
 */
export async function observeCertificate(
  ctx: RenewContext,
  spec: CertificateSpec,
  journalPending: boolean,
  log: Logger = ctx.log,
): Promise<Observation> {
  let info: CertInfo | null;
  try {
    info = await ctx.store.readInfo(spec.name);
  } catch (err) {
    // An unreadable certificate on disk is treated as missing: issuing a fresh pair is the
    // repair, and install() archives what was there.
    log.warn('stored certificate unusable, will reissue', { cert: spec.name, error: describeError(err) });
    info = null;
  }
  const { state, problem } = await ctx.states.read(spec.name);
  if (problem) log.warn('renewal state unusable, starting afresh', { cert: spec.name, problem });
  const ariSupported = await ariSupportedFor(ctx, info, state);
  const deployPending =
    info !== null && ctx.deploy.hasWork(spec) && (await ctx.deploy.pending(spec.name, info.serial));
  const kept = await keptVersion(ctx, spec, info, log);
  const fingerprint = settingsFingerprint(ctx.config, spec);
  const profileChanged = await observeProfileChange(ctx, spec, info, state);
  return {
    spec,
    info,
    state,
    ariSupported,
    deployPending,
    journalPending,
    fingerprint,
    ...(kept ? { kept } : {}),
    ...(profileChanged ? { profileChanged } : {}),
  };
}

/**
 * The version a rollback replaced, when deploying it again is better than a new order: the
 * same names and key type as configured, another serial than the installed one, and not due
 * itself. Anything else (unreadable, changed configuration) is ignored: a new order follows.
 */
async function keptVersion(
  ctx: RenewContext,
  spec: CertificateSpec,
  current: CertInfo | null,
  log: Logger,
): Promise<Kept | undefined> {
  const kept = await ctx.deploy.kept(spec.name).catch((err: unknown) => {
    log.warn('kept version unreadable; ignored', { cert: spec.name, error: describeError(err) });
    return null;
  });
  if (!kept) return undefined;
  let info: CertInfo;
  try {
    info = parseCertificate(kept.cert);
  } catch {
    return undefined;
  }
  const now = ctx.clock.now();
  const fits =
    info.serial !== current?.serial &&
    exactSetKey(info.names) === exactSetKey(spec.domains) &&
    info.keyType === spec.keyType &&
    renewalTime(info, ctx.policy).getTime() > now.getTime();
  const { cert, chain, fullchain, key } = kept;
  return fits ? { files: { cert, chain, fullchain, key }, info } : undefined;
}

/** Fetches renewalInfo and folds the answer (or the error) into the state. */
export async function pollRenewalInfo(ctx: RenewContext, o: Observation, log: Logger): Promise<Observation> {
  const certId = o.info ? tryAriCertId(o.info) : undefined;
  const dir = await ctx.directory();
  if (!certId || !dir.renewalInfo) return o;
  const now = ctx.clock.now();
  try {
    const info = await ctx.renewalInfo(dir.renewalInfo, certId);
    log.info('renewal information', {
      cert: o.spec.name,
      windowStart: info.window.start,
      windowEnd: info.window.end,
      ...(info.explanationURL ? { explanation: info.explanationURL } : {}),
    });
    return { ...o, state: withRenewalInfo(o.state, certId, info, now) };
  } catch (err) {
    log.warn('renewal information unavailable', { cert: o.spec.name, error: describeError(err) });
    return { ...o, state: withAriError(o.state, certId, err, now) };
  }
}
