import { normalizeName, parentName } from '../dns/names';
import { zoneNotFound, type DnsResolver } from '../dns/resolver';
import type { DnsRecord } from '../dns/wire';

/**
 * CAA (RFC 8659): may this CA issue for a name? The relevant record set is found by climbing
 * the tree (section 3): the name's own CAA set, else its parent's, up to the root; the first
 * non-empty set decides. Questions go to the configured recursive resolvers, which follow a
 * CNAME at any level the way a CA's resolver does.
 */

export interface CaaProperty {
  readonly flags: number;
  readonly tag: string;
  readonly value: string;
}

export interface CaaVerdict {
  readonly allowed: boolean;
  /** Where the relevant set was found; undefined when no name up to the root has CAA records. */
  readonly foundAt?: string;
  readonly properties: readonly CaaProperty[];
  /** Why not allowed (or why it cannot be told), for the finding. */
  readonly reason?: string;
  /** True when the CA publishes no identities, so a non-empty set could not be matched. */
  readonly undecided?: boolean;
}

/** Property tags this implementation understands (RFC 8659 section 4.2, RFC 8657 adds none). */
const KNOWN_TAGS = new Set(['issue', 'issuewild', 'iodef', 'contactemail', 'contactphone', 'issuemail']);
/** The Issuer Critical flag (RFC 8659 section 4.1). */
const CRITICAL = 128;

/** The relevant CAA property set of `name` (a `*.` prefix is ignored: the base name is climbed). */
export async function findRelevantCaa(
  name: string,
  resolver: Pick<DnsResolver, 'recursive'>,
  signal: AbortSignal,
): Promise<{ foundAt?: string; properties: CaaProperty[] }> {
  for (let n = normalizeName(name.replace(/^\*\./, '')); n !== ''; n = parentName(n)) {
    let r;
    try {
      r = await resolver.recursive(n, 'CAA', signal);
    } catch (err) {
      // Every resolver refused: they serve no zone this high (authoritative-only resolvers, as
      // `dns.resolvers` may be), so there is nothing above to find. Any other failure is reported.
      if (zoneNotFound(n, err)) break;
      throw err;
    }
    const properties = r.answers.flatMap((a: DnsRecord) => (a.type === 'CAA' && a.caa ? [a.caa] : []));
    if (properties.length > 0) return { foundAt: n, properties };
  }
  return { properties: [] };
}

/** The issuer domain of an issue/issuewild value ("letsencrypt.org; accounturi=..."): '' = nobody. */
function issuerOf(value: string): string {
  return normalizeName((value.split(';')[0] ?? '').trim());
}

/**
 * Whether a CA known by `identities` (its directory's caaIdentities) may issue for `name` under
 * `properties` (RFC 8659 section 4.2-4.3). Parameters after ';' (accounturi,
 * validationmethods) are not judged: a record that names the CA counts as naming it.
 */
export function judgeCaa(
  name: string,
  found: { foundAt?: string; properties: readonly CaaProperty[] },
  identities: readonly string[] | undefined,
): CaaVerdict {
  const { foundAt, properties } = found;
  const base = { properties, ...(foundAt ? { foundAt } : {}) };
  if (properties.length === 0) return { ...base, allowed: true };
  const unknownCritical = properties.find((p) => (p.flags & CRITICAL) !== 0 && !KNOWN_TAGS.has(p.tag));
  if (unknownCritical) {
    return {
      ...base,
      allowed: false,
      reason: `CAA at ${foundAt} has a critical property "${unknownCritical.tag}" no CA can honour`,
    };
  }
  const wildcard = name.startsWith('*.');
  const wild = properties.filter((p) => p.tag === 'issuewild');
  // issuewild governs wildcards when present; otherwise issue governs both (section 4.3).
  const governing = wildcard && wild.length > 0 ? wild : properties.filter((p) => p.tag === 'issue');
  const tag = wildcard && wild.length > 0 ? 'issuewild' : 'issue';
  if (governing.length === 0) return { ...base, allowed: true };
  const named = governing.map((p) => issuerOf(p.value));
  const listed = named.filter((n) => n !== '');
  const shown = listed.length > 0 ? listed.join(', ') : 'no CA (";")';
  if (!identities || identities.length === 0) {
    return {
      ...base,
      allowed: true,
      undecided: true,
      reason: `CAA at ${foundAt} allows ${tag} by ${shown}, and the CA's directory publishes no caaIdentities to compare`,
    };
  }
  const ids = identities.map(normalizeName);
  if (listed.some((n) => ids.includes(n))) return { ...base, allowed: true };
  return {
    ...base,
    allowed: false,
    reason: `CAA at ${foundAt} allows ${tag} only by ${shown}, not this CA (${ids.join(', ')})`,
  };
}
