import { promises as fs } from 'node:fs';
import path from 'node:path';
import convict from 'convict';
import { isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { ConfigError, type ConfigIssue } from '../core/errors';
import { registerSecret } from '../core/redact';
import { validateCertificates } from './certificates';
import {
  ACME_DIRECTORY_PRESETS,
  EAB_REQUIRED_PRESETS,
  parseAbsolutePath,
  parseAcmeDirectory,
  parseDuration,
  parseListen,
  parseEmail,
  parseKeyType,
  parseResolverList,
} from './formats';
import { childPath, describeType, isPlainObject, IssueList } from './issues';
import { validateProviders } from './providers';
import { buildSchema, DEFAULT_KEY_TYPE, ENV, schemaLeaves, schemaShape, type SchemaShape } from './schema';
import { readSecretFile } from './secrets';
import { checkDeploySecrets, DEPLOY_ROOT_KEYS, parseDeployConfig, withDeployConfig } from '../deploy/config';
import type { AcmeSettings, AgentConfig, EabSettings, KeyType } from './types';
import { CHECK_ROOT_KEYS, DEFAULT_CHECK, parseCheckSection, parseWatchSection } from './watch';

export { describeConfig, REDACTED } from './describe';

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

// ---------------------------------------------------------------------------------------------
// Reading the file

/** Paths for problems that have no config path: the file itself, or its syntax. */
const FILE_PATH = '(file)';
const ROOT_PATH = '(root)';
/** Guards against "billion laughs" alias expansion in hostile or broken YAML. */
const MAX_YAML_ALIASES = 100;
/** Keys that could reach Object.prototype when copied (prototype pollution). */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];
/** Keys whose YAML integers are file modes: read as octal, the way chmod reads them. */
const MODE_KEYS = ['mode', 'keyMode'];

function fileError(file: string, message: string, issuePath = FILE_PATH): ConfigError {
  return new ConfigError([{ path: issuePath, message }], file);
}

/**
 * YAML 1.2 reads `mode: 0644` as the decimal number 644. Nobody means that, so for mode keys
 * a plain integer is handed on as its source text, which parseMode reads as octal.
 */
function keepModesOctal(doc: ReturnType<typeof parseDocument>): void {
  visit(doc, {
    Pair(_, pair) {
      if (!isPair(pair) || !isScalar(pair.key) || !MODE_KEYS.includes(String(pair.key.value))) return;
      const v = pair.value;
      if (isScalar(v) && typeof v.value === 'number' && v.type === 'PLAIN' && typeof v.source === 'string') {
        v.value = v.source;
      }
    },
  });
}

function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { path: '(yaml)', message: `line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
      }),
      file,
    );
  }
  keepModesOctal(doc);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    throw fileError(file, `YAML cannot be expanded: ${(e as Error).message}`, '(yaml)');
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const pos = /position (\d+)/.exec(message);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const col = Number(pos[1]) - before.lastIndexOf('\n');
      where = `line ${line}, column ${col}: `;
    }
    throw fileError(file, `${where}${message}`, '(json)');
  }
}

/** Reads and parses the file; a missing file, unknown extension or syntax error is a ConfigError. */
export async function readConfigFile(file: string): Promise<unknown> {
  const ext = path.extname(file).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext)) {
    throw fileError(
      file,
      `unsupported file type ${JSON.stringify(ext || '(none)')}: use .yaml, .yml or .json`,
    );
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'does not exist'
        : err.code === 'EACCES'
          ? 'is not readable'
          : `cannot be read (${err.code ?? err.message})`;
    throw fileError(file, `${file} ${why}`);
  }
  return ext === '.json' ? parseJson(text, file) : parseYaml(text, file);
}

// ---------------------------------------------------------------------------------------------
// Shape checks before convict

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

/** Leaves that legitimately hold a mapping. */
const MAPPING_LEAVES = ['dns.providers'];

/**
 * Convict assumes the file has the schema's shape: a scalar where a section belongs, or a
 * mapping where a scalar belongs, produces "did you override its parent?" noise or even a
 * crash. Report those here, with our paths, and hand convict only what it can take. A `null`
 * (an empty `acme:` in YAML) means "not set" and is dropped so the defaults apply.
 */
function pruneToShape(
  raw: Record<string, unknown>,
  shape: SchemaShape,
  at: string,
  issues: IssueList,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (FORBIDDEN_KEYS.includes(key)) continue;
    const p = at ? `${at}.${key}` : key;
    const node = shape[key];
    if (value === null && node !== undefined) continue;
    if (node === undefined) {
      out[key] = value; // convict's strict check reports it
    } else if (node === true) {
      if (isPlainObject(value) && !MAPPING_LEAVES.includes(p)) {
        issues.add(p, `must be ${describeLeaf(p)}, not a mapping`);
      } else if (MAPPING_LEAVES.includes(p) && !isPlainObject(value)) {
        issues.add(p, `must be a mapping, not ${describeType(value)}`);
      } else {
        out[key] = value;
      }
    } else if (!isPlainObject(value)) {
      issues.add(p, `must be a mapping (a section), not ${describeType(value)}`);
    } else {
      out[key] = pruneToShape(value, node, p, issues);
    }
  }
  return out;
}

function describeLeaf(p: string): string {
  const leaf = schemaLeaves().find((l) => l.path === p);
  if (Array.isArray(leaf?.default)) return 'a list';
  return 'a single value';
}

// ---------------------------------------------------------------------------------------------
// convict

const UNDECLARED = /^configuration param '(.*)' not declared in the schema$/;
const MISSING = /^configuration param '(.*)' missing from config/;

/** The shortest prefix of `dotted` that the schema does not know: where the unknown key is. */
function unknownKeyPath(dotted: string, shape: SchemaShape): string {
  const parts = dotted.split('.');
  let node: true | SchemaShape = shape;
  const known: string[] = [];
  for (const part of parts) {
    if (node === true || !(part in node)) return [...known, part].join('.');
    known.push(part);
    node = node[part];
  }
  return dotted;
}

/**
 * Turns convict's one-string error into issues. Lines are `fullName: message[: value was X]`
 * for bad values (fullName is a schema path we know) and fixed sentences for unknown keys.
 */
function convictIssues(
  message: string,
  leafPaths: readonly string[],
  shape: SchemaShape,
  env: NodeJS.ProcessEnv,
): ConfigIssue[] {
  const byLength = [...leafPaths].sort((a, b) => b.length - a.length);
  const leaves = schemaLeaves();
  const out: ConfigIssue[] = [];
  for (const line of message.split('\n')) {
    if (line.trim() === '') continue;
    const undeclared = UNDECLARED.exec(line);
    if (undeclared) {
      const p = unknownKeyPath(undeclared[1], shape);
      const parent = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '';
      const node = parent
        ? parent.split('.').reduce<true | SchemaShape>((n, k) => (n === true ? n : n[k]), shape)
        : shape;
      const allowed = node === true ? [] : Object.keys(node);
      out.push({
        path: p,
        message: `unknown key${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
      });
      continue;
    }
    const missing = MISSING.exec(line);
    if (missing) {
      out.push({ path: missing[1], message: 'missing: its section was replaced by something else' });
      continue;
    }
    const leaf = byLength.find((p) => line.startsWith(`${p}: `));
    if (!leaf) {
      out.push({ path: '(config)', message: line });
      continue;
    }
    let text = line.slice(leaf.length + 2);
    const cut = text.indexOf(': value was ');
    if (cut >= 0) text = text.slice(0, cut);
    // Convict's built-in Object check (dns.providers) speaks JavaScript; say it in YAML.
    text = text.replace('must be of type Object', 'must be a mapping');
    const envName = leaves.find((l) => l.path === leaf)?.env;
    if (envName && env[envName] !== undefined) text += ` (from $${envName})`;
    out.push({ path: leaf, message: text });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Assembly

async function checkCaBundle(file: string, issues: IssueList): Promise<void> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) {
      issues.add('acme.caBundle', `${file} is not a regular file`);
      return;
    }
    const text = await fs.readFile(file, 'utf8');
    if (!text.includes('-----BEGIN CERTIFICATE-----'))
      issues.add('acme.caBundle', `${file} holds no PEM certificate`);
  } catch (e) {
    issues.add('acme.caBundle', `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function buildEab(
  get: (p: string) => unknown,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<EabSettings | undefined> {
  if (issues.hasAt('acme.eab')) return undefined;
  const keyId = get('acme.eab.keyId');
  const inlineKey = get('acme.eab.hmacKey');
  const keyFile = get('acme.eab.hmacKey_file');
  const rawEab = isPlainObject(raw.acme) && isPlainObject(raw.acme.eab) ? raw.acme.eab : {};
  const envKey = env[ENV.eabHmacKey];

  let hmacKey: string | undefined;
  // The environment wins over the file, as for every convict-managed setting.
  if (envKey !== undefined && envKey !== '') {
    hmacKey = envKey.trim();
  } else if (typeof keyFile === 'string') {
    if (rawEab.hmacKey !== undefined && rawEab.hmacKey !== null) {
      issues.add('acme.eab.hmacKey_file', 'give either hmacKey or hmacKey_file, not both');
      return undefined;
    }
    const secret = await readSecretFile(path.normalize(keyFile));
    if (!secret.ok) {
      issues.add('acme.eab.hmacKey_file', secret.message);
      return undefined;
    }
    if (!/^[A-Za-z0-9+/_-]+=*$/.test(secret.value)) {
      issues.add('acme.eab.hmacKey_file', `${keyFile} does not hold a base64url HMAC key`);
      return undefined;
    }
    hmacKey = secret.value;
  } else if (typeof inlineKey === 'string') {
    hmacKey = inlineKey.trim();
  }

  registerSecret(hmacKey);
  if (typeof keyId === 'string' && hmacKey === undefined) {
    issues.add(
      'acme.eab.hmacKey',
      `required when acme.eab.keyId is set (or hmacKey_file, or $${ENV.eabHmacKey})`,
    );
    return undefined;
  }
  if (keyId === null && hmacKey !== undefined) {
    issues.add('acme.eab.keyId', 'required when an EAB HMAC key is given');
    return undefined;
  }
  if (typeof keyId !== 'string' || hmacKey === undefined) return undefined;
  return { keyId: keyId.trim(), hmacKey };
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
  const issues = new IssueList();

  if (parsed !== null && parsed !== undefined && !isPlainObject(parsed)) {
    throw new ConfigError(
      [{ path: ROOT_PATH, message: `must be a mapping of sections, not ${describeType(parsed)}` }],
      file,
    );
  }
  // An empty file is a valid, all-defaults configuration.
  const raw: Record<string, unknown> = isPlainObject(parsed) ? parsed : {};
  checkForbiddenKeys(raw, '', issues);

  // Deploy, hooks, verification and alerts have their own parser (src/deploy/config.ts); the
  // convict schema covers the rest.
  const deployParsed = parseDeployConfig(raw, '');
  for (const i of deployParsed.issues) issues.add(i.path, i.message);
  for (const i of await checkDeploySecrets(deployParsed.value)) issues.add(i.path, i.message);
  // So do the monitoring sections `check` and `watch` (src/config/watch.ts).
  const check = parseCheckSection(raw.check, issues);
  const thresholds = check?.thresholds ?? DEFAULT_CHECK.thresholds;
  const watch = parseWatchSection(raw.watch, thresholds, issues);
  const ownParsers: readonly string[] = [...DEPLOY_ROOT_KEYS, ...CHECK_ROOT_KEYS];
  const convictRaw = Object.fromEntries(Object.entries(raw).filter(([k]) => !ownParsers.includes(k)));

  const schema = buildSchema();
  const shape = schemaShape(schema);
  const leafPaths = schemaLeaves(schema).map((l) => l.path);
  const pruned = pruneToShape(convictRaw, shape, '', issues);

  const conf = convict<Record<string, unknown>>(
    schema as unknown as convict.Schema<Record<string, unknown>>,
    {
      env,
      args: [], // never read process.argv: the CLI owns the command line
    },
  );
  try {
    conf.load(pruned);
    conf.validate({ allowed: 'strict' });
  } catch (e) {
    for (const issue of convictIssues((e as Error).message, leafPaths, shape, env))
      issues.add(issue.path, issue.message);
  }

  const get = (p: string): unknown => {
    try {
      return conf.get(p);
    } catch {
      return undefined;
    }
  };
  /** Normalises a leaf that convict accepted; a leaf with an issue yields the fallback. */
  const value = <T>(p: string, parse: (v: unknown) => T, fallback: T): T => {
    if (issues.hasAt(p)) return fallback;
    try {
      return parse(get(p));
    } catch (e) {
      issues.add(p, (e as Error).message);
      return fallback;
    }
  };
  const optional = <T>(p: string, parse: (v: unknown) => T): T | undefined => {
    const v = get(p);
    return v === null || v === undefined ? undefined : value<T | undefined>(p, parse, undefined);
  };
  const num = (p: string): number => {
    const v = get(p);
    return typeof v === 'number' ? v : 0;
  };

  // acme
  const directoryUrl = value('acme.directory', parseAcmeDirectory, ACME_DIRECTORY_PRESETS.letsencrypt);
  const email = optional('acme.email', parseEmail);
  const caBundle = optional('acme.caBundle', parseAbsolutePath);
  if (caBundle !== undefined) await checkCaBundle(caBundle, issues);
  const eab = await buildEab(get, raw, env, issues);
  const presetNeedingEab = EAB_REQUIRED_PRESETS.find((p) => ACME_DIRECTORY_PRESETS[p] === directoryUrl);
  if (presetNeedingEab && !eab && !issues.hasAt('acme.eab')) {
    issues.add(
      'acme.eab',
      `${presetNeedingEab} requires External Account Binding: set acme.eab.keyId and hmacKey`,
    );
  }
  const acme: AcmeSettings = {
    directoryUrl,
    ...(email !== undefined ? { email } : {}),
    termsAgreed: get('acme.termsAgreed') === true,
    ...(eab ? { eab } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    requestTimeoutMs: value('acme.requestTimeout', parseDuration, 0),
  };

  // defaults, then providers and certificates which depend on them
  const defaultKeyType = value<KeyType>('defaults.keyType', parseKeyType, DEFAULT_KEY_TYPE);
  const providers = await validateProviders(get('dns.providers'), env, issues);
  const certificates = validateCertificates(
    get('certificates'),
    { defaultKeyType, providerNames: providers.names, providers: providers.instances, thresholds },
    issues,
  );

  const config: AgentConfig = {
    source: file,
    acme,
    storage: {
      stateDir: value('storage.stateDir', parseAbsolutePath, ''),
      archiveDepth: num('storage.archiveDepth'),
    },
    renewal: {
      renewRatio: num('defaults.renewal.ratio'),
      shortLifetimeRatio: num('defaults.renewal.shortLifetimeRatio'),
      shortLifetimeDays: num('defaults.renewal.shortLifetimeDays'),
      maxOrdersPerWeek: num('defaults.renewal.maxOrdersPerWeek'),
    },
    defaultKeyType,
    concurrency: num('defaults.concurrency'),
    daemon: {
      checkIntervalMs: value('daemon.checkInterval', parseDuration, 0),
      ...(() => {
        const listen = value('daemon.listen', parseListen, undefined);
        return listen ? { listen } : {};
      })(),
    },
    dns: {
      resolvers: value('dns.resolvers', parseResolverList, []),
      nameserverPort: num('dns.nameserverPort'),
      queryTimeoutMs: value('dns.queryTimeout', parseDuration, 0),
      providers: providers.instances,
    },
    certificates,
    ...(check ? { check } : {}),
    ...(watch ? { watch } : {}),
  };

  if (issues.size > 0) throw new ConfigError(issues.toArray(), file);
  return deepFreeze(withDeployConfig(config, deployParsed.value) as AgentConfig);
}
