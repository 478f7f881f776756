import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';

/**
 * A DNS provider knows DNS, not ACME. It appends and deletes TXT records in a zone, nothing
 * more. Zone discovery, CNAME following, propagation checks, retries and the memory of which
 * records to clean up live once, in the DNS-01 solver (src/dns/solver.ts).
 *
 * Names are zone-relative inside certpilot (`_acme-challenge.www`, `@` for the apex) and
 * become FQDNs only at the provider's own wire boundary.
 */
export interface TxtRecord {
  /** Zone-relative name: `_acme-challenge.www`, or `@` for the zone apex. */
  readonly name: string;
  /** The TXT value, unquoted (the provider adds whatever quoting its API needs). */
  readonly value: string;
  /** Seconds. */
  readonly ttl: number;
}

/**
 * Key in a provider error's `details`: true when the provider knows that nothing of the call
 * was written (the server refused the whole change, or nothing was sent). The solver then does
 * not count those records as presented, so no cleanup is attempted for them and no journal
 * entry outlives the run. Absent means "may have been written".
 */
export const NOTHING_WRITTEN = 'nothingWritten';

/** True when `err` says that the failed call wrote nothing (see NOTHING_WRITTEN). */
export function isNothingWritten(err: unknown): boolean {
  return err instanceof CertpilotError && err.details[NOTHING_WRITTEN] === true;
}

export interface DnsProvider {
  /**
   * Adds `records` to `zone` (a lower-case FQDN without trailing dot, e.g. `example.test`).
   * - MUST keep every other value already present at the same name (append, never replace).
   * - MUST succeed when a value is already present (idempotent).
   * - MUST be safe for concurrent calls on the same name (apex and wildcard share
   *   `_acme-challenge.<name>`).
   * - MUST honour `signal`: stop waiting and reject when it aborts.
   * Returns the records it made sure exist.
   */
  appendRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]>;

  /**
   * Removes exactly `records` (matched by name and value) from `zone`.
   * - Deleting a value that is absent MUST succeed.
   * - MUST NOT touch any record it was not given (other values at the same name survive).
   * - MUST honour `signal`.
   */
  deleteRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]>;

  /** Optional: release connections/clients. */
  close?(): Promise<void>;
}

/** How one provider option is declared; config validation and docs come from this. */
export interface ProviderOptionSpec {
  readonly doc: string;
  readonly format: 'string' | 'string-list' | 'port' | 'nat' | 'boolean' | 'url' | 'enum' | 'host';
  /** For format 'enum'. */
  readonly values?: readonly string[];
  readonly required?: boolean;
  readonly default?: string | number | boolean;
  /** Environment variable that supplies the value when the config omits it. */
  readonly env?: string;
  /** Secret: masked in output; may also be given as `<option>_file` (path to a file). */
  readonly sensitive?: boolean;
}

export interface ProviderDefaults {
  readonly ttl: number;
  readonly propagationTimeoutMs: number;
  readonly propagationIntervalMs: number;
  /**
   * Deadline of one API call for HTTP-API providers (their SDK retries included). Absent: one
   * DNS query's timeout (`dns.queryTimeout`), right for providers that speak DNS.
   */
  readonly requestTimeoutMs?: number;
}

export interface ProviderContext {
  readonly log: Logger;
  /** Name of the configured instance (`dns.providers.<instance>`), for messages. */
  readonly instance: string;
  /** Timeout of one request to the provider's API or server. */
  readonly requestTimeoutMs: number;
  /**
   * Addresses of a host name the provider connects to, through the configured recursive
   * resolvers (`dns.resolvers`). Absent when none are configured: then the system's resolver
   * (getaddrinfo, /etc/hosts included) is the one the user asked for.
   */
  readonly resolveHost?: (host: string, signal: AbortSignal) => Promise<readonly string[]>;
}

/** Provider metadata is data: CLI help, config validation and README come from it. */
export interface ProviderDefinition {
  readonly code: string;
  readonly aliases?: readonly string[];
  readonly title: string;
  readonly description: string;
  readonly options: Readonly<Record<string, ProviderOptionSpec>>;
  readonly defaults: ProviderDefaults;
  /** A minimal YAML snippet for `dns.providers.<name>`. */
  readonly example: string;
  /** Extra validation across options; returns problems as [optionName, message]. */
  validate?(options: Readonly<Record<string, unknown>>): readonly [string, string][];
  create(options: Readonly<Record<string, unknown>>, ctx: ProviderContext): DnsProvider;
}
