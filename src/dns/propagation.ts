import net from 'node:net';
import os from 'node:os';
import { sleep, withDeadline } from '../core/abort';
import { CertpilotError, abortError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { PropagationPolicy } from '../config/types';
import { normalizeName } from './names';
import type { DnsResolver, NameserverInfo } from './resolver';
import { txtValues } from './wire';

/**
 * Waits until every address of every authoritative nameserver of a zone serves every expected
 * TXT value. Asking the authoritative servers directly (RD=0, no cache) rather than a
 * recursive resolver is what makes the answer mean "the CA will see it": a secondary that has
 * not yet transferred the zone is exactly what fails validations.
 *
 * `dns.propagation` adapts this to hosts that cannot ask every address (PropagationPolicy):
 * addresses that do not answer may be skipped once another confirmed, IPv6 addresses may be
 * left out, and as a last resort nothing is asked and a fixed time is waited.
 */

/** Every address of every nameserver, IPv6 included, each waited for: the safe default. */
export const DEFAULT_PROPAGATION_POLICY: PropagationPolicy = {
  mode: 'authoritative',
  unreachable: 'fail',
  ipv6: 'on',
  waitMs: 60_000,
};

export interface PropagationOptions {
  readonly resolver: DnsResolver;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** dns.propagation; default DEFAULT_PROPAGATION_POLICY. */
  readonly policy?: PropagationPolicy;
  /** For `ipv6: auto`: whether this host can reach IPv6 addresses (default: hasGlobalIpv6). */
  readonly hasIpv6?: () => boolean;
}

/** True when an interface has a global IPv6 address (not loopback, link-local fe80::/10 or unique-local fc00::/7). */
export function hasGlobalIpv6(): boolean {
  return Object.values(os.networkInterfaces()).some((addrs) =>
    (addrs ?? []).some(
      (a) =>
        a.family === 'IPv6' && !a.internal && !/^fe[89ab]/i.test(a.address) && !/^f[cd]/i.test(a.address),
    ),
  );
}

/** FQDN -> TXT values that must all be visible there. */
export type ExpectedTxt =
  Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;

interface Check {
  readonly ns: string;
  readonly address: string;
  readonly fqdn: string;
  readonly expected: readonly string[];
  missing: readonly string[];
  lastProblem?: string;
  /** The last query got no answer at all (timeout, refused, no route), as opposed to a wrong one. */
  unreachable?: boolean;
}

export async function waitForPropagation(
  expected: ExpectedTxt,
  zone: string,
  opts: PropagationOptions,
): Promise<void> {
  const started = Date.now();
  const policy = opts.policy ?? DEFAULT_PROPAGATION_POLICY;
  const wanted = new Map<string, string[]>();
  for (const [fqdn, values] of expected instanceof Map ? expected.entries() : Object.entries(expected)) {
    const key = normalizeName(fqdn);
    wanted.set(key, [...new Set([...(wanted.get(key) ?? []), ...values])]);
  }
  if (wanted.size === 0) return;
  const z = normalizeName(zone);
  if (policy.mode === 'wait') return waitBlind(z, wanted, policy, opts);
  // One deadline for the whole wait; the caller's signal still wins and is reported as such.
  const deadline = withDeadline(opts.signal, opts.timeoutMs);
  const port = opts.resolver.nameserverPort;
  let checks: Check[] | undefined;
  let round = 0;
  let nsProblem: string | undefined;

  for (;;) {
    round++;
    try {
      if (!checks) {
        const nameservers = selectAddresses(await opts.resolver.nameservers(z, deadline), z, policy, opts);
        checks = buildChecks(nameservers, wanted);
        opts.log.debug('checking propagation', {
          zone: z,
          nameservers: nameservers.map((n) => `${n.name} ${n.addresses.join(' ')}`),
          names: [...wanted.keys()],
        });
      }
      const pending = checks.filter((c) => c.missing.length > 0);
      await Promise.all(pending.map((c) => probe(c, opts.resolver, port, deadline)));
      if (isPropagated(checks, wanted, policy)) {
        reportSkipped(checks, z, opts.log);
        opts.log.debug('propagated', { zone: z, rounds: round, ms: Date.now() - started });
        return;
      }
      opts.log.debug('not yet propagated', {
        zone: z,
        round,
        lagging: checks.filter((c) => c.missing.length > 0).map((c) => `${c.ns}/${c.address} ${c.fqdn}`),
      });
      await sleep(opts.intervalMs, deadline, 'dns');
    } catch (err) {
      if (opts.signal.aborted) throw abortError('dns', opts.signal);
      if (err instanceof NothingToAsk) throw err;
      if (!deadline.aborted) {
        // Finding the nameservers failed (probes never throw): note it and try again next round.
        nsProblem = describeError(err);
        opts.log.debug('nameserver lookup failed', { zone: z, error: nsProblem });
        try {
          await sleep(opts.intervalMs, deadline, 'dns');
        } catch {
          if (opts.signal.aborted) throw abortError('dns', opts.signal);
        }
        if (!deadline.aborted) continue;
      }
      throw timeoutError(z, opts.timeoutMs, checks, nsProblem, policy);
    }
  }
}

/** `mode: wait`: nothing is asked; the records are assumed visible after a fixed time. */
async function waitBlind(
  zone: string,
  wanted: ReadonlyMap<string, readonly string[]>,
  policy: PropagationPolicy,
  opts: PropagationOptions,
): Promise<void> {
  // A warning at every order: the operator chose to let the CA be the first to look.
  opts.log.warn('propagation not checked (dns.propagation.mode: wait): waiting a fixed time', {
    zone,
    names: [...wanted.keys()],
    waitMs: policy.waitMs,
  });
  await sleep(policy.waitMs, opts.signal, 'dns');
}

/** Setting up the check found nothing it may ask: waiting would not change that. */
class NothingToAsk extends CertpilotError {}

/**
 * The addresses to ask under `ipv6`. A nameserver left without addresses by the policy is not
 * checked (a warning says so); one that has no address at all stays, to be reported.
 */
function selectAddresses(
  nameservers: readonly NameserverInfo[],
  zone: string,
  policy: PropagationPolicy,
  opts: PropagationOptions,
): NameserverInfo[] {
  const useIpv6 = policy.ipv6 === 'on' || (policy.ipv6 === 'auto' && (opts.hasIpv6 ?? hasGlobalIpv6)());
  if (useIpv6) return [...nameservers];
  const kept: NameserverInfo[] = [];
  for (const ns of nameservers) {
    const v4 = ns.addresses.filter((a) => !net.isIPv6(a));
    if (ns.addresses.length > 0 && v4.length === 0) {
      opts.log.warn('nameserver not checked: it has only IPv6 addresses', {
        zone,
        nameserver: ns.name,
        addresses: ns.addresses,
        ipv6: policy.ipv6,
      });
      continue;
    }
    kept.push({ name: ns.name, addresses: v4 });
  }
  if (kept.length === 0) {
    throw new NothingToAsk(
      'DNS_QUERY_FAILED',
      `dns: no nameserver of ${zone} can be asked: all have only IPv6 addresses and dns.propagation.ipv6 is ${policy.ipv6}`,
      { details: { zone } },
    );
  }
  return kept;
}

/**
 * Done when every address serves every value; with `unreachable: skip`, an address that gave
 * no answer at all does not hold the wait up, provided every name was confirmed by some other.
 */
function isPropagated(
  checks: readonly Check[],
  wanted: ReadonlyMap<string, readonly string[]>,
  policy: PropagationPolicy,
): boolean {
  if (checks.every((c) => c.missing.length === 0)) return true;
  if (policy.unreachable !== 'skip') return false;
  if (!checks.every((c) => c.missing.length === 0 || c.unreachable === true)) return false;
  return [...wanted.keys()].every((fqdn) => checks.some((c) => c.fqdn === fqdn && c.missing.length === 0));
}

function reportSkipped(checks: readonly Check[], zone: string, log: Logger): void {
  const skipped = checks.filter((c) => c.missing.length > 0);
  if (skipped.length === 0) return;
  log.warn('propagation confirmed without nameserver addresses that did not answer', {
    zone,
    skipped: [...new Set(skipped.map((c) => `${c.ns} (${c.address}): ${c.lastProblem ?? 'no answer'}`))],
  });
}

function buildChecks(
  nameservers: readonly NameserverInfo[],
  wanted: ReadonlyMap<string, readonly string[]>,
): Check[] {
  const checks: Check[] = [];
  for (const ns of nameservers) {
    // A nameserver without addresses can never answer; report it rather than skip it, or a
    // broken NS set would look propagated.
    const addresses = ns.addresses.length > 0 ? ns.addresses : ['(no address)'];
    for (const address of addresses) {
      for (const [fqdn, expected] of wanted)
        checks.push({ ns: ns.name, address, fqdn, expected, missing: expected });
    }
  }
  return checks;
}

async function probe(check: Check, resolver: DnsResolver, port: number, signal: AbortSignal): Promise<void> {
  if (check.address === '(no address)') {
    check.lastProblem = 'nameserver has no A/AAAA address';
    return;
  }
  try {
    const r = await resolver.queryAuthoritative(check.address, port, check.fqdn, 'TXT', signal);
    check.unreachable = false;
    if (r.rcode !== 'NOERROR' && r.rcode !== 'NXDOMAIN') {
      check.lastProblem = `answered ${r.rcode}`;
      return;
    }
    if (!r.flags.aa) {
      // A lame server (not authoritative for the zone) cannot tell us what the zone holds.
      check.lastProblem = 'answer not authoritative';
      return;
    }
    const present = new Set(txtValues(r, check.fqdn));
    check.missing = check.expected.filter((v) => !present.has(v));
    check.lastProblem = undefined;
  } catch (err) {
    if (signal.aborted) return;
    check.lastProblem = describeError(err);
    // No answer at all (timeout, refused, no route): what `unreachable: skip` may skip.
    check.unreachable = true;
  }
}

function timeoutError(
  zone: string,
  timeoutMs: number,
  checks: readonly Check[] | undefined,
  nsProblem: string | undefined,
  policy: PropagationPolicy,
): CertpilotError {
  if (!checks) {
    return new CertpilotError(
      'DNS_PROPAGATION_TIMEOUT',
      `dns: could not list the nameservers of ${zone} within ${timeoutMs} ms${nsProblem ? `: ${nsProblem}` : ''}`,
      { retryable: true, details: { zone } },
    );
  }
  const lagging = checks.filter((c) => c.missing.length > 0);
  const lines = lagging.map((c) => {
    const values = c.missing.map((v) => `"${v}"`).join(', ');
    return `${c.ns} (${c.address}) lacks ${values} at ${c.fqdn}${c.lastProblem ? ` [last: ${c.lastProblem}]` : ''}`;
  });
  const silent = lagging.filter((c) => c.unreachable === true).length;
  // Addresses that never answered are often ones this host cannot reach (no IPv6, DNS egress
  // filtered) rather than lagging secondaries: say what can be configured.
  const hint =
    silent > 0 && policy.unreachable === 'fail'
      ? ` (${silent} gave no answer at all; if this host cannot reach them, see dns.propagation: unreachable: skip, ipv6: off or auto, or mode: wait)`
      : '';
  return new CertpilotError(
    'DNS_PROPAGATION_TIMEOUT',
    `dns: TXT records of zone ${zone} not visible on every nameserver after ${timeoutMs} ms: ${lines.join('; ')}${hint}`,
    {
      retryable: true,
      details: {
        zone,
        lagging: lagging.map((c) => ({
          nameserver: c.ns,
          address: c.address,
          fqdn: c.fqdn,
          missing: c.missing,
          problem: c.lastProblem,
        })),
      },
    },
  );
}
