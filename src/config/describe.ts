import { isSecretName, maskUrl, REDACTED, redactStrings } from '../core/redact';
import { findProvider } from '../dns/registry';
import type { AgentConfig, DnsProviderInstance, FileOutput } from './types';
import { checkSettingsOf } from './access';

/** What replaces every secret in printed configuration (the one redaction policy's marker). */
export { REDACTED };

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function describeProvider(p: DnsProviderInstance): unknown {
  const def = findProvider(p.type);
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(p.options)) {
    // Without a definition we cannot tell which options are secret: hide them all.
    const sensitive = def ? def.options[key]?.sensitive === true : true;
    options[key] = sensitive && value !== undefined ? REDACTED : value;
  }
  return {
    type: p.type,
    zones: [...p.zones],
    ttl: p.ttl,
    propagationTimeoutMs: p.propagationTimeoutMs,
    propagationIntervalMs: p.propagationIntervalMs,
    options,
  };
}

function describeOutput(o: FileOutput): unknown {
  return { ...o, certMode: octal(o.certMode), keyMode: octal(o.keyMode) };
}

/**
 * A JSON-able view of the normalised configuration for `certpilot config check`: defaults
 * filled in, presets expanded, modes in octal, and every secret (EAB HMAC key, provider
 * options the registry marks sensitive) replaced by "[redacted]". Built field by field rather
 * than by copying the object, so a secret added to the types later is not printed by accident.
 */
export function describeConfig(config: AgentConfig): unknown {
  const { acme } = config;
  // Belt and braces: a registered secret pasted into a field that is not marked secret.
  return redactStrings({
    source: config.source,
    acme: {
      directoryUrl: acme.directoryUrl,
      email: acme.email ?? null,
      termsAgreed: acme.termsAgreed,
      eab: acme.eab ? { keyId: acme.eab.keyId, hmacKey: REDACTED } : null,
      caBundle: acme.caBundle ?? null,
      preferredChain: acme.preferredChain ?? null,
      requestTimeoutMs: acme.requestTimeoutMs,
    },
    storage: { stateDir: config.storage.stateDir, archiveDepth: config.storage.archiveDepth },
    renewal: {
      renewRatio: config.renewal.renewRatio,
      shortLifetimeRatio: config.renewal.shortLifetimeRatio,
      shortLifetimeDays: config.renewal.shortLifetimeDays,
    },
    defaultKeyType: config.defaultKeyType,
    concurrency: config.concurrency,
    dns: {
      resolvers: [...config.dns.resolvers],
      nameserverPort: config.dns.nameserverPort,
      queryTimeoutMs: config.dns.queryTimeoutMs,
      providers: Object.fromEntries(
        Object.entries(config.dns.providers).map(([k, p]) => [k, describeProvider(p)]),
      ),
    },
    certificates: config.certificates.map((c) => ({
      name: c.name,
      domains: [...c.domains],
      keyType: c.keyType,
      reuseKey: c.reuseKey,
      dnsProvider: c.dnsProvider ?? null,
      domainProviders: { ...c.domainProviders },
      outputs: c.outputs.map(describeOutput),
      endpoints: maskSecretRefs(c.endpoints ?? []),
      hooks: maskSecretRefs(c.hooks ?? null),
      deploy: maskSecretRefs(c.deploy ?? []),
      rollback: c.rollback ?? null,
      check: c.thresholds ?? null,
    })),
    hooks: maskSecretRefs(config.hooks ?? null),
    notify: maskSecretRefs(config.notify ?? null),
    verify: maskSecretRefs(config.verify ?? null),
    // Monitoring settings hold no secrets (paths, host names, numbers).
    check: checkSettingsOf(config),
    watch: config.watch ?? { files: [], endpoints: [] },
  });
}

/** Headers and hook environment variables whose names say they carry credentials (`Authorization`, `X-Api-Key`, `API_TOKEN`). */
function maskNamed(map: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, isSecretName(k) ? REDACTED : v]));
}

/**
 * Deploy and alert settings hold secrets as SecretRef ({value} or {file}): the value is
 * replaced, a file path is shown. Credentials can also hide in webhook URLs, webhook headers
 * and hook environment variables; those are masked too. Everything else is copied as plain data.
 */
function maskSecretRefs(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => maskSecretRefs(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const isRef =
      typeof v === 'object' && v !== null && ('value' in v || 'file' in v) && Object.keys(v).length === 1;
    if (isRef && 'value' in v) out[k] = REDACTED;
    else if (k === 'url' && typeof v === 'string') out[k] = maskUrl(v);
    else if ((k === 'headers' || k === 'env') && typeof v === 'object' && v !== null && !Array.isArray(v))
      out[k] = maskNamed(v as Record<string, unknown>);
    else out[k] = maskSecretRefs(v, depth + 1);
  }
  return out;
}
