import { DEPLOY_CERTIFICATE_KEYS } from '../deploy/config';
import path from 'node:path';
import {
  DEFAULT_CERT_MODE,
  DEFAULT_KEY_MODE,
  MAX_DOMAINS_PER_CERTIFICATE,
  normaliseName,
  parseAbsolutePath,
  parseBoolean,
  parseCertificateDomain,
  parseKeyType,
  parseMode,
  parseOwner,
} from './formats';
import { CERTIFICATE_NAME_RULE, isCertificateName } from '../core/names';
import { childPath, describeType, isPlainObject, type IssueList, unknownKeys } from './issues';
import type { CertificateSpec, DnsProviderInstance, FileOutput, KeyType, ThresholdSettings } from './types';
import { DEFAULT_CHECK, parseCertificateCheck } from './watch';

/**
 * Validation of `certificates`: convict checks only that it is a list, so every element is
 * checked here, with paths like `certificates[2].dns.provider`.
 */

// endpoints, hooks, deploy and rollback are parsed by src/deploy/config.ts.
const CERTIFICATE_KEYS = [
  'name',
  'domains',
  'keyType',
  'reuseKey',
  'profile',
  'dns',
  'outputs',
  // thresholds of `certpilot check` for this certificate (src/config/watch.ts)
  'check',
  ...DEPLOY_CERTIFICATE_KEYS,
];
const CERT_DNS_KEYS = ['provider', 'domains'];
const OUTPUT_FILE_KEYS = ['cert', 'chain', 'fullchain', 'key'] as const;
const OUTPUT_KEYS = [...OUTPUT_FILE_KEYS, 'owner', 'group', 'mode', 'keyMode'];
/** Reuse of a key across renewals is opt-in: a fresh key limits the damage of an unnoticed leak. */
const DEFAULT_REUSE_KEY = false;

export interface CertificateContext {
  readonly defaultKeyType: KeyType;
  /** Every configured provider instance name (including broken ones). */
  readonly providerNames: readonly string[];
  /** Instances that validated; used for the zone check. */
  readonly providers: Readonly<Record<string, DnsProviderInstance>>;
  /** Global check thresholds, to validate a certificate's overrides against (default: built in). */
  readonly thresholds?: ThresholdSettings;
}

const isSet = (v: unknown): boolean => v !== undefined && v !== null;

function unknownInstance(name: string, ctx: CertificateContext): string {
  const known = ctx.providerNames.length
    ? ctx.providerNames.join(', ')
    : 'none configured under dns.providers';
  return `unknown provider instance ${JSON.stringify(name)} (configured: ${known})`;
}

function inZone(domain: string, zone: string): boolean {
  const base = domain.startsWith('*.') ? domain.slice(2) : domain;
  return base === zone || base.endsWith(`.${zone}`);
}

function validateName(raw: unknown, base: string, issues: IssueList): string | undefined {
  const p = childPath(base, 'name');
  if (!isSet(raw)) {
    issues.add(p, 'required: a short file-name safe name such as "www-example-com"');
    return undefined;
  }
  if (typeof raw !== 'string') {
    issues.add(p, `must be a string, not ${describeType(raw)}`);
    return undefined;
  }
  if (raw.includes('..') || raw.includes('/') || raw.includes('\\')) {
    issues.add(
      p,
      `${JSON.stringify(raw)} must not contain "/", "\\" or ".." (it names a directory under stateDir)`,
    );
    return undefined;
  }
  if (!isCertificateName(raw)) {
    issues.add(p, `${JSON.stringify(raw)} must be file-name safe: ${CERTIFICATE_NAME_RULE}`);
    return undefined;
  }
  return raw;
}

function validateDomains(raw: unknown, base: string, issues: IssueList): string[] {
  const p = childPath(base, 'domains');
  if (!isSet(raw)) {
    issues.add(p, 'required: a list of at least one DNS name');
    return [];
  }
  if (!Array.isArray(raw)) {
    issues.add(p, `must be a list of DNS names, not ${describeType(raw)}`);
    return [];
  }
  if (raw.length === 0) {
    issues.add(p, 'must list at least one DNS name');
    return [];
  }
  const out: string[] = [];
  raw.forEach((d, i) => {
    try {
      const name = parseCertificateDomain(d);
      if (!out.includes(name)) out.push(name);
    } catch (e) {
      issues.add(childPath(p, i), (e as Error).message);
    }
  });
  if (out.length > MAX_DOMAINS_PER_CERTIFICATE) {
    issues.add(
      p,
      `lists ${out.length} names; CAs accept at most ${MAX_DOMAINS_PER_CERTIFICATE} per certificate`,
    );
  }
  return out;
}

function validateOutput(raw: unknown, base: string, issues: IssueList): FileOutput | undefined {
  if (!isPlainObject(raw)) {
    issues.add(
      base,
      `must be a mapping of cert, chain, fullchain, key, owner, group, mode, keyMode; not ${describeType(raw)}`,
    );
    return undefined;
  }
  unknownKeys(raw, OUTPUT_KEYS, base, issues);
  const files: Partial<Record<(typeof OUTPUT_FILE_KEYS)[number], string>> = {};
  for (const key of OUTPUT_FILE_KEYS) {
    if (!isSet(raw[key])) continue;
    try {
      files[key] = parseAbsolutePath(raw[key]);
    } catch (e) {
      issues.add(childPath(base, key), (e as Error).message);
    }
  }
  if (!OUTPUT_FILE_KEYS.some((k) => isSet(raw[k]))) {
    issues.add(base, `writes nothing: set at least one of ${OUTPUT_FILE_KEYS.join(', ')}`);
  }
  const optional = <T>(key: string, parse: (v: unknown) => T): T | undefined => {
    if (!isSet(raw[key])) return undefined;
    try {
      return parse(raw[key]);
    } catch (e) {
      issues.add(childPath(base, key), (e as Error).message);
      return undefined;
    }
  };
  const owner = optional('owner', parseOwner);
  const group = optional('group', parseOwner);
  const certMode = optional('mode', parseMode) ?? DEFAULT_CERT_MODE;
  const keyMode = optional('keyMode', parseMode) ?? DEFAULT_KEY_MODE;
  return {
    ...files,
    ...(owner !== undefined ? { owner } : {}),
    ...(group !== undefined ? { group } : {}),
    certMode,
    keyMode,
  };
}

function validateOutputs(raw: unknown, base: string, issues: IssueList): FileOutput[] {
  const p = childPath(base, 'outputs');
  if (!isSet(raw)) return [];
  if (!Array.isArray(raw)) {
    issues.add(p, `must be a list of outputs, not ${describeType(raw)}`);
    return [];
  }
  const out: FileOutput[] = [];
  raw.forEach((o, i) => {
    const output = validateOutput(o, childPath(p, i), issues);
    if (output) out.push(output);
  });
  return out;
}

interface CertDns {
  provider?: string;
  domains: Record<string, string>;
}

function validateCertDns(
  raw: unknown,
  domains: readonly string[],
  base: string,
  ctx: CertificateContext,
  issues: IssueList,
): CertDns {
  const p = childPath(base, 'dns');
  const result: CertDns = { domains: {} };
  if (!isSet(raw)) return result;
  if (!isPlainObject(raw)) {
    issues.add(p, `must be a mapping with provider and/or domains, not ${describeType(raw)}`);
    return result;
  }
  unknownKeys(raw, CERT_DNS_KEYS, p, issues);
  if (isSet(raw.provider)) {
    const pp = childPath(p, 'provider');
    if (typeof raw.provider !== 'string')
      issues.add(pp, `must be a provider instance name, not ${describeType(raw.provider)}`);
    else if (!ctx.providerNames.includes(raw.provider)) issues.add(pp, unknownInstance(raw.provider, ctx));
    else result.provider = raw.provider;
  }
  if (isSet(raw.domains)) {
    const dp = childPath(p, 'domains');
    if (!isPlainObject(raw.domains)) {
      issues.add(dp, `must map domain names to provider instances, not ${describeType(raw.domains)}`);
    } else {
      for (const [domain, instance] of Object.entries(raw.domains)) {
        const kp = childPath(dp, domain);
        const name = normaliseName(domain);
        if (!domains.includes(name)) {
          issues.add(kp, `${JSON.stringify(domain)} is not one of this certificate's domains`);
        } else if (typeof instance !== 'string') {
          issues.add(kp, `must be a provider instance name, not ${describeType(instance)}`);
        } else if (!ctx.providerNames.includes(instance)) {
          issues.add(kp, unknownInstance(instance, ctx));
        } else {
          // Object.fromEntries-style definition: a domain key can never reach the prototype.
          Object.defineProperty(result.domains, name, { value: instance, enumerable: true, writable: true });
        }
      }
    }
  }
  return result;
}

function validateCertificate(
  raw: unknown,
  index: number,
  ctx: CertificateContext,
  issues: IssueList,
): CertificateSpec | undefined {
  const base = childPath('certificates', index);
  if (!isPlainObject(raw)) {
    issues.add(base, `must be a mapping with name and domains, not ${describeType(raw)}`);
    return undefined;
  }
  unknownKeys(raw, CERTIFICATE_KEYS, base, issues);
  const name = validateName(raw.name, base, issues);
  const domains = validateDomains(raw.domains, base, issues);

  let keyType = ctx.defaultKeyType;
  if (isSet(raw.keyType)) {
    try {
      keyType = parseKeyType(raw.keyType);
    } catch (e) {
      issues.add(childPath(base, 'keyType'), (e as Error).message);
    }
  }
  let reuseKey = DEFAULT_REUSE_KEY;
  if (isSet(raw.reuseKey)) {
    try {
      reuseKey = parseBoolean(raw.reuseKey);
    } catch (e) {
      issues.add(childPath(base, 'reuseKey'), (e as Error).message);
    }
  }
  let profile: string | undefined;
  if (isSet(raw.profile)) {
    // RFC 8555 profile names are short tokens (Let's Encrypt: classic, tlsserver, shortlived).
    if (typeof raw.profile === 'string' && /^[a-z0-9][a-z0-9._-]{0,63}$/i.test(raw.profile))
      profile = raw.profile;
    else issues.add(childPath(base, 'profile'), 'must be a profile name such as "tlsserver" or "shortlived"');
  }
  const dns = validateCertDns(raw.dns, domains, base, ctx, issues);
  const outputs = validateOutputs(raw.outputs, base, issues);
  const thresholds = parseCertificateCheck(
    raw.check,
    base,
    ctx.thresholds ?? DEFAULT_CHECK.thresholds,
    issues,
  );

  // With exactly one instance configured there is nothing to choose: use it.
  const fallback = ctx.providerNames.length === 1 ? ctx.providerNames[0] : undefined;
  const dnsProvider =
    dns.provider ?? (isPlainObject(raw.dns) && isSet(raw.dns.provider) ? undefined : fallback);
  const uncovered = domains.filter((d) => dns.domains[d] === undefined && dnsProvider === undefined);
  if (uncovered.length && !issues.hasAt(childPath(childPath(base, 'dns'), 'provider'))) {
    issues.add(
      childPath(childPath(base, 'dns'), 'provider'),
      `no DNS provider for ${uncovered.join(', ')}: set dns.provider or dns.domains on this certificate` +
        (ctx.providerNames.length === 0 ? ', and configure an instance under dns.providers' : ''),
    );
  }
  domains.forEach((d, i) => {
    const instanceName = dns.domains[d] ?? dnsProvider;
    const instance = instanceName !== undefined ? ctx.providers[instanceName] : undefined;
    if (instance && instance.zones.length > 0 && !instance.zones.some((z) => inZone(d, z))) {
      issues.add(
        childPath(childPath(base, 'domains'), i),
        `${JSON.stringify(d)} is outside the zones of provider instance ${JSON.stringify(instance.name)} (${instance.zones.join(', ')})`,
      );
    }
  });

  if (name === undefined || issues.hasAt(base)) return undefined;
  return {
    name,
    domains,
    keyType,
    reuseKey,
    ...(profile !== undefined ? { profile } : {}),
    ...(dnsProvider !== undefined ? { dnsProvider } : {}),
    domainProviders: dns.domains,
    outputs,
    ...(thresholds ? { thresholds } : {}),
  };
}

/** Output files written by two outputs would overwrite each other on every renewal. */
function checkOutputCollisions(raw: readonly unknown[], issues: IssueList): void {
  const seen = new Map<string, string>();
  raw.forEach((cert, ci) => {
    if (!isPlainObject(cert) || !Array.isArray(cert.outputs)) return;
    cert.outputs.forEach((o: unknown, oi) => {
      if (!isPlainObject(o)) return;
      for (const key of OUTPUT_FILE_KEYS) {
        const v = o[key];
        if (typeof v !== 'string' || !path.isAbsolute(v)) continue;
        const file = path.normalize(v);
        const here = childPath(childPath(childPath(childPath('certificates', ci), 'outputs'), oi), key);
        const first = seen.get(file);
        if (first) issues.add(here, `${file} is also written by ${first}`);
        else seen.set(file, here);
      }
    });
  });
}

export function validateCertificates(
  raw: unknown,
  ctx: CertificateContext,
  issues: IssueList,
): CertificateSpec[] {
  if (!Array.isArray(raw)) return [];
  const specs: CertificateSpec[] = [];
  const names = new Map<string, number>();
  raw.forEach((c, i) => {
    const spec = validateCertificate(c, i, ctx, issues);
    if (isPlainObject(c) && typeof c.name === 'string') {
      const first = names.get(c.name);
      if (first !== undefined) {
        issues.add(
          childPath(childPath('certificates', i), 'name'),
          `duplicate name ${JSON.stringify(c.name)} (also certificates[${first}])`,
        );
      } else {
        names.set(c.name, i);
      }
    }
    if (spec) specs.push(spec);
  });
  checkOutputCollisions(raw, issues);
  return specs;
}
