import type { AgentConfig, CertificateSpec } from './types';

/**
 * Problems of one certificate that are not load errors (a name with no DNS provider, a name
 * outside its provider's zones): `renew` fails that certificate and renews the others.
 *
 * A stand-in with the interface the configuration side exports (certificateProblems); the
 * merge keeps theirs.
 */

function inZone(domain: string, zone: string): boolean {
  const base = domain.startsWith('*.') ? domain.slice(2) : domain;
  return base === zone || base.endsWith(`.${zone}`);
}

function problemsOf(config: AgentConfig, spec: CertificateSpec): string[] {
  const out: string[] = [];
  const providerOf = (d: string): string | undefined => spec.domainProviders[d] ?? spec.dnsProvider;
  const uncovered = spec.domains.filter((d) => providerOf(d) === undefined);
  if (uncovered.length > 0)
    out.push(
      `no DNS provider for ${uncovered.join(', ')}: set dns.provider or dns.domains on this certificate`,
    );
  for (const d of spec.domains) {
    const name = providerOf(d);
    const instance = name !== undefined ? config.dns.providers[name] : undefined;
    if (instance && instance.zones.length > 0 && !instance.zones.some((z) => inZone(d, z))) {
      out.push(
        `${JSON.stringify(d)} is outside the zones of provider instance ${JSON.stringify(instance.name)} (${instance.zones.join(', ')})`,
      );
    }
  }
  return out;
}

/** Certificate problems by certificate name (only certificates that have some). */
export function certificateProblems(config: AgentConfig): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const spec of config.certificates) {
    const problems = problemsOf(config, spec);
    if (problems.length > 0) out.set(spec.name, problems);
  }
  return out;
}
