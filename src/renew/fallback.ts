import type { IssueResult } from '../acme/service';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AcmeSettings, CertificateSpec } from '../config/types';
import type { CaaProperty } from '../inspect/caa';
import type { CertState } from '../state/store';
import type { CertInfo } from '../x509';
import type { CaaSet, RenewContext } from './context';
import type { RenewAcme } from './types';

/**
 * CA fallback (`acme.fallback`): an order the primary keeps failing within one run moves to
 * the next configured CA, but only to a CA the CAA records of every name allow.
 *
 * What fails over: a CA failure left after the normal retries of the ACME layer (5xx, a
 * connection error or request timeout, rateLimited, the order's own deadline). What does not:
 * everything else, because another CA would fail the same way and burn its own rate limits on
 * it: a failed validation (the DNS records are ours), unauthorized, badCSR, a rejected
 * identifier, a DNS provider error, a refused account.
 *
 * CAA (RFC 8659) is asked before the first order and judged per CA with its issuer domains
 * (its directory's caaIdentities, else the configured ones). The primary is judged as
 * `check --readiness` does: a CA whose identities are unknown is not refused. A fallback CA
 * must be shown allowed: failing over to a CA the records may forbid would spend its rate
 * limits on an order it must refuse. A record set that forbids every configured CA fails the
 * certificate before any order, quoting the records.
 *
 * Nothing of a fallback CA is opened, asked or loaded unless an order reaches it.
 */

/** The CAs an order may go to, in order: the primary, then acme.fallback. */
export function configuredCas(acme: AcmeSettings): readonly AcmeSettings[] {
  return [acme, ...(acme.fallback ?? [])];
}

/**
 * The CA that issued the installed certificate: recorded with the success that installed it.
 * A certificate from before the record existed (or not installed by an order) is taken to be
 * the primary's, which is what it was before acme.fallback existed.
 */
export function issuingCa(state: CertState, info: CertInfo | null, primary: AcmeSettings): string {
  const last = state.lastSuccess;
  return info && last?.ca && last.serial === info.serial ? last.ca : primary.directoryUrl;
}

/** Why `err` moves the order to the next CA; undefined when it must not. */
export function failoverReason(err: unknown, runSignal: AbortSignal | undefined): string | undefined {
  // The run itself was cancelled (SIGTERM, the daemon stopping): nothing goes anywhere.
  if (runSignal?.aborted || !(err instanceof CertpilotError)) return undefined;
  const kind =
    err.code === 'ACME_RATE_LIMITED'
      ? 'rate limited'
      : err.code === 'TIMEOUT'
        ? 'order deadline passed'
        : err.code === 'ACME_NETWORK' && err.retryable
          ? 'connection failed or timed out'
          : err.code === 'ACME_PROBLEM' && err.retryable
            ? 'server error'
            : err.code === 'ACME_ORDER_FAILED' && err.retryable
              ? 'the CA did not finish the order'
              : undefined;
  return kind && `${kind}: ${err.message}`;
}

/** One line per property, as a zone file writes it. */
function quoteRecords(set: CaaSet): string {
  return set.properties
    .map((p: CaaProperty) => `${set.foundAt}. CAA ${p.flags} ${p.tag} "${p.value}"`)
    .join(', ');
}

interface Verdict {
  allowed: boolean;
  /** Why not (with the records quoted), or why it could not be told. */
  reason?: string;
}

/** The CAA sets of one certificate's names, asked once, judged per CA. */
class CaaGate {
  private sets: Promise<Map<string, CaaSet> | Error> | undefined;

  constructor(
    private readonly ctx: RenewContext,
    private readonly names: readonly string[],
    private readonly signal: AbortSignal,
  ) {}

  private lookup(): Promise<Map<string, CaaSet> | Error> {
    this.sets ??= Promise.all(
      this.names.map(async (n) => [n, await this.ctx.findCaa(n, this.signal)] as const),
    )
      .then((pairs) => new Map(pairs))
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    return this.sets;
  }

  async judge(ca: AcmeSettings, primary: boolean): Promise<Verdict> {
    const sets = await this.lookup();
    if (sets instanceof Error) {
      // Not knowing is no reason to stop the primary (the CA checks CAA itself), but it is no
      // permission to send an order elsewhere.
      return primary
        ? { allowed: true }
        : { allowed: false, reason: `CAA lookup failed: ${describeError(sets)}` };
    }
    if ([...sets.values()].every((s) => s.properties.length === 0)) return { allowed: true };
    const identities = await this.ctx.caIdentities(ca).catch(() => ca.caaIdentities);
    const refusals: string[] = [];
    // Loaded here: only a certificate with CAA records gets this far (inspect/caa brings the
    // DNS resolver and its wire code, which a run that orders nothing never needs).
    const { judgeCaa } = await import('../inspect/caa');
    for (const [name, set] of sets) {
      const v = judgeCaa(name, set, identities);
      if (v.allowed && !(v.undecided && !primary)) continue;
      const why = v.undecided
        ? `${v.reason}; set caaIdentities for this CA in acme.fallback`
        : (v.reason ?? 'forbidden');
      refusals.push(`${name}: ${why} (records: ${quoteRecords(set)})`);
    }
    return refusals.length === 0 ? { allowed: true } : { allowed: false, reason: refusals.join('; ') };
  }
}

export interface FallbackOrder {
  issued: IssueResult;
  /** The CA that issued it. */
  ca: AcmeSettings;
}

/** One order at one CA (the request is the caller's: `replaces` depends on the CA). */
export type IssueAt = (service: RenewAcme, ca: AcmeSettings) => Promise<IssueResult>;

/**
 * Orders `spec` at the first CA that works, as described above. Without acme.fallback this is
 * one order at the primary and nothing else (no CAA question either).
 */
export async function orderWithFallback(
  ctx: RenewContext,
  spec: CertificateSpec,
  o: { info: CertInfo | null; log: Logger; signal: AbortSignal },
  issueAt: IssueAt,
): Promise<FallbackOrder> {
  const cas = configuredCas(ctx.config.acme);
  if (cas.length === 1) return { issued: await issueAt(await ctx.clients.acme(), cas[0]!), ca: cas[0]! };
  const gate = new CaaGate(ctx, spec.domains, o.signal);
  const refused: string[] = [];
  let k = await nextAllowed(gate, cas, 0, refused);
  if (k === undefined) {
    throw new CertpilotError(
      'CAA_FORBIDDEN',
      `renew: CAA forbids every configured CA for ${spec.domains.join(', ')}; no order placed: ${refused.join('; ')}`,
    );
  }
  if (k > 0) await announceFailover(ctx, spec, o, cas[0]!, cas[k]!, `CAA forbids it: ${refused.join('; ')}`);
  for (;;) {
    const ca = cas[k]!;
    try {
      return { issued: await issueAt(await ctx.clients.acmeFor(ca), ca), ca };
    } catch (err) {
      const why = failoverReason(err, ctx.signal);
      if (why === undefined) throw err;
      const skipped: string[] = [];
      const next = await nextAllowed(gate, cas, k + 1, skipped);
      if (next === undefined) throw withoutFailover(err as CertpilotError, skipped);
      await announceFailover(ctx, spec, o, ca, cas[next]!, [why, ...skipped].join('; '));
      k = next;
    }
  }
}

/** The first CA from `from` on that CAA allows; the refusals are added to `refused`. */
async function nextAllowed(
  gate: CaaGate,
  cas: readonly AcmeSettings[],
  from: number,
  refused: string[],
): Promise<number | undefined> {
  for (let i = from; i < cas.length; i++) {
    const v = await gate.judge(cas[i]!, i === 0);
    if (v.allowed) return i;
    refused.push(`${cas[i]!.directoryUrl}: ${v.reason ?? 'not allowed'}`);
  }
  return undefined;
}

/** The CA's error, with why no other CA was tried (the code stays: backoff and rate limits key on it). */
function withoutFailover(err: CertpilotError, skipped: readonly string[]): CertpilotError {
  if (skipped.length === 0) return err;
  return new CertpilotError(
    err.code,
    `${err.message}; no fallback CA may take the order: ${skipped.join('; ')}`,
    {
      cause: err,
      retryable: err.retryable,
      details: err.details,
    },
  );
}

async function announceFailover(
  ctx: RenewContext,
  spec: CertificateSpec,
  o: { info: CertInfo | null; log: Logger },
  from: AcmeSettings,
  to: AcmeSettings,
  reason: string,
): Promise<void> {
  o.log.warn('CA failover: ordering from the next CA', {
    from: from.directoryUrl,
    to: to.directoryUrl,
    reason,
  });
  await ctx.notifier.notify({
    kind: 'ca-failover',
    cert: spec.name,
    domains: spec.domains,
    ...(o.info ? { serial: o.info.serial, notAfter: o.info.notAfter } : {}),
    message: `order moved from ${from.directoryUrl} to ${to.directoryUrl}: ${reason}`,
  });
}
