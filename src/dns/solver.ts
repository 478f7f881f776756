import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { PresentedRecord } from '../store/journal';
import type { DnsProviderInstance, DnsSettings } from '../config/types';
import { challengeName, isSubdomain, normalizeName, toRelative } from './names';
import { waitForPropagation } from './propagation';
import { type DnsProvider, isNothingWritten } from './provider';
import { findProvider } from './registry';
import { DnsResolver, zoneNotFound } from './resolver';

/**
 * The DNS-01 solver: the one place that turns ACME challenges into provider calls. It finds
 * each name's zone, groups writes (one appendRecords per provider and zone, so the apex and
 * wildcard values of `_acme-challenge.<name>` go out together), waits for every authoritative
 * nameserver to serve them, and remembers exactly what it wrote so cleanup deletes exactly
 * that and nothing else.
 */

export interface Dns01Challenge {
  /** Authorization identifier, without `*.`. */
  readonly domain: string;
  /** The TXT value (base64url SHA-256 of the key authorization). */
  readonly value: string;
  /** Instance name in settings.providers. */
  readonly provider: string;
}

/** A record the solver wrote: the journal's record type (the store keeps the definition). */
export type { PresentedRecord } from '../store/journal';

export interface Dns01SolverOptions {
  readonly dns: DnsSettings;
  readonly log: Logger;
  readonly resolver?: DnsResolver;
  /** Default: the registry's definition for `instance.type`, created once per instance. */
  readonly providerFactory?: (instance: DnsProviderInstance) => DnsProvider;
}

/**
 * How many CNAME hops from `_acme-challenge.<name>` are followed. CAs follow chains too
 * (Let's Encrypt's resolver does); a bound stops loops.
 */
export const MAX_CNAME_DEPTH = 8;

/** Where the TXT for one challenge must be written, after CNAME delegation. */
export interface ChallengeTarget {
  /** `_acme-challenge.<domain>` as the CA asks for it. */
  readonly challengeFqdn: string;
  /** The name actually written: the end of the CNAME chain (or challengeFqdn). */
  readonly fqdn: string;
  readonly zone: string;
  /** Provider instance that writes it. */
  readonly provider: string;
  /** True when a CNAME moved the record elsewhere. */
  readonly delegated: boolean;
}

interface Group {
  readonly provider: string;
  readonly instance: DnsProviderInstance;
  readonly zone: string;
  readonly records: PresentedRecord[];
}

export class Dns01Solver {
  private readonly dns: DnsSettings;
  private readonly log: Logger;
  private resolverInstance: DnsResolver | undefined;
  private readonly factory: (instance: DnsProviderInstance) => DnsProvider;
  private readonly providers = new Map<string, DnsProvider>();

  constructor(opts: Dns01SolverOptions) {
    this.dns = opts.dns;
    this.log = opts.log;
    this.resolverInstance = opts.resolver;
    this.factory = opts.providerFactory ?? ((instance) => this.createProvider(instance));
  }

  /**
   * Writes every challenge value, then waits until every authoritative nameserver of each zone
   * serves all of them.
   *
   * `onPresented` is called once per provider+zone group as soon as its append has settled —
   * before any propagation wait — with the records that were, or may have been, written: an
   * append that failed or was cancelled may still have reached the server, and deleting an
   * absent value is harmless. A group whose append failed with the provider saying nothing was
   * written (isNothingWritten: the server refused the change) is not reported. Accumulate what it reports and pass it to `cleanup`, whatever
   * the outcome of `present`. Errors thrown by `present` also carry the same list in
   * `err.details.presented`.
   */
  async present(
    challenges: readonly Dns01Challenge[],
    signal: AbortSignal,
    onPresented?: (recs: readonly PresentedRecord[]) => void,
    beforeWrite?: (recs: readonly PresentedRecord[]) => Promise<void>,
  ): Promise<readonly PresentedRecord[]> {
    const presented: PresentedRecord[] = [];
    const fail = (err: unknown): CertpilotError => attachPresented(err, presented);
    let groups: Group[];
    try {
      groups = await this.plan(challenges, signal);
    } catch (err) {
      throw fail(err);
    }

    // Intent first (the crash journal): once this resolves, a crash at any later point still
    // leaves a record of exactly what may be in DNS.
    if (beforeWrite) {
      try {
        await beforeWrite(groups.flatMap((g) => g.records));
      } catch (err) {
        throw fail(err);
      }
    }

    const outcomes = await Promise.allSettled(
      groups.map(async (g) => {
        const provider = this.provider(g.provider);
        let written = true;
        try {
          await provider.appendRecords(
            g.zone,
            g.records.map((r) => r.record),
            signal,
          );
        } catch (err) {
          // The server refused the whole change: there is nothing to clean up.
          written = !isNothingWritten(err);
          throw err;
        } finally {
          if (written) this.reportPresented(g.records, presented, onPresented);
        }
        this.log.info('challenge records written', {
          provider: g.provider,
          zone: g.zone,
          names: [...new Set(g.records.map((r) => r.fqdn))],
        });
      }),
    );
    const failed = outcomes.flatMap((o, i) =>
      o.status === 'rejected' ? [{ group: groups[i], reason: o.reason as unknown }] : [],
    );
    if (failed.length > 0) {
      if (signal.aborted) throw fail(failed[0].reason);
      throw fail(aggregate('DNS_UPDATE_FAILED', 'writing challenge records', failed));
    }

    // One wait per zone; records of several providers in one zone (unusual) share it.
    const zones = new Map<string, Group[]>();
    for (const g of groups) zones.set(g.zone, [...(zones.get(g.zone) ?? []), g]);
    try {
      await Promise.all(
        [...zones].map(([zone, gs]) => {
          const expected = new Map<string, string[]>();
          for (const r of gs.flatMap((g) => g.records))
            expected.set(r.fqdn, [...(expected.get(r.fqdn) ?? []), r.record.value]);
          return waitForPropagation(expected, zone, {
            resolver: this.resolver(),
            timeoutMs: Math.max(...gs.map((g) => g.instance.propagationTimeoutMs)),
            intervalMs: Math.min(...gs.map((g) => g.instance.propagationIntervalMs)),
            signal,
            log: this.log,
            ...(this.dns.propagation ? { policy: this.dns.propagation } : {}),
          });
        }),
      );
    } catch (err) {
      throw fail(err);
    }
    return [...presented];
  }

  private reportPresented(
    records: readonly PresentedRecord[],
    presented: PresentedRecord[],
    onPresented: ((recs: readonly PresentedRecord[]) => void) | undefined,
  ): void {
    presented.push(...records);
    try {
      onPresented?.(records);
    } catch (err) {
      this.log.warn('onPresented callback threw', { error: describeError(err) });
    }
  }

  /**
   * Deletes exactly `records`, one deleteRecords per provider+zone. Every group is attempted
   * even when another fails; the error at the end lists each failed group. Give it its own
   * deadline: cleanup usually runs because the main work was cancelled.
   */
  async cleanup(records: readonly PresentedRecord[], signal: AbortSignal): Promise<void> {
    const groups = new Map<string, PresentedRecord[]>();
    for (const r of records) {
      const key = `${r.provider}\u0000${r.zone}`;
      const list = groups.get(key) ?? [];
      // The same value may have been reported twice (retries); delete it once.
      if (!list.some((x) => x.fqdn === r.fqdn && x.record.value === r.record.value)) list.push(r);
      groups.set(key, list);
    }
    const entries = [...groups.values()];
    const outcomes = await Promise.allSettled(
      entries.map(async (recs) => {
        const { provider, zone } = recs[0];
        await this.provider(provider).deleteRecords(
          zone,
          recs.map((r) => r.record),
          signal,
        );
        this.log.info('challenge records removed', {
          provider,
          zone,
          names: [...new Set(recs.map((r) => r.fqdn))],
        });
      }),
    );
    const failed = outcomes.flatMap((o, i) =>
      o.status === 'rejected'
        ? [
            {
              group: { provider: entries[i][0].provider, zone: entries[i][0].zone },
              reason: o.reason as unknown,
            },
          ]
        : [],
    );
    if (failed.length > 0) {
      for (const f of failed)
        this.log.warn('challenge record cleanup failed', { ...f.group, error: describeError(f.reason) });
      throw aggregate('DNS_UPDATE_FAILED', 'removing challenge records', failed);
    }
  }

  /** Releases provider clients. */
  async close(): Promise<void> {
    const all = [...this.providers.values()];
    this.providers.clear();
    await Promise.allSettled(all.map((p) => p.close?.()));
  }

  /**
   * Checks before an order is placed that every challenge can be written where the CA will
   * look: follows `_acme-challenge` CNAMEs, finds the target zone and a provider allowed to
   * write it. Fails with DNS_NO_PROVIDER (no order is spent) otherwise.
   */
  async preflight(
    challenges: readonly Omit<Dns01Challenge, 'value'>[],
    signal: AbortSignal,
  ): Promise<readonly ChallengeTarget[]> {
    return [...(await this.resolveTargets(challenges, signal)).values()];
  }

  /** One lookup per (provider, domain): apex and wildcard share `_acme-challenge.<name>`. */
  private async resolveTargets(
    challenges: readonly Omit<Dns01Challenge, 'value'>[],
    signal: AbortSignal,
  ): Promise<Map<string, ChallengeTarget>> {
    const pending = new Map<string, Promise<ChallengeTarget>>();
    for (const c of challenges) {
      const key = targetKey(c);
      if (!pending.has(key)) pending.set(key, this.resolveTarget(c.domain, c.provider, signal));
    }
    const entries = await Promise.all([...pending].map(async ([k, p]) => [k, await p] as const));
    return new Map(entries);
  }

  /** Follows the CNAME chain from `_acme-challenge.<domain>` and picks the zone and provider. */
  async resolveTarget(domain: string, provider: string, signal: AbortSignal): Promise<ChallengeTarget> {
    this.instance(provider);
    const challengeFqdn = challengeName(domain);
    const chain = await this.followCnames(challengeFqdn, domain, signal);
    const fqdn = chain[chain.length - 1];
    const delegated = fqdn !== challengeFqdn;
    const zone = await this.zoneOf(fqdn, delegated ? fqdn : domain, signal);
    if (!delegated) {
      const instance = this.instance(provider);
      if (!this.allows(instance, zone)) {
        throw new CertpilotError(
          'DNS_NO_PROVIDER',
          `dns: provider "${provider}" may not write zone ${zone} (for ${fqdn}); its zones are ${instance.zones.join(', ')}`,
          { details: { provider, zone, fqdn, chain } },
        );
      }
      return { challengeFqdn, fqdn, zone, provider, delegated };
    }
    const chosen = await this.providerForDelegation(zone, provider, challengeFqdn, domain, signal);
    if (typeof chosen !== 'string') {
      throw new CertpilotError(
        'DNS_NO_PROVIDER',
        `dns: no DNS provider may write zone ${zone} (${challengeFqdn} is a CNAME to ${fqdn}); ${chosen.advice}`,
        { details: { provider, zone, fqdn, chain } },
      );
    }
    this.log.info('challenge delegated by CNAME', { from: challengeFqdn, to: fqdn, zone, provider: chosen });
    return { challengeFqdn, fqdn, zone, provider: chosen, delegated };
  }

  /** The names from `challengeFqdn` to the end of its CNAME chain, both included. */
  private async followCnames(challengeFqdn: string, domain: string, signal: AbortSignal): Promise<string[]> {
    const chain = [challengeFqdn];
    for (let hop = 0; ; hop++) {
      const fqdn = chain[chain.length - 1];
      const next = await this.cnameOf(fqdn, domain, signal);
      if (!next) return chain;
      if (hop >= MAX_CNAME_DEPTH || chain.includes(next)) {
        throw new CertpilotError(
          'DNS_NO_PROVIDER',
          `dns: CNAME chain from ${challengeFqdn} is a loop or longer than ${MAX_CNAME_DEPTH}: ${[...chain, next].join(' -> ')}`,
        );
      }
      chain.push(next);
    }
  }

  private async cnameOf(fqdn: string, domain: string, signal: AbortSignal): Promise<string | undefined> {
    let r;
    try {
      r = await this.resolver().recursive(fqdn, 'CNAME', signal);
    } catch (err) {
      // Every resolver refused the name: none serves it, which is the zone's problem, not the CNAME's.
      throw zoneNotFound(domain, err) ?? err;
    }
    const rec = r.answers.find((a) => a.type === 'CNAME' && normalizeName(a.name) === fqdn);
    return rec ? normalizeName(String(rec.data)) : undefined;
  }

  /** The zone of `fqdn`; when no resolver serves it, the error names `name` (what the user wrote). */
  private async zoneOf(fqdn: string, name: string, signal: AbortSignal): Promise<string> {
    try {
      return await this.resolver().findZone(fqdn, signal);
    } catch (err) {
      const cause = err instanceof CertpilotError ? err.cause : undefined;
      if (err instanceof CertpilotError && err.code === 'DNS_ZONE_NOT_FOUND' && cause)
        throw zoneNotFound(name, cause) ?? err;
      throw err;
    }
  }

  /**
   * For a CNAME-delegated target: the instance whose `zones` covers it most specifically. A
   * CNAME alone (stale, or spoofed on the way from the resolver) must not move a write into a
   * zone nobody listed, so an unrestricted certificate provider writes an unlisted zone only
   * when the CNAME stays inside the zone of the certificate's own name, or when the instance
   * says `cnameToAnyZone: true`. Else returns the advice for the error.
   */
  private async providerForDelegation(
    zone: string,
    fallback: string,
    challengeFqdn: string,
    domain: string,
    signal: AbortSignal,
  ): Promise<string | { advice: string }> {
    let best: { name: string; depth: number } | undefined;
    for (const inst of Object.values(this.dns.providers)) {
      for (const allowed of inst.zones) {
        if (isSubdomain(zone, allowed) && (!best || allowed.length > best.depth))
          best = { name: inst.name, depth: allowed.length };
      }
    }
    if (best) return best.name;
    const instance = this.instance(fallback);
    const listIt = `list it in the zones of the provider that may write it (zones: [${zone}])`;
    if (instance.zones.length > 0) return { advice: `configure one with zones: [${zone}]` };
    if (instance.cnameToAnyZone === true) return fallback;
    if ((await this.zoneOf(challengeFqdn, domain, signal)) === zone) return fallback;
    return {
      advice: `no provider lists it in its zones, and a CNAME alone (it may be stale or spoofed) does not allow a write into an unlisted zone: ${listIt}, or set cnameToAnyZone: true on provider "${fallback}"`,
    };
  }

  private allows(instance: DnsProviderInstance, zone: string): boolean {
    return instance.zones.length === 0 || instance.zones.some((allowed) => isSubdomain(zone, allowed));
  }

  private async plan(challenges: readonly Dns01Challenge[], signal: AbortSignal): Promise<Group[]> {
    const targets = await this.resolveTargets(challenges, signal);
    const groups = new Map<string, Group>();
    for (const c of challenges) {
      const t = targets.get(targetKey(c))!;
      const instance = this.instance(t.provider);
      const key = `${t.provider}\u0000${t.zone}`;
      const group = groups.get(key) ?? { provider: t.provider, instance, zone: t.zone, records: [] };
      groups.set(key, group);
      if (group.records.some((r) => r.fqdn === t.fqdn && r.record.value === c.value)) continue;
      group.records.push({
        provider: t.provider,
        zone: t.zone,
        fqdn: t.fqdn,
        record: { name: toRelative(t.fqdn, t.zone), value: c.value, ttl: instance.ttl },
      });
    }
    return [...groups.values()];
  }

  private instance(name: string): DnsProviderInstance {
    const instance = this.dns.providers[name];
    if (!instance) {
      throw new CertpilotError(
        'DNS_NO_PROVIDER',
        `dns: no DNS provider instance named "${name}" is configured`,
        { details: { provider: name } },
      );
    }
    return instance;
  }

  private provider(name: string): DnsProvider {
    let p = this.providers.get(name);
    if (!p) {
      p = this.factory(this.instance(name));
      this.providers.set(name, p);
    }
    return p;
  }

  private createProvider(instance: DnsProviderInstance): DnsProvider {
    const def = findProvider(instance.type);
    if (!def) {
      throw new CertpilotError(
        'DNS_NO_PROVIDER',
        `dns: provider "${instance.name}" has unknown type "${instance.type}"`,
        {
          details: { provider: instance.name, type: instance.type },
        },
      );
    }
    return def.create(instance.options, {
      log: this.log.child({ provider: instance.name }),
      instance: instance.name,
      requestTimeoutMs: def.defaults.requestTimeoutMs ?? this.dns.queryTimeoutMs,
      // Configured resolvers answer for every name certpilot looks up, the provider's server too.
      resolveHost:
        this.dns.resolvers.length > 0 ? (host, signal) => this.resolver().addresses(host, signal) : undefined,
    });
  }

  private resolver(): DnsResolver {
    this.resolverInstance ??= new DnsResolver(this.dns, this.log);
    return this.resolverInstance;
  }
}

function targetKey(c: Omit<Dns01Challenge, 'value'>): string {
  return `${c.provider}\u0000${normalizeName(c.domain)}`;
}

function aggregate(
  code: 'DNS_UPDATE_FAILED',
  what: string,
  failed: readonly { group: { provider: string; zone: string }; reason: unknown }[],
): CertpilotError {
  if (failed.length === 1 && failed[0].reason instanceof CertpilotError) return failed[0].reason;
  const parts = failed.map((f) => `${f.group.provider}/${f.group.zone}: ${describeError(f.reason)}`);
  return new CertpilotError(code, `dns: ${what} failed for ${failed.length} group(s): ${parts.join('; ')}`, {
    cause: failed[0].reason,
    retryable: failed.every((f) => f.reason instanceof CertpilotError && f.reason.retryable),
    details: { failed: failed.map((f) => ({ ...f.group, error: describeError(f.reason) })) },
  });
}

/**
 * A CertpilotError with the same code, message and retryability whose details also list what
 * may have been written. A new object, because the original may be shared (an abort reason).
 */
function attachPresented(err: unknown, presented: readonly PresentedRecord[]): CertpilotError {
  const snapshot = [...presented];
  if (err instanceof CertpilotError) {
    return new CertpilotError(err.code, err.message, {
      cause: err,
      retryable: err.retryable,
      details: { ...err.details, presented: snapshot },
    });
  }
  return new CertpilotError('DNS_UPDATE_FAILED', `dns: ${describeError(err)}`, {
    cause: err,
    details: { presented: snapshot },
  });
}
