import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { accountDir } from '../acme/account';
import { ConfigError, type ConfigIssue } from '../core/errors';
import { childPath } from './issues';
import type { AgentConfig, CertificateSpec } from './types';

/**
 * Problems a loaded configuration still has that are not load errors:
 *
 * - certificate problems concern one certificate (a name with no DNS provider, a name outside
 *   its provider's zones). `renew` fails that certificate and renews the others; `config
 *   check` reports them (exit 2).
 * - account problems need the state directory: with no ACME account for the CA stored there,
 *   one must be registered, which the CA refuses unless its terms are agreed to. `config
 *   check` and the start of `renew` report it before anything is contacted or written.
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

/**
 * True when an ACME account for the configured CA is registered in the state directory (its
 * account.json holds the account URL). Reads only; a state directory that cannot be read
 * (another user's, 0700) counts as "cannot tell" and returns undefined.
 */
export async function hasStoredAccount(config: AgentConfig): Promise<boolean | undefined> {
  const file = path.join(accountDir(config.storage.stateDir, config.acme.directoryUrl), 'account.json');
  try {
    const meta = JSON.parse(await readFile(file, 'utf8')) as { url?: unknown };
    return typeof meta.url === 'string' && meta.url !== '';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || e instanceof SyntaxError) return false;
    return undefined;
  }
}

/** Problems that need the state directory: registering an account the CA would refuse. */
export async function accountIssues(config: AgentConfig): Promise<ConfigIssue[]> {
  if (config.acme.termsAgreed || config.certificates.length === 0) return [];
  if ((await hasStoredAccount(config)) !== false) return [];
  return [
    {
      path: 'acme.termsAgreed',
      message:
        `must be true: no ACME account for ${config.acme.directoryUrl} is stored in ` +
        `${config.storage.stateDir}, and the CA registers one only when its terms of service are agreed to`,
    },
  ];
}

/**
 * The start of `renew`: problems that would only show after an account was registered, a
 * journal written or an order placed. Throws a ConfigError (exit 2) before anything happens.
 */
export async function assertReadyToRenew(config: AgentConfig): Promise<void> {
  const issues = await accountIssues(config);
  if (issues.length > 0) throw new ConfigError(issues, config.source);
}
