import type { KeyType } from '../config/types';
import type { CertificateFiles } from '../store/cert-store';
import type { CertInfo } from '../x509';

/**
 * What `certpilot import` read from another ACME client, before anything is written: the
 * readers (certbot.ts, lego.ts) produce it, plan.ts turns it into a config snippet and a plan,
 * apply.ts carries the plan out.
 */

/** The DNS providers whose settings map onto a certpilot provider. */
export type ImportedProviderType = 'rfc2136' | 'route53' | 'cloudflare';

export interface ImportedProvider {
  type: ImportedProviderType;
  /** Options as certpilot names them, without the secret. */
  options: Record<string, unknown>;
  /** The one secret option (tsigSecret, apiToken): written to a 0600 file, never printed. */
  secret?: { option: string; value: string };
  /** Where the settings came from, for the plan (a credentials file, "environment"). */
  from: string;
}

export interface ImportedAccount {
  directoryUrl: string;
  /** The account URL (kid) the CA returned at registration. */
  url: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  email?: string;
  createdAt?: string;
  /** Where it came from, for the plan. */
  from: string;
}

export interface ImportedHooks {
  pre: string[];
  deploy: string[];
  post: string[];
}

export interface ImportedCertificate {
  /** certpilot certificate name (file-name safe). */
  name: string;
  /** The other tool's name for it (lineage, lego domain). */
  sourceName: string;
  /** Where its files are, for the plan. */
  from: string;
  /** ACME directory it was issued by (certbot records it; lego's is matched by host). */
  directoryUrl: string;
  files: CertificateFiles;
  info: CertInfo;
  keyType?: KeyType;
  reuseKey: boolean;
  provider?: ImportedProvider;
  hooks: ImportedHooks;
  /** What did not map, per certificate. */
  notes: string[];
}

export interface ImportSource {
  tool: 'certbot' | 'lego';
  certificates: ImportedCertificate[];
  accounts: ImportedAccount[];
  /** What did not map, for the whole source. */
  notes: string[];
}

/** certpilot certificate names: [a-z0-9][a-z0-9._-]*, at most 64 characters. */
export function toCertificateName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/^\*\./, 'wildcard.')
    .replace(/[^a-z0-9._-]/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return (s || 'imported').slice(0, 64);
}
