import type { ProviderDefinition } from './provider';
import { rfc2136Definition } from './providers/rfc2136/definition';
import { route53Definition } from './providers/route53/definition';
import { cloudflareDefinition } from './providers/cloudflare/definition';
import { execDefinition } from './providers/exec/definition';

/**
 * All DNS providers certpilot knows. Definitions are plain data plus a `create` that loads the
 * implementation lazily, so listing providers or validating config never loads an SDK.
 */
const DEFINITIONS: readonly ProviderDefinition[] = [
  rfc2136Definition,
  route53Definition,
  cloudflareDefinition,
  execDefinition,
];

export function listProviders(): readonly ProviderDefinition[] {
  return DEFINITIONS;
}

/** Finds a provider by code or alias (case-insensitive). */
export function findProvider(code: string): ProviderDefinition | undefined {
  const c = code.toLowerCase();
  return DEFINITIONS.find((d) => d.code === c || (d.aliases ?? []).includes(c));
}
