import { sleep, withDeadline } from '../core/abort';
import { CertpilotError, abortError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { normalizeName } from './names';
import type { DnsResolver, NameserverInfo } from './resolver';
import { txtValues } from './wire';

/**
 * Waits until every address of every authoritative nameserver of a zone serves every expected
 * TXT value. Asking the authoritative servers directly (RD=0, no cache) rather than a
 * recursive resolver is what makes the answer mean "the CA will see it": a secondary that has
 * not yet transferred the zone is exactly what fails validations.
 */

export interface PropagationOptions {
  readonly resolver: DnsResolver;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
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
}

export async function waitForPropagation(
  expected: ExpectedTxt,
  zone: string,
  opts: PropagationOptions,
): Promise<void> {
  const started = Date.now();
  const wanted = new Map<string, string[]>();
  for (const [fqdn, values] of expected instanceof Map ? expected.entries() : Object.entries(expected)) {
    const key = normalizeName(fqdn);
    wanted.set(key, [...new Set([...(wanted.get(key) ?? []), ...values])]);
  }
  if (wanted.size === 0) return;
  const z = normalizeName(zone);
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
        const nameservers = await opts.resolver.nameservers(z, deadline);
        checks = buildChecks(nameservers, wanted);
        opts.log.debug('checking propagation', {
          zone: z,
          nameservers: nameservers.map((n) => `${n.name} ${n.addresses.join(' ')}`),
          names: [...wanted.keys()],
        });
      }
      const pending = checks.filter((c) => c.missing.length > 0);
      await Promise.all(pending.map((c) => probe(c, opts.resolver, port, deadline)));
      const lagging = checks.filter((c) => c.missing.length > 0);
      if (lagging.length === 0) {
        opts.log.debug('propagated', { zone: z, rounds: round, ms: Date.now() - started });
        return;
      }
      opts.log.debug('not yet propagated', {
        zone: z,
        round,
        lagging: lagging.map((c) => `${c.ns}/${c.address} ${c.fqdn}`),
      });
      await sleep(opts.intervalMs, deadline, 'dns');
    } catch (err) {
      if (opts.signal.aborted) throw abortError('dns', opts.signal);
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
      throw timeoutError(z, opts.timeoutMs, checks, nsProblem);
    }
  }
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
  }
}

function timeoutError(
  zone: string,
  timeoutMs: number,
  checks: readonly Check[] | undefined,
  nsProblem: string | undefined,
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
  return new CertpilotError(
    'DNS_PROPAGATION_TIMEOUT',
    `dns: TXT records of zone ${zone} not visible on every nameserver after ${timeoutMs} ms: ${lines.join('; ')}`,
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
