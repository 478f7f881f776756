import type { ConfigIssue } from '../core/errors';
import { childPath } from './issues';
import type { AgentConfig, CertificateSpec } from './types';

/**
 * Certificate problems: a loaded configuration can still have problems that concern one
 * certificate (a name with no DNS provider, a name outside its provider's zones). They are
 * not load errors: `renew` fails that certificate and renews the others (exit 1); `config
 * check` reports them with their paths (exit 2). Problems that need the state directory (an
 * ACME account that cannot be registered) are src/cli/account-preflight.ts's.
 */

/** One certificate problem, with the path of the key to fix. */
export interface CertificateIssue extends ConfigIssue {
  /** certificates[].name */
  readonly certificate: string;
}

function inZone(domain: string, zone: string): boolean {
  const base = domain.startsWith('*.') ? domain.slice(2) : domain;
  return base === zone || base.endsWith(`.${zone}`);
}

/** The instance name that will write the challenge record for `domain`, if any. */
export function providerNameFor(spec: CertificateSpec, domain: string): string | undefined {
  return spec.domainProviders[domain] ?? spec.dnsProvider;
}

function issuesOf(config: AgentConfig, spec: CertificateSpec, base: string): CertificateIssue[] {
  const out: CertificateIssue[] = [];
  const add = (p: string, message: string): number => out.push({ certificate: spec.name, path: p, message });
  const uncovered = spec.domains.filter((d) => providerNameFor(spec, d) === undefined);
  if (uncovered.length > 0) {
    const none = Object.keys(config.dns.providers).length === 0;
    add(
      childPath(childPath(base, 'dns'), 'provider'),
      `no DNS provider for ${uncovered.join(', ')}: set dns.provider or dns.domains on this certificate` +
        (none ? ', and configure an instance under dns.providers' : ''),
    );
  }
  spec.domains.forEach((d, i) => {
    const name = providerNameFor(spec, d);
    const instance = name !== undefined ? config.dns.providers[name] : undefined;
    if (instance && instance.zones.length > 0 && !instance.zones.some((z) => inZone(d, z))) {
      add(
        childPath(childPath(base, 'domains'), i),
        `${JSON.stringify(d)} is outside the zones of provider instance ${JSON.stringify(instance.name)} (${instance.zones.join(', ')})`,
      );
    }
  });
  return out;
}

/** Every certificate problem, with paths (`certificates[2].dns.provider`), in file order. */
export function certificateIssues(config: AgentConfig): CertificateIssue[] {
  return config.certificates.flatMap((spec, i) => issuesOf(config, spec, childPath('certificates', i)));
}

/**
 * Certificate problems by certificate name (only certificates that have some): what `renew`
 * attaches to the certificate it then fails (exit 1) while renewing the others.
 */
export function certificateProblems(config: AgentConfig): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const issue of certificateIssues(config)) {
    const list = out.get(issue.certificate) ?? [];
    list.push(issue.message);
    out.set(issue.certificate, list);
  }
  return out;
}
