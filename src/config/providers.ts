import { registerSecret } from '../core/redact';
import type { ProviderDefinition, ProviderOptionSpec } from '../dns/provider';
import { findProvider, listProviders } from '../dns/registry';
import {
  coerceBoolean,
  coerceInteger,
  parseBoolean,
  parseDuration,
  parseHost,
  parseHttpUrl,
  parseInteger,
  parseNonEmptyString,
  parsePort,
  parseZone,
} from './formats';
import { childPath, describeType, isPlainObject, type IssueList } from './issues';
import { readSecretFile } from './secrets';
import type { DnsProviderInstance } from './types';

/**
 * Validation of `dns.providers`: an open map of named instances, each typed by a provider
 * definition from the registry. The definition's option specs decide what is allowed, so a
 * new provider needs no change here.
 */

/** Keys every instance accepts, whatever its provider. */
export const INSTANCE_KEYS = ['type', 'zones', 'ttl', 'propagationTimeout', 'propagationInterval'] as const;
/** Suffix that turns a secret option into "read it from this file". */
export const FILE_SUFFIX = '_file';
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

const isSet = (v: unknown): boolean => v !== undefined && v !== null;

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
      return parseHttpUrl(value);
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

async function validateOptions(
  def: ProviderDefinition,
  raw: Record<string, unknown>,
  base: string,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<Record<string, unknown>> {
  const options: Record<string, unknown> = {};
  const knownKeys = new Set<string>(INSTANCE_KEYS);

  for (const [name, spec] of Object.entries(def.options)) {
    knownKeys.add(name);
    if (spec.sensitive) knownKeys.add(name + FILE_SUFFIX);
    const p = childPath(base, name);
    const inline = raw[name];
    const file = spec.sensitive ? raw[name + FILE_SUFFIX] : undefined;
    const fromEnv = spec.env !== undefined ? env[spec.env] : undefined;

    if (isSet(inline) && isSet(file)) {
      issues.add(
        childPath(base, name + FILE_SUFFIX),
        `give either ${name} or ${name}${FILE_SUFFIX}, not both`,
      );
      continue;
    }
    let value: unknown;
    let origin = '';
    if (isSet(inline)) {
      value = inline;
    } else if (isSet(file)) {
      const fp = childPath(base, name + FILE_SUFFIX);
      if (typeof file !== 'string') {
        issues.add(fp, `must be an absolute path, not ${describeType(file)}`);
        continue;
      }
      const secret = await readSecretFile(file);
      if (!secret.ok) {
        issues.add(fp, secret.message);
        continue;
      }
      value = secret.value;
      origin = ` (read from ${name}${FILE_SUFFIX})`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      value = coerceFromEnv(spec, fromEnv);
      origin = ` (from ${spec.env})`;
    } else if (spec.default !== undefined) {
      value = spec.default;
    } else {
      if (spec.required) {
        const alternatives = [spec.sensitive ? `${name}${FILE_SUFFIX}` : '', spec.env ? `$${spec.env}` : '']
          .filter(Boolean)
          .join(' or ');
        issues.add(p, `required by provider ${def.code}${alternatives ? ` (or set ${alternatives})` : ''}`);
      }
      continue;
    }
    try {
      options[name] = parseOption(spec, value);
      if (spec.sensitive) registerSecret(options[name]);
    } catch (e) {
      const message = (e as Error).message + origin;
      issues.add(p, spec.sensitive ? scrub(message, value) : message);
    }
  }

  for (const key of Object.keys(raw)) {
    if (knownKeys.has(key)) continue;
    const optName = key.endsWith(FILE_SUFFIX) ? key.slice(0, -FILE_SUFFIX.length) : '';
    if (optName && def.options[optName]) {
      issues.add(
        childPath(base, key),
        `${optName} is not secret and cannot be read from a file; set ${optName} itself`,
      );
    } else {
      const known = Object.keys(def.options).join(', ');
      issues.add(childPath(base, key), `unknown option for provider ${def.code} (options: ${known})`);
    }
  }
  return options;
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
  if (!isPlainObject(raw)) {
    issues.add(base, `must be a mapping with at least "type", not ${describeType(raw)}`);
    return undefined;
  }

  let def: ProviderDefinition | undefined;
  if (!isSet(raw.type)) {
    issues.add(
      childPath(base, 'type'),
      `required: the provider code (${listProviders()
        .map((d) => d.code)
        .join(', ')})`,
    );
  } else if (typeof raw.type !== 'string') {
    issues.add(childPath(base, 'type'), `must be a provider code string, not ${describeType(raw.type)}`);
  } else {
    def = findProvider(raw.type.trim());
    if (!def) {
      const known = listProviders()
        .flatMap((d) => [d.code, ...(d.aliases ?? [])])
        .join(', ');
      issues.add(
        childPath(base, 'type'),
        `unknown provider type ${JSON.stringify(raw.type)} (known: ${known})`,
      );
    }
  }

  let zones: string[] = [];
  if (isSet(raw.zones)) {
    if (!Array.isArray(raw.zones)) {
      issues.add(childPath(base, 'zones'), `must be a list of zone names, not ${describeType(raw.zones)}`);
    } else {
      zones = [];
      raw.zones.forEach((z, i) => {
        try {
          const zone = parseZone(z);
          if (!zones.includes(zone)) zones.push(zone);
        } catch (e) {
          issues.add(childPath(childPath(base, 'zones'), i), (e as Error).message);
        }
      });
    }
  }

  const number = <T>(key: string, parse: (v: unknown) => T, fallback: T): T => {
    if (!isSet(raw[key])) return fallback;
    try {
      return parse(raw[key]);
    } catch (e) {
      issues.add(childPath(base, key), (e as Error).message);
      return fallback;
    }
  };
  const defaults = def?.defaults ?? { ttl: 0, propagationTimeoutMs: 0, propagationIntervalMs: 0 };
  const ttl = number('ttl', (v) => parseInteger(v, 1, MAX_TTL_SECONDS), defaults.ttl);
  const propagationTimeoutMs = number('propagationTimeout', parseDuration, defaults.propagationTimeoutMs);
  const propagationIntervalMs = number('propagationInterval', parseDuration, defaults.propagationIntervalMs);
  if (def && propagationIntervalMs > propagationTimeoutMs) {
    issues.add(childPath(base, 'propagationInterval'), 'must not be longer than propagationTimeout');
  }

  if (!def) return undefined;
  const before = issues.size;
  const options = await validateOptions(def, raw, base, env, issues);
  // Cross-option checks only make sense once every option is individually valid.
  if (issues.size === before && def.validate) {
    for (const [opt, message] of def.validate(options)) issues.add(childPath(base, opt), message);
  }
  if (issues.hasAt(base)) return undefined;
  return { name, type: def.code, options, zones, ttl, propagationTimeoutMs, propagationIntervalMs };
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
