import type { LookupOptions } from 'node:dns';
import type net from 'node:net';
import { CertpilotError } from '../core/errors';
import { normalizeName } from './names';
import type { DnsResolver, ResolverSettings } from './resolver';
import type { QueryType } from './wire';

/**
 * Host names certpilot connects to (the CA, webhooks, Slack, the heartbeat, DNS provider APIs,
 * SMTP, endpoints to verify) resolved through `dns.resolvers` instead of getaddrinfo: with
 * resolvers configured, no question may leave for the host's own resolver (issue #12). The
 * result is a `lookup` with the signature net.connect, tls.connect and http(s).request accept.
 */

/** What net, tls and http(s) call: `all` gives an array, otherwise one address and its family. */
export type HostLookup = net.LookupFunction;

/** Answers are kept for their TTL, at most this long: a renew run lasts minutes, the daemon days. */
const MAX_CACHE_MS = 300_000;

type AddressResolver = Pick<DnsResolver, 'recursive'>;

interface Cached {
  readonly addresses: readonly string[];
  readonly until: number;
}

/** A/AAAA answers at `host` (after the CNAMEs the resolver followed), cached by their TTL. */
function createAddressCache(resolver: AddressResolver, now: () => number) {
  const cache = new Map<string, Cached>();
  return async (host: string, type: 'A' | 'AAAA'): Promise<readonly string[]> => {
    const key = `${type} ${host}`;
    const hit = cache.get(key);
    if (hit && hit.until > now()) return hit.addresses;
    // The lookup has no signal of its own: each query is bounded by dns.queryTimeout.
    const r = await resolver.recursive(host, type as QueryType, new AbortController().signal);
    const records = r.answers.filter((a) => a.type === type);
    const addresses = records.map((a) => a.data);
    if (records.length > 0) {
      const ttlMs = Math.min(...records.map((a) => a.ttl * 1000), MAX_CACHE_MS);
      cache.set(key, { addresses, until: now() + ttlMs });
    }
    return addresses;
  };
}

/**
 * node:net, loaded when a lookup first runs: importing this module (config validation does)
 * must not cost a run that connects nowhere the 5 ms of loading it.
 */
function netModule(): typeof net {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:net') as typeof net;
}

function familyOf(address: string): 4 | 6 {
  return netModule().isIPv6(address) ? 6 : 4;
}

/** `localhost` is the machine itself (RFC 6761 section 6.3): never a question to anyone. */
function localAddresses(family: number | undefined): string[] {
  if (family === 4) return ['127.0.0.1'];
  if (family === 6) return ['::1'];
  return ['127.0.0.1', '::1'];
}

function requestedFamily(options: LookupOptions | number | undefined): number | undefined {
  const family = typeof options === 'number' ? options : options?.family;
  if (family === 'IPv4') return 4;
  if (family === 'IPv6') return 6;
  return family === 4 || family === 6 ? family : undefined;
}

/**
 * A lookup over `resolver` (normally the configured recursive resolvers). IP literals come
 * back as they are; `localhost` (and names under it) as loopback without a query; anything else
 * is asked A and/or AAAA, honouring `options.family` and `options.all`. IPv4 addresses come
 * first, like getaddrinfo's usual order.
 */
export function createHostLookup(resolver: AddressResolver, now: () => number = Date.now): HostLookup {
  const addressesOf = createAddressCache(resolver, now);
  const resolve = async (hostname: string, family: number | undefined): Promise<string[]> => {
    if (netModule().isIP(hostname) !== 0) return [hostname];
    const host = normalizeName(hostname);
    if (host === 'localhost' || host.endsWith('.localhost')) return localAddresses(family);
    const [v4, v6] = await Promise.all([
      family === 6 ? [] : addressesOf(host, 'A'),
      family === 4 ? [] : addressesOf(host, 'AAAA'),
    ]);
    const all = [...v4, ...v6];
    if (all.length === 0) {
      throw new CertpilotError(
        'DNS_QUERY_FAILED',
        `dns: ${host} has no ${family === 4 ? 'A' : family === 6 ? 'AAAA' : 'A or AAAA'} record at the configured resolvers`,
        { retryable: true, details: { name: host } },
      );
    }
    return all;
  };
  return (hostname, options, callback) => {
    const family = requestedFamily(options);
    resolve(hostname, family).then(
      (addresses) => {
        if (options?.all)
          callback(
            null,
            addresses.map((address) => ({ address, family: familyOf(address) })),
          );
        else callback(null, addresses[0]!, familyOf(addresses[0]!));
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, options?.all ? [] : '', undefined),
    );
  };
}

const lookups = new Map<string, HostLookup>();

/**
 * The lookup every outgoing connection uses for these DNS settings: undefined when
 * `dns.resolvers` is empty (then the system resolver is the documented behaviour). One per
 * settings, so the cache is shared by the ACME client, alerts, probes and providers.
 */
export function hostLookupFor(settings: ResolverSettings): HostLookup | undefined {
  if (settings.resolvers.length === 0) return undefined;
  const key = JSON.stringify([settings.resolvers, settings.queryTimeoutMs]);
  let lookup = lookups.get(key);
  if (!lookup) {
    // The resolver and its wire format load only when dns.resolvers is set: every command
    // imports this module, few configurations use it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DnsResolver: Resolver } = require('./resolver') as typeof import('./resolver');
    lookup = createHostLookup(new Resolver(settings));
    lookups.set(key, lookup);
  }
  return lookup;
}

let configured: HostLookup | undefined;
let configuredSettings: ResolverSettings | undefined;

/**
 * Makes `settings` the resolution every outgoing connection of this process uses (called by
 * loadConfig, so the CLI, the daemon's reload and library users all pass through it once per
 * configuration). A process-wide setting rather than a field threaded through every context:
 * the CA client, alerts, deployers, probes, providers and the heartbeat sit in different layers
 * and all take their configuration from the one loaded file.
 */
export function useResolversForConnections(settings: ResolverSettings): void {
  configured = hostLookupFor(settings);
  configuredSettings = configured
    ? {
        resolvers: [...settings.resolvers],
        nameserverPort: settings.nameserverPort,
        queryTimeoutMs: settings.queryTimeoutMs,
      }
    : undefined;
}

/**
 * The resolver settings behind configuredHostLookup, and only those (never the rest of the
 * `dns:` section): what a worker thread needs to resolve exactly as this thread does.
 */
export function configuredResolverSettings(): ResolverSettings | undefined {
  return configuredSettings;
}

/** The lookup set by useResolversForConnections; undefined = the system resolver. */
export function configuredHostLookup(): HostLookup | undefined {
  return configured;
}

/** The first address `lookup` gives for `host`, for clients that cannot be handed a lookup. */
export function resolveWith(lookup: HostLookup, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    lookup(host, {}, (err, address) => (err ? reject(err) : resolve(address as string)));
  });
}
