import type { ProviderDefinition, ProviderOptionSpec } from '../dns/provider';
import { registerSecret } from '../core/redact';
import { findProvider, listProviders } from '../dns/registry';
import {
  coerceBoolean,
  coerceInteger,
  parseBoolean,
  parseDuration,
  parseHost,
  parseCredentialUrl,
  parseInteger,
  parseNonEmptyString,
  parsePort,
  parseZone,
} from './formats';
import { FILE_SUFFIX, integer, isSet, listOfValues, mapping, optional, required } from './combinators';
import { childPath, describeType, isPlainObject, type IssueList } from './issues';
import { readSecretFileAt } from './secrets';
import type { KeyDocs } from './key-docs';
import type { DnsProviderInstance, SecretOrigin } from './types';

/**
 * Validation of `dns.providers`: an open map of named instances, each typed by a provider
 * definition from the registry. The definition's option specs decide what is allowed, so a
 * new provider needs no change here.
 */

/** Keys every instance accepts, whatever its provider. */
export const INSTANCE_KEYS = [
  'type',
  'zones',
  'ttl',
  'propagationTimeout',
  'propagationInterval',
  'cnameToAnyZone',
] as const;
export const INSTANCE_KEY_DOCS: KeyDocs = {
  type: {
    type: 'provider code or alias',
    default: 'required',
    doc: 'Which provider (`certpilot providers` lists them).',
  },
  zones: {
    type: 'list of zone names',
    default: '`[]` (any)',
    doc: 'Zones this instance may write; a certificate name outside them fails that certificate.',
  },
  ttl: {
    type: 'integer 1..86400',
    default: 'provider default',
    doc: 'TTL of challenge records, in seconds.',
  },
  propagationTimeout: {
    type: 'duration',
    default: 'provider default',
    doc: 'How long to wait for a record to reach every authoritative nameserver.',
  },
  propagationInterval: {
    type: 'duration',
    default: 'provider default',
    doc: 'How often to look; not longer than the timeout.',
  },
  cnameToAnyZone: {
    type: 'boolean',
    default: '`false`',
    doc: 'With `zones: []`, follow an `_acme-challenge` CNAME into a zone no instance lists (else refused before any write, so a stale or spoofed CNAME cannot redirect the TXT write).',
  },
};
/** Instance names appear in paths, logs and metrics labels: keep them plain. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A challenge record lives minutes; a day-long TTL would only make failed attempts linger in caches. */
const MAX_TTL_SECONDS = 86_400;

export interface ProvidersResult {
  /** Instances that validated completely. */
  readonly instances: Record<string, DnsProviderInstance>;
  /** Every configured instance name, valid or not: references to a broken instance are not "unknown". */
  readonly names: readonly string[];
}

/** Removes a secret's text from a message that might quote it. */
function scrub(message: string, secret: unknown): string {
  if (typeof secret !== 'string' || secret === '') return message;
  return message.split(JSON.stringify(secret)).join('(hidden)').split(secret).join('(hidden)');
}

function parseOption(spec: ProviderOptionSpec, value: unknown): unknown {
  switch (spec.format) {
    case 'string':
      return parseNonEmptyString(value);
    case 'string-list':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        throw new Error('must be a list of strings');
      }
      return [...value];
    case 'port':
      return parsePort(value);
    case 'nat':
      return parseInteger(value, 0, Number.MAX_SAFE_INTEGER);
    case 'boolean':
      return parseBoolean(value);
    case 'url':
      return parseCredentialUrl(value);
    case 'host':
      return parseHost(value);
    case 'enum': {
      const values = spec.values ?? [];
      if (typeof value !== 'string' || !values.includes(value)) {
        throw new Error(
          `must be one of ${values.join(', ')}${typeof value === 'string' ? `, not ${JSON.stringify(value)}` : ''}`,
        );
      }
      return value;
    }
  }
}

/** The environment supplies strings; turn them into what the format expects, strictly. */
function coerceFromEnv(spec: ProviderOptionSpec, value: string): unknown {
  if (spec.format === 'port' || spec.format === 'nat') return coerceInteger(value);
  if (spec.format === 'boolean') return coerceBoolean(value);
  // A list from the environment is a JSON array; splitting on spaces or commas would guess.
  if (spec.format === 'string-list') return JSON.parse(value) as unknown;
  return value;
}

/** Where an option's value came from, said after a problem with it (never the value itself). */
interface OptionSource {
  readonly value: unknown;
  readonly origin: string;
  /** For secrets: the file or variable it came from. */
  readonly from?: SecretOrigin;
}

/**
 * One option's raw value: inline, else `<name>_file` (secrets only), else the provider's
 * environment variable, else its default. Undefined when there is none (reported if required).
 */
async function findOption(
  def: ProviderDefinition,
  name: string,
  raw: Record<string, unknown>,
  base: string,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<OptionSource | undefined> {
  const spec = def.options[name];
  const inline = raw[name];
  const file = spec.sensitive ? raw[name + FILE_SUFFIX] : undefined;
  const fromEnv = spec.env !== undefined ? env[spec.env] : undefined;
  const fp = childPath(base, name + FILE_SUFFIX);
  if (isSet(inline) && isSet(file)) {
    issues.add(fp, `give either ${name} or ${name}${FILE_SUFFIX}, not both`);
    return undefined;
  }
  if (isSet(inline)) return { value: inline, origin: '' };
  if (isSet(file)) {
    if (typeof file !== 'string') {
      issues.add(fp, `must be an absolute path, not ${describeType(file)}`);
      return undefined;
    }
    const value = await readSecretFileAt(file, fp, issues);
    return value === undefined
      ? undefined
      : { value, origin: ` (read from ${name}${FILE_SUFFIX})`, from: { file } };
  }
  if (fromEnv !== undefined && fromEnv !== '')
    return { value: coerceFromEnv(spec, fromEnv), origin: ` (from ${spec.env})`, from: { env: spec.env! } };
  if (spec.default !== undefined) return { value: spec.default, origin: '' };
  if (spec.required) {
    const alternatives = [spec.sensitive ? `${name}${FILE_SUFFIX}` : '', spec.env ? `$${spec.env}` : '']
      .filter(Boolean)
      .join(' or ');
    issues.add(
      childPath(base, name),
      `required by provider ${def.code}${alternatives ? ` (or set ${alternatives})` : ''}`,
    );
  }
  return undefined;
}

/** Keys that are neither an instance key nor an option of this provider. */
function checkOptionKeys(
  def: ProviderDefinition,
  raw: Record<string, unknown>,
  base: string,
  issues: IssueList,
): void {
  const known = new Set<string>(INSTANCE_KEYS);
  for (const [name, spec] of Object.entries(def.options)) {
    known.add(name);
    if (spec.sensitive) known.add(name + FILE_SUFFIX);
  }
  for (const key of Object.keys(raw)) {
    if (known.has(key)) continue;
    const optName = key.endsWith(FILE_SUFFIX) ? key.slice(0, -FILE_SUFFIX.length) : '';
    if (optName && def.options[optName]) {
      issues.add(
        childPath(base, key),
        `${optName} is not secret and cannot be read from a file; set ${optName} itself`,
      );
    } else {
      const options = Object.keys(def.options).join(', ');
      issues.add(childPath(base, key), `unknown option for provider ${def.code} (options: ${options})`);
    }
  }
}

async function validateOptions(
  def: ProviderDefinition,
  raw: Record<string, unknown>,
  base: string,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<{ options: Record<string, unknown>; secretOrigins: Record<string, SecretOrigin> }> {
  const options: Record<string, unknown> = {};
  const secretOrigins: Record<string, SecretOrigin> = {};
  for (const [name, spec] of Object.entries(def.options)) {
    const found = await findOption(def, name, raw, base, env, issues);
    if (!found) continue;
    try {
      options[name] = parseOption(spec, found.value);
      if (spec.sensitive) registerSecret(options[name]);
      if (spec.sensitive && found.from) secretOrigins[name] = found.from;
    } catch (e) {
      const message = (e as Error).message + found.origin;
      issues.add(childPath(base, name), spec.sensitive ? scrub(message, found.value) : message);
    }
  }
  checkOptionKeys(def, raw, base, issues);
  return { options, secretOrigins };
}

const knownTypes = (): string =>
  listProviders()
    .flatMap((d) => [d.code, ...(d.aliases ?? [])])
    .join(', ');

const parseProviderType = (v: unknown): ProviderDefinition => {
  if (typeof v !== 'string') throw new Error(`must be a provider code string, not ${describeType(v)}`);
  const def = findProvider(v.trim());
  if (!def) throw new Error(`unknown provider type ${JSON.stringify(v)} (known: ${knownTypes()})`);
  return def;
};

function parseZones(raw: unknown, base: string, issues: IssueList): string[] {
  const zones: string[] = [];
  for (const zone of listOfValues(raw, childPath(base, 'zones'), issues, parseZone, 'a list of zone names'))
    if (!zones.includes(zone)) zones.push(zone);
  return zones;
}

async function validateInstance(
  name: string,
  raw: unknown,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<DnsProviderInstance | undefined> {
  const base = childPath('dns.providers', name);
  if (!INSTANCE_NAME.test(name)) {
    issues.add(
      base,
      'instance names must be letters, digits, "_" and "-", starting with a letter or digit (max 64)',
    );
  }
  const m = mapping(raw, base, issues, { what: 'a mapping with at least "type"', missing: true });
  if (!m) return undefined;
  const codes = listProviders()
    .map((d) => d.code)
    .join(', ');
  const def = required(m, 'type', base, issues, parseProviderType, `required: the provider code (${codes})`);
  const zones = parseZones(m.zones, base, issues);
  const defaults = def?.defaults ?? { ttl: 0, propagationTimeoutMs: 0, propagationIntervalMs: 0 };
  const ttl = optional(m, 'ttl', base, issues, integer(1, MAX_TTL_SECONDS)) ?? defaults.ttl;
  const propagationTimeoutMs =
    optional(m, 'propagationTimeout', base, issues, parseDuration) ?? defaults.propagationTimeoutMs;
  const propagationIntervalMs =
    optional(m, 'propagationInterval', base, issues, parseDuration) ?? defaults.propagationIntervalMs;
  /** With no `zones`: also write where an `_acme-challenge` CNAME points into a zone no instance lists (off: a stale or spoofed CNAME could redirect writes into any zone these credentials can write). */
  const cnameToAnyZone = optional(m, 'cnameToAnyZone', base, issues, parseBoolean) ?? false;
  if (def && propagationIntervalMs > propagationTimeoutMs) {
    issues.add(childPath(base, 'propagationInterval'), 'must not be longer than propagationTimeout');
  }
  if (!def) return undefined;
  const before = issues.size;
  const { options, secretOrigins } = await validateOptions(def, m, base, env, issues);
  // Cross-option checks only make sense once every option is individually valid.
  if (issues.size === before && def.validate) {
    for (const [opt, message] of def.validate(options)) issues.add(childPath(base, opt), message);
  }
  if (issues.hasAt(base)) return undefined;
  return {
    name,
    type: def.code,
    options,
    ...(Object.keys(secretOrigins).length > 0 ? { secretOrigins } : {}),
    zones,
    ttl,
    propagationTimeoutMs,
    propagationIntervalMs,
    ...(cnameToAnyZone ? { cnameToAnyZone } : {}),
  };
}

export async function validateProviders(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<ProvidersResult> {
  const instances: Record<string, DnsProviderInstance> = {};
  if (!isPlainObject(raw)) return { instances, names: [] };
  const names = Object.keys(raw);
  for (const name of names) {
    const instance = await validateInstance(name, raw[name], env, issues);
    if (instance) instances[name] = instance;
  }
  return { instances, names };
}
