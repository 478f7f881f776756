import { createHash } from 'node:crypto';
import { certDeployOf } from '../config/access';
import type { AgentConfig, CertificateSpec } from '../config/types';

/**
 * What a certificate's renewal depends on, as one SHA-256: its names, key and profile, the DNS
 * provider instance of each name with its options, the CA and the account settings, and its
 * deploy steps. Stored with a failure; when the operator fixes the configuration (a missing
 * `termsAgreed`, a wrong TSIG secret) the value changes and the backoff of the old failure no
 * longer holds the certificate back.
 *
 * Secrets (provider options, the EAB key) enter only through the hash and are never stored.
 * The value is a digest of the whole document, so it cannot be reversed to one option.
 */
export function settingsFingerprint(config: AgentConfig, spec: CertificateSpec): string {
  const providers = Object.fromEntries(
    spec.domains.map((d) => {
      const name = spec.domainProviders[d] ?? spec.dnsProvider;
      const instance = name !== undefined ? config.dns.providers[name] : undefined;
      return [d, { name: name ?? null, instance: instance ? new Canonical(sharedJson(instance)) : null }];
    }),
  );
  const doc = {
    names: [...spec.domains].map((d) => d.toLowerCase()).sort(),
    keyType: spec.keyType,
    profile: spec.profile ?? null,
    // Only when preferred (undefined is left out of the hash): switching a failing required
    // profile to preferred retries at once, and configurations without it hash as before.
    profileMode: spec.profileMode === 'preferred' ? 'preferred' : undefined,
    providers,
    acme: new Canonical(sharedJson(config.acme, acmeForHash)),
    deploy: certDeployOf(spec),
  };
  return createHash('sha256').update(canonicalJson(doc)).digest('hex');
}

/** Already canonical JSON, inserted as it is. */
class Canonical {
  constructor(readonly json: string) {}
}

function acmeForHash(acme: AgentConfig['acme']): unknown {
  const { requestTimeoutMs: _timeout, ...rest } = acme;
  return rest;
}

/**
 * The canonical JSON of a settings object every certificate shares (the CA settings, a DNS
 * provider instance), made once per loaded configuration rather than once per certificate: a
 * configuration is never changed in place (a reload builds new objects).
 */
const shared = new WeakMap<object, string>();
function sharedJson<T extends object>(value: T, select: (v: T) => unknown = (v) => v): string {
  let json = shared.get(value);
  if (json === undefined) shared.set(value, (json = canonicalJson(select(value))));
  return json;
}

/** JSON with object keys sorted at every level, so equal settings always hash the same. */
function canonicalJson(value: unknown): string {
  if (value instanceof Canonical) return value.json;
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
