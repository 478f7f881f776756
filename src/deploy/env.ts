import type { CertPaths } from '../store/cert-store';

/**
 * The variables every hook sees (docs/hooks.md is the contract; test/deploy/hooks.test.ts checks
 * that the set is exactly this). Lists are space-separated: names never contain spaces, and
 * `for d in $CERTPILOT_DOMAINS` then just works.
 */
export interface CertVarsInput {
  name: string;
  domains: readonly string[];
  paths: CertPaths;
  serial: string;
  notAfter: Date;
  previousSerial?: string;
}

export const CERT_VAR_NAMES = [
  'CERTPILOT_CERT_NAME',
  'CERTPILOT_DOMAINS',
  'CERTPILOT_CERT_PATH',
  'CERTPILOT_KEY_PATH',
  'CERTPILOT_CHAIN_PATH',
  'CERTPILOT_FULLCHAIN_PATH',
  'CERTPILOT_SERIAL',
  'CERTPILOT_NOT_AFTER',
  'CERTPILOT_PREVIOUS_SERIAL',
] as const;

export function certVars(c: CertVarsInput): Record<string, string> {
  return {
    CERTPILOT_CERT_NAME: c.name,
    CERTPILOT_DOMAINS: c.domains.join(' '),
    CERTPILOT_CERT_PATH: c.paths.cert,
    CERTPILOT_KEY_PATH: c.paths.key,
    CERTPILOT_CHAIN_PATH: c.paths.chain,
    CERTPILOT_FULLCHAIN_PATH: c.paths.fullchain,
    CERTPILOT_SERIAL: c.serial,
    CERTPILOT_NOT_AFTER: c.notAfter.toISOString(),
    // Always present (empty for a first issuance) so `set -u` scripts do not trip over it.
    CERTPILOT_PREVIOUS_SERIAL: c.previousSerial ?? '',
  };
}

/** argv placeholders: `{cert}`, `{key}`, `{chain}`, `{fullchain}`, `{name}`, `{serial}`. */
export function certPlaceholders(c: CertVarsInput): Record<string, string> {
  return {
    cert: c.paths.cert,
    key: c.paths.key,
    chain: c.paths.chain,
    fullchain: c.paths.fullchain,
    name: c.name,
    serial: c.serial,
  };
}

/** Post hooks: which certificates this run renewed (or re-deployed) and which failed. */
export function postVars(renewed: readonly string[], failed: readonly string[]): Record<string, string> {
  return { CERTPILOT_RENEWED: renewed.join(' '), CERTPILOT_FAILED: failed.join(' ') };
}
