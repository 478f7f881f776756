import { tryAriCertId } from '../acme/ari';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CertificateSpec } from '../config/types';
import { withAriError, withRenewalInfo } from '../plan/schedule';
import type { CertInfo } from '../x509';
import type { Observation } from './choose';
import type { RenewContext } from './context';

/** Only certificates that exist can have ARI; the directory is looked up only for them. */
export async function ariSupportedFor(ctx: RenewContext, info: CertInfo | null): Promise<boolean> {
  return (
    info !== null && tryAriCertId(info) !== undefined && (await ctx.directory()).renewalInfo !== undefined
  );
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
  const ariSupported = await ariSupportedFor(ctx, info);
  const deployPending =
    info !== null && ctx.deploy.hasWork(spec) && (await ctx.deploy.pending(spec.name, info.serial));
  return { spec, info, state, ariSupported, deployPending, journalPending };
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
