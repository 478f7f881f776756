/**
 * Domain-name helpers. Inside certpilot record names are zone-relative (`_acme-challenge.www`,
 * `@` for the apex, as libdns does it); they become FQDNs at exactly one boundary, the wire.
 * All FQDNs are lower-case without a trailing dot (`www.example.test`); DNS compares names
 * case-insensitively (RFC 4343), so normalising once makes `===` the right comparison.
 */

/** The label ACME puts in front of the validated name (RFC 8555 section 8.4). */
export const ACME_CHALLENGE_LABEL = '_acme-challenge';

/** Lower-cases and strips surrounding whitespace and one trailing dot; the root becomes ''. */
export function normalizeName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** True when `name` is `ancestor` itself or any name below it; every name is below the root (''). */
export function isSubdomain(name: string, ancestor: string): boolean {
  const n = normalizeName(name);
  const a = normalizeName(ancestor);
  if (a === '') return true;
  return n === a || n.endsWith('.' + a);
}

/**
 * The name of `fqdn` relative to `zone`: `_acme-challenge.www` for
 * `_acme-challenge.www.example.test` in `example.test`, `@` for the apex.
 * Throws when `fqdn` is not in `zone`, because writing it anyway would create a record in
 * the wrong place.
 */
export function toRelative(fqdn: string, zone: string): string {
  const n = normalizeName(fqdn);
  const z = normalizeName(zone);
  if (n === z) return '@';
  if (z === '') return n;
  if (!n.endsWith('.' + z)) throw new RangeError(`dns: ${n || '.'} is not in zone ${z || '.'}`);
  return n.slice(0, -(z.length + 1));
}

/**
 * The FQDN of a zone-relative `name`. `@` (or '') is the apex. A name ending in a dot is
 * already absolute (zone-file convention) and is only normalised; it must still lie in `zone`.
 */
export function toFqdn(name: string, zone: string): string {
  const z = normalizeName(zone);
  const trimmed = name.trim();
  if (trimmed === '@' || trimmed === '') return z;
  if (trimmed.endsWith('.')) {
    const abs = normalizeName(trimmed);
    if (!isSubdomain(abs, z)) throw new RangeError(`dns: ${abs} is not in zone ${z || '.'}`);
    return abs;
  }
  const rel = normalizeName(trimmed);
  return z === '' ? rel : `${rel}.${z}`;
}

/** `_acme-challenge.<domain>`; a wildcard shares the name of its base domain (RFC 8555 section 8.4). */
export function challengeName(domain: string): string {
  const d = normalizeName(domain).replace(/^\*\./, '');
  return `${ACME_CHALLENGE_LABEL}.${d}`;
}

/** The name one label up: `www.example.test` -> `example.test`, a TLD -> '' (the root). */
export function parentName(name: string): string {
  const n = normalizeName(name);
  const dot = n.indexOf('.');
  return dot < 0 ? '' : n.slice(dot + 1);
}
