import convict from 'convict';
import { ConfigError } from '../core/errors';
import { useResolversForConnections } from '../dns/host-lookup';
import { parseAcme } from './acme';
import { checkOutputSecretFiles, parseCertificates } from './certificates';
import { DEFAULT_CHECK } from './access';
import { parseCheckSection } from './check';
import { parseDaemon } from './daemon';
import { parseFleet } from './fleet';
import { checkDeploySecretFiles, DEPLOY_ROOT_KEYS, parseDeploySettings } from './deploy';
import { parseDefaults } from './renewal';
import { parseDns } from './dns';
import { readConfigFile, ROOT_PATH } from './file';
import { childPath, describeType, isPlainObject, IssueList } from './issues';
import {
  buildSchema,
  readLeaves,
  schemaLeaves,
  schemaShape,
  type LeafValues,
  type SchemaShape,
} from './schema';
import { parseStorage } from './storage';
import type { AgentConfig } from './types';
import { parseWatchSection } from './watch';

export { describeConfig, REDACTED } from './describe';
export { readConfigFile } from './file';

/** Where packages put the file; `--config` and CERTPILOT_CONFIG override it. */
export const DEFAULT_CONFIG_PATH = '/etc/certpilot/certpilot.yaml';
export const CONFIG_PATH_ENV = 'CERTPILOT_CONFIG';

/** `--config` flag, then $CERTPILOT_CONFIG, then the default path. */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env[CONFIG_PATH_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return DEFAULT_CONFIG_PATH;
}

/** Keys that could reach Object.prototype when copied (prototype pollution). */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];
/** Root sections parsed by section parsers alone; everything else at the root is the schema's. */
export const OWN_ROOT_KEYS: readonly string[] = [...DEPLOY_ROOT_KEYS, 'check', 'watch'];
/** Schema leaves that hold a mapping (`format: Object`). */
const MAPPING_LEAVES = ['dns.providers', 'storage.etcd'];

function checkForbiddenKeys(value: unknown, at: string, issues: IssueList, depth = 0): void {
  if (depth > 32) return;
  if (Array.isArray(value))
    value.forEach((v, i) => checkForbiddenKeys(v, childPath(at, i), issues, depth + 1));
  else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const p = childPath(at, key);
      if (FORBIDDEN_KEYS.includes(key)) issues.add(p, 'reserved key');
      else checkForbiddenKeys(value[key], p, issues, depth + 1);
    }
  }
}

function leafShapeProblem(p: string, value: unknown): string | undefined {
  if (MAPPING_LEAVES.includes(p))
    return isPlainObject(value) ? undefined : `must be a mapping, not ${describeType(value)}`;
  if (!isPlainObject(value)) return undefined;
  const leaf = schemaLeaves().find((l) => l.path === p);
  return `must be ${Array.isArray(leaf?.default) ? 'a list' : 'a single value'}, not a mapping`;
}

/**
 * The schema's part of the document, checked against the schema's shape: unknown keys, a
 * scalar where a section belongs and a mapping where a value belongs are reported here with
 * their paths, and only what fits is handed to convict (which would otherwise merge it into
 * nonsense). A `null` (an empty `acme:` in YAML) means "not set" and is dropped so the
 * defaults apply.
 */
function pruneToShape(
  raw: Record<string, unknown>,
  shape: SchemaShape,
  at: string,
  issues: IssueList,
  alsoAllowed: readonly string[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const p = childPath(at, key);
    const node = shape[key];
    if (FORBIDDEN_KEYS.includes(key) || alsoAllowed.includes(key)) continue;
    if (node === undefined) {
      issues.add(p, `unknown key (allowed: ${[...Object.keys(shape), ...alsoAllowed].join(', ')})`);
    } else if (value === null) {
      continue;
    } else if (node === true) {
      const problem = leafShapeProblem(p, value);
      if (problem) issues.add(p, problem);
      else out[key] = value;
    } else if (!isPlainObject(value)) {
      issues.add(p, `must be a mapping (a section), not ${describeType(value)}`);
    } else {
      out[key] = pruneToShape(value, node, p, issues);
    }
  }
  return out;
}

/**
 * Convict's part: defaults, the file and the environment merged leaf by leaf, then every
 * leaf validated and normalised by our own parsers (readLeaves). Convict's validate() is not
 * called, so no problem is ever recovered from convict's message text.
 */
function mergeSchemaLeaves(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): LeafValues {
  const schema = buildSchema();
  const pruned = pruneToShape(raw, schemaShape(schema), '', issues, OWN_ROOT_KEYS);
  const conf = convict<Record<string, unknown>>(
    schema as unknown as convict.Schema<Record<string, unknown>>,
    {
      env,
      args: [], // never read process.argv: the CLI owns the command line
    },
  );
  conf.load(pruned);
  const get = (p: string): unknown => {
    try {
      return conf.get(p);
    } catch {
      return undefined;
    }
  };
  return readLeaves(get, env, issues, schemaLeaves(schema));
}

async function parseSections(
  source: string,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<AgentConfig> {
  const values = mergeSchemaLeaves(raw, env, issues);
  const acme = await parseAcme(values, raw, env, issues);
  const defaults = parseDefaults(values);
  const dns = await parseDns(values, env, issues);
  const check = parseCheckSection(raw.check, issues);
  const thresholds = check?.thresholds ?? DEFAULT_CHECK.thresholds;
  const watch = parseWatchSection(raw.watch, thresholds, issues);
  const certificates = parseCertificates(
    values.get('certificates'),
    {
      defaultKeyType: defaults.defaultKeyType,
      providerNames: dns.providers.names,
      providers: dns.providers.instances,
      thresholds,
    },
    issues,
  );
  const deploy = parseDeploySettings(raw, '', issues);
  await checkDeploySecretFiles(deploy, raw.certificates, issues);
  await checkOutputSecretFiles(raw.certificates, issues);
  const storage = parseStorage(values, issues);
  const fleet = parseFleet(values, raw.fleet !== undefined && raw.fleet !== null, storage, issues);
  return {
    source,
    acme,
    storage,
    ...defaults,
    daemon: parseDaemon(values, issues),
    dns: dns.settings,
    certificates,
    ...deploy,
    ...(check ? { check } : {}),
    ...(watch ? { watch } : {}),
    ...(fleet ? { fleet } : {}),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Loads, validates and normalises the configuration. Every problem found is reported at once
 * in one ConfigError; secret values never appear in its messages.
 */
export async function loadConfig(opts: { path: string; env?: NodeJS.ProcessEnv }): Promise<AgentConfig> {
  const file = opts.path;
  const env = opts.env ?? process.env;
  const parsed = await readConfigFile(file);
  if (parsed !== null && parsed !== undefined && !isPlainObject(parsed)) {
    throw new ConfigError(
      [{ path: ROOT_PATH, message: `must be a mapping of sections, not ${describeType(parsed)}` }],
      file,
    );
  }
  // An empty file is a valid, all-defaults configuration.
  const raw: Record<string, unknown> = isPlainObject(parsed) ? parsed : {};
  const issues = new IssueList();
  checkForbiddenKeys(raw, '', issues);
  const config = await parseSections(file, raw, env, issues);
  if (issues.size > 0) throw new ConfigError(issues.toArray(), file);
  // With dns.resolvers set, no connection may ask the system resolver (src/dns/host-lookup.ts).
  useResolversForConnections(config.dns);
  return deepFreeze(config);
}
