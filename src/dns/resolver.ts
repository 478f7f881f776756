import dns from 'node:dns';
import { CertpilotError, describeError } from '../core/errors';
import { type Logger, silentLogger } from '../core/logger';
import type { DnsSettings } from '../config/types';
import { isSubdomain, normalizeName, parentName } from './names';
import {
  type DnsResponse,
  type DnsServer,
  type QueryType,
  DNS_PORT,
  formatServer,
  parseServer,
  query,
} from './wire';

/**
 * Zone finding and authoritative lookups. Recursive questions (which zone, which nameservers,
 * their addresses) go to the configured resolvers; propagation questions go to every
 * authoritative address with RD=0 and no cache, so the answer is what that server holds now.
 */

export interface NameserverInfo {
  /** NS target name, lower-case. */
  readonly name: string;
  /** IPv4 and IPv6 addresses; empty when the name has none. */
  readonly addresses: readonly string[];
}

export type ResolverSettings = Pick<DnsSettings, 'resolvers' | 'nameserverPort' | 'queryTimeoutMs'>;

/** Key in a DNS_QUERY_FAILED error's details: every resolver answered REFUSED. */
const REFUSED_EVERYWHERE = 'refusedEverywhere';

/**
 * The error to give when every resolver refused a question about `name` (the resolvers serve
 * no zone holding it and do not recurse for us): DNS_ZONE_NOT_FOUND naming the name and what
 * each resolver answered, rather than the failed query. Undefined for any other error.
 */
export function zoneNotFound(name: string, err: unknown): CertpilotError | undefined {
  if (!(err instanceof CertpilotError) || err.code !== 'DNS_QUERY_FAILED') return undefined;
  if (err.details[REFUSED_EVERYWHERE] !== true) return undefined;
  const n = normalizeName(name);
  const answers = (err.details.answers as readonly string[]).join('; ');
  return new CertpilotError(
    'DNS_ZONE_NOT_FOUND',
    `dns: no zone found for ${n}: no resolver serves it (${err.details.type} query for ${String(err.details.name)}: ${answers})`,
    { cause: err, details: { fqdn: n, resolvers: err.details.resolvers, answers: err.details.answers } },
  );
}

/** RCODEs that say something about the name; anything else means "ask another resolver". */
const DEFINITIVE = new Set(['NOERROR', 'NXDOMAIN']);

export class DnsResolver {
  private readonly servers: readonly DnsServer[];
  private readonly settings: ResolverSettings;
  private readonly log: Logger;

  constructor(settings: ResolverSettings, log: Logger = silentLogger) {
    this.settings = settings;
    this.log = log;
    // Empty list = whatever this host uses (resolv.conf via c-ares), read once at construction.
    const specs = settings.resolvers.length > 0 ? settings.resolvers : dns.getServers();
    this.servers = specs.map((s) => parseServer(s, DNS_PORT));
    if (this.servers.length === 0) {
      throw new CertpilotError(
        'CONFIG_INVALID',
        'dns: no recursive resolvers configured and none found on this system',
      );
    }
  }

  /** The recursive resolvers in use, as "host:port". */
  get resolvers(): readonly string[] {
    return this.servers.map(formatServer);
  }

  /**
   * Asks the recursive resolvers in order; the first definitive answer (NOERROR or NXDOMAIN)
   * wins. Timeouts, SERVFAIL and REFUSED move on to the next resolver; when all fail, throws
   * DNS_QUERY_FAILED naming each resolver's failure.
   */
  async recursive(name: string, type: QueryType, signal: AbortSignal): Promise<DnsResponse> {
    const failures: string[] = [];
    let retryable = false;
    let lastCause: unknown;
    let refusals = 0;
    for (const server of this.servers) {
      try {
        const r = await query({
          server,
          name,
          type,
          recursionDesired: true,
          signal,
          timeoutMs: this.settings.queryTimeoutMs,
        });
        if (DEFINITIVE.has(r.rcode)) return r;
        failures.push(`${formatServer(server)} answered ${r.rcode}`);
        retryable ||= r.rcode === 'SERVFAIL';
        if (r.rcode === 'REFUSED') refusals++;
      } catch (err) {
        if (signal.aborted) throw err;
        failures.push(`${formatServer(server)}: ${describeError(err)}`);
        retryable ||= err instanceof CertpilotError ? err.retryable : true;
        lastCause = err;
      }
    }
    throw new CertpilotError(
      'DNS_QUERY_FAILED',
      `dns: ${type} query for ${normalizeName(name) || '.'} failed on every resolver: ${failures.join('; ')}`,
      {
        cause: lastCause,
        retryable,
        details: {
          name: normalizeName(name),
          type,
          resolvers: this.resolvers,
          answers: failures,
          // Every resolver answered, and each refused: none of them serves (or recurses for) the name.
          [REFUSED_EVERYWHERE]: refusals === this.servers.length,
        },
      },
    );
  }

  /**
   * The zone (apex) that holds `fqdn`: walks up the labels asking SOA. A NOERROR/NODATA or
   * NXDOMAIN answer carries the SOA of the enclosing zone in its authority section (RFC 2308
   * section 3), so one query usually settles it; an SOA in the answer section means the name
   * is itself an apex.
   */
  async findZone(fqdn: string, signal: AbortSignal): Promise<string> {
    const target = normalizeName(fqdn);
    let name = target;
    for (;;) {
      let r: DnsResponse;
      try {
        r = await this.recursive(name, 'SOA', signal);
      } catch (err) {
        throw zoneNotFound(target, err) ?? err;
      }
      const apex = r.answers.find((a) => a.type === 'SOA' && a.name === name);
      if (apex) return this.found(target, name);
      const authority = r.authorities.find((a) => a.type === 'SOA' && isSubdomain(target, a.name));
      // A CNAME at `name` (answer section, no SOA of its own) is not an apex; its target's
      // SOA says nothing about where `name` lives, so keep walking up.
      if (authority && !r.answers.some((a) => a.type === 'CNAME' && a.name === name))
        return this.found(target, authority.name);
      if (name === '') break;
      name = parentName(name);
    }
    throw new CertpilotError(
      'DNS_ZONE_NOT_FOUND',
      `dns: no zone found for ${target} (asked ${this.resolvers.join(', ')})`,
      {
        details: { fqdn: target },
      },
    );
  }

  private found(fqdn: string, zone: string): string {
    // The root zone answers for names under TLDs that do not exist; nobody can write there.
    if (zone === '') {
      throw new CertpilotError(
        'DNS_ZONE_NOT_FOUND',
        `dns: no zone found for ${fqdn}: the name's top-level domain does not exist`,
        {
          details: { fqdn },
        },
      );
    }
    this.log.debug('zone found', { fqdn, zone });
    return zone;
  }

  /** The zone's NS set with every A and AAAA address of each nameserver. */
  async nameservers(zone: string, signal: AbortSignal): Promise<NameserverInfo[]> {
    const z = normalizeName(zone);
    const r = await this.recursive(z, 'NS', signal);
    const names = [
      ...new Set(r.answers.filter((a) => a.type === 'NS' && a.name === z).map((a) => a.data)),
    ].sort();
    if (names.length === 0) {
      throw new CertpilotError('DNS_QUERY_FAILED', `dns: zone ${z} has no NS records (${r.rcode})`, {
        retryable: true,
        details: { zone: z },
      });
    }
    return Promise.all(names.map(async (name) => ({ name, addresses: await this.addresses(name, signal) })));
  }

  /** A and AAAA addresses of `host` from the recursive resolvers (CNAMEs followed by them). */
  async addresses(host: string, signal: AbortSignal): Promise<string[]> {
    const [v4, v6] = await Promise.all([
      this.recursive(host, 'A', signal),
      this.recursive(host, 'AAAA', signal),
    ]);
    const pick = (r: DnsResponse, type: 'A' | 'AAAA'): string[] =>
      r.answers.filter((a) => a.type === type).map((a) => a.data);
    return [...new Set([...pick(v4, 'A'), ...pick(v6, 'AAAA')])];
  }

  /**
   * One uncached RD=0 query straight to an authoritative server. `port` defaults to
   * settings.nameserverPort (53 in production, BIND's high port in tests).
   */
  queryAuthoritative(
    address: string,
    port: number | undefined,
    fqdn: string,
    type: QueryType,
    signal: AbortSignal,
  ): Promise<DnsResponse> {
    return query({
      server: { host: address, port: port ?? this.settings.nameserverPort },
      name: fqdn,
      type,
      recursionDesired: false,
      signal,
      timeoutMs: this.settings.queryTimeoutMs,
    });
  }

  get nameserverPort(): number {
    return this.settings.nameserverPort;
  }
}
