import type { ConfigIssue } from '../core/errors';
import {
  bool,
  duration,
  knownKeys,
  listOf,
  mapping,
  oneOf,
  optional,
  secretRef,
  text,
  valueAt,
  type ValueParser,
} from './combinators';
import {
  DEFAULT_HOOK_TIMEOUT_MS,
  DEFAULT_NGINX_RELOAD,
  DEFAULT_NGINX_TEST,
  DEFAULT_SIGNATURE_HEADER,
  DEFAULT_WEBHOOK_RETRIES,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
} from './defaults';
import { parseEndpoint } from './endpoints';
import { parseCredentialUrl } from './formats';
import type { KeyDocs } from './key-docs';
import { COMMAND_KEY_DOCS, COMMAND_KEYS, parseCommand, parseCommands, parseHooks, stringMap } from './hooks';
import { childPath, isPlainObject, IssueList } from './issues';
import { parseNotify, parseRetries, parseSignatureHeader } from './notify';
import { readSecretFileAt } from './secrets';
import type {
  AgentConfig,
  CertificateDeploySpec,
  CommandSpec,
  DeployAwareConfig,
  DeploySettings,
  DeployStep,
  ParsedDeployConfig,
  SecretRef,
} from './types';
import { parseVerify } from './verify';

/**
 * Everything after `store.install`: the root `hooks`, `notify` and `verify` sections and each
 * certificate's `endpoints`, `hooks`, `deploy` and `rollback`. Pure (no I/O but the early
 * secret-file check); unknown keys are errors (a misspelt `rollback` must not silently leave
 * rollback on). The result extends AgentConfig / CertificateSpec.
 */

/**
 * Keys parsed here: the loader keeps the root ones away from convict; the certificate parser
 * allows the per-certificate ones and hands the entry to certificateDeploy.
 */
export const DEPLOY_ROOT_KEYS = ['hooks', 'notify', 'verify'] as const;
export const DEPLOY_CERTIFICATE_KEYS = ['endpoints', 'hooks', 'deploy', 'rollback'] as const;

export const STEP_KEYS: Record<DeployStep['type'], readonly string[]> = {
  nginx: ['type', 'name', 'push', 'test', 'reload', 'timeout'],
  systemd: ['type', 'name', 'unit', 'action', 'systemctl', 'timeout'],
  webhook: [
    'type',
    'name',
    'url',
    'secret',
    'secret_file',
    'signatureHeader',
    'headers',
    'retries',
    'timeout',
    'includeCertificate',
  ],
  command: ['type', 'name', ...COMMAND_KEYS],
};
export const DEPLOY_CERTIFICATE_KEY_DOCS: KeyDocs = {
  endpoints: {
    type: 'list of endpoints',
    default: '`[]`',
    doc: 'TLS endpoints that serve this certificate: verified after deploy, probed by `check`.',
  },
  hooks: { type: 'hooks', default: 'none', doc: "This certificate's `pre`, `deploy` and `post` commands." },
  deploy: { type: 'list of steps', default: '`[]`', doc: 'Deploy steps, in order (below).' },
  rollback: {
    type: 'boolean',
    default: '`true` with endpoints',
    doc: 'Restore the previous certificate when deploy or verification fails; needs endpoints.',
  },
};

/** Keys of every deploy step, whatever its type; the type's own keys are STEP_TYPE_KEY_DOCS. */
export const STEP_COMMON_KEY_DOCS: KeyDocs = {
  type: {
    type: '`nginx` \\| `systemd` \\| `webhook` \\| `command`',
    default: 'required',
    doc: 'What the step does.',
  },
  name: { type: 'string', doc: 'Name in logs and reports.' },
  timeout: {
    type: 'duration',
    default: '`1m` (webhook `10s`)',
    doc: 'Timeout of the step (default of its commands).',
  },
};

export const STEP_TYPE_KEY_DOCS: Readonly<Record<DeployStep['type'], KeyDocs>> = {
  nginx: {
    push: {
      type: 'list of commands',
      default: '`[]`',
      doc: 'Run before the test: e.g. copy files to another host.',
    },
    test: {
      type: 'command',
      default: 'the reload unit',
      doc: 'Configuration test; default: the root-run certpilot-reload-nginx.path tests and reloads.',
    },
    reload: { type: 'command', default: 'the reload unit', doc: 'Reload nginx.' },
  },
  systemd: {
    unit: { type: 'unit name', default: 'required', doc: 'The unit to reload or restart.' },
    action: { type: '`reload` \\| `restart`', default: '`reload`', doc: 'What to do with it.' },
    systemctl: { type: 'program', default: '`systemctl`', doc: 'The systemctl to run (found in PATH).' },
  },
  webhook: {
    url: { type: 'https URL', default: 'required', doc: 'Receiver; `http://` only to this host.' },
    secret: { type: 'string, **secret**', doc: 'HMAC-SHA256 key signing the body; or `secret_file`.' },
    secret_file: { type: 'absolute path', doc: 'File holding `secret` (mode 0600).' },
    signatureHeader: {
      type: 'header name',
      default: '`X-Certpilot-Signature`',
      doc: 'Header carrying the HMAC.',
    },
    headers: { type: 'mapping', default: '`{}`', doc: 'Extra HTTP headers.' },
    retries: { type: 'integer 0..10', default: '`2`', doc: 'Retries after a failed delivery.' },
    includeCertificate: {
      type: 'boolean',
      default: '`false`',
      doc: 'Send the PEM certificate chain in the body (never the key).',
    },
  },
  command: { ...COMMAND_KEY_DOCS },
};

const STEP_TYPES = Object.keys(STEP_KEYS) as DeployStep['type'][];
const parseStepType = oneOf(STEP_TYPES, `must be one of ${STEP_TYPES.join(', ')}`);
const parseAction = oneOf(['reload', 'restart'] as const, 'must be reload or restart');
/** The program, found in PATH; a test bench may point it at a stub. */
const DEFAULT_SYSTEMCTL = 'systemctl';

const parseUnit: ValueParser<string> = (v) => {
  const s = text(v);
  // systemd unit names: no slashes, no leading dash (it would read as an option).
  if (!/^[A-Za-z0-9:_.\\@-]+$/.test(s) || s.startsWith('-'))
    throw new Error(`${JSON.stringify(s)} is not a unit name`);
  return s;
};

type StepFields = { readonly name?: string; readonly timeoutMs: number };
type StepParser = (
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  f: StepFields,
) => DeployStep | undefined;

function nginxStep(
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  f: StepFields,
): DeployStep | undefined {
  const { timeoutMs } = f;
  const command = (key: string, argv: readonly string[]): CommandSpec | undefined =>
    m[key] === undefined
      ? { argv, timeoutMs, env: {} }
      : parseCommand(m[key], childPath(path, key), issues, timeoutMs);
  const test = command('test', DEFAULT_NGINX_TEST);
  const reload = command('reload', DEFAULT_NGINX_RELOAD);
  const push = parseCommands(m.push, childPath(path, 'push'), issues, timeoutMs);
  return test && reload ? { type: 'nginx', ...named(f), push, test, reload } : undefined;
}

function systemdStep(
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  f: StepFields,
): DeployStep | undefined {
  const unit = valueAt(m.unit, childPath(path, 'unit'), issues, parseUnit);
  const action = valueAt(m.action ?? 'reload', childPath(path, 'action'), issues, parseAction);
  const systemctl = optional(m, 'systemctl', path, issues, text) ?? DEFAULT_SYSTEMCTL;
  if (unit === undefined || action === undefined) return undefined;
  return { type: 'systemd', ...named(f), unit, action, systemctl, timeoutMs: f.timeoutMs };
}

function webhookStep(
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  f: StepFields,
): DeployStep | undefined {
  const url = valueAt(m.url, childPath(path, 'url'), issues, parseCredentialUrl);
  const secret = secretRef(m, 'secret', path, issues);
  const signatureHeader =
    optional(m, 'signatureHeader', path, issues, parseSignatureHeader) ?? DEFAULT_SIGNATURE_HEADER;
  const headers = stringMap(m.headers, childPath(path, 'headers'), issues, 'header');
  const retries = optional(m, 'retries', path, issues, parseRetries) ?? DEFAULT_WEBHOOK_RETRIES;
  const includeCertificate = optional(m, 'includeCertificate', path, issues, bool) ?? false;
  if (url === undefined) return undefined;
  return {
    type: 'webhook',
    ...named(f),
    url,
    ...(secret ? { secret } : {}),
    signatureHeader,
    headers,
    retries,
    // A webhook's own default: a receiver is slower to give up on than a local reload.
    timeoutMs: optional(m, 'timeout', path, issues, duration) ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
    includeCertificate,
  };
}

function commandStep(
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  f: StepFields,
): DeployStep | undefined {
  const { type: _t, name: _n, ...rest } = m;
  const command = parseCommand(rest, path, issues, DEFAULT_HOOK_TIMEOUT_MS);
  return command ? { type: 'command', ...named(f), command } : undefined;
}

const STEP_PARSERS: Record<DeployStep['type'], StepParser> = {
  nginx: nginxStep,
  systemd: systemdStep,
  webhook: webhookStep,
  command: commandStep,
};

function named(f: StepFields): { name?: string } {
  return f.name !== undefined ? { name: f.name } : {};
}

/** One `deploy[]` step: a mapping whose `type` decides the other keys. */
function parseStep(raw: unknown, path: string, issues: IssueList): DeployStep | undefined {
  const m = mapping(raw, path, issues, { missing: 'must be a mapping with a type' });
  if (!m) return undefined;
  const type = valueAt(m.type, childPath(path, 'type'), issues, parseStepType);
  if (type === undefined) return undefined;
  knownKeys(m, STEP_KEYS[type], path, issues);
  const before = issues.size;
  const name = optional(m, 'name', path, issues, text);
  const timeoutMs = optional(m, 'timeout', path, issues, duration) ?? DEFAULT_HOOK_TIMEOUT_MS;
  const parsed = STEP_PARSERS[type](m, path, issues, { name, timeoutMs });
  return issues.size > before ? undefined : parsed;
}

/** The per-certificate keys of one raw certificate mapping (`certificates[i]`). */
export function certificateDeploy(
  raw: Record<string, unknown>,
  path: string,
  issues: IssueList,
): CertificateDeploySpec {
  const endpoints = listOf(raw.endpoints, childPath(path, 'endpoints'), issues, (e, p) =>
    parseEndpoint(e, p, issues),
  );
  const hooks = parseHooks(raw.hooks, childPath(path, 'hooks'), issues);
  const deploy = listOf(raw.deploy, childPath(path, 'deploy'), issues, (s, p) => parseStep(s, p, issues));
  const rollback = optional(raw, 'rollback', path, issues, bool);
  if (rollback === true && endpoints.length === 0) {
    // Without endpoints nothing can confirm the restored certificate is served again.
    issues.add(childPath(path, 'rollback'), 'needs endpoints to verify the restored certificate against');
  }
  return { endpoints, hooks, deploy, rollback: rollback ?? endpoints.length > 0 };
}

/** The root `hooks`, `notify` and `verify` sections. */
export function parseDeploySettings(
  root: Record<string, unknown>,
  path: string,
  issues: IssueList,
): DeploySettings {
  return {
    hooks: parseHooks(root.hooks, childPath(path, 'hooks'), issues),
    notify: parseNotify(root.notify, childPath(path, 'notify'), issues),
    verify: parseVerify(root.verify, childPath(path, 'verify'), issues),
  };
}

/**
 * Parses the deploy-related parts of a whole raw config document on its own (the loader calls
 * the section parsers directly). `path` prefixes every issue path ('' for the document root).
 */
export function parseDeployConfig(
  raw: unknown,
  path: string,
): { value: ParsedDeployConfig; issues: ConfigIssue[] } {
  const issues = new IssueList();
  const root = isPlainObject(raw) ? raw : {};
  const settings = parseDeploySettings(root, path, issues);
  const certificates: Record<string, CertificateDeploySpec> = {};
  const certs = Array.isArray(root.certificates) ? root.certificates : [];
  certs.forEach((c: unknown, i) => {
    if (!isPlainObject(c)) return; // the certificate parser reports it
    const spec = certificateDeploy(c, childPath(childPath(path, 'certificates'), i), issues);
    if (typeof c.name === 'string') certificates[c.name] = spec;
  });
  return { value: { settings, certificates }, issues: [...issues.toArray()] };
}

/** Merges a parse result into a loaded config (by certificate name). */
export function withDeployConfig(config: AgentConfig, parsed: ParsedDeployConfig): DeployAwareConfig {
  return {
    ...config,
    ...parsed.settings,
    certificates: config.certificates.map((spec) => ({ ...spec, ...(parsed.certificates[spec.name] ?? {}) })),
  };
}

/**
 * Early check for the loader: every secret file named by the deploy sections is readable and
 * private (they are read again at use time, so a rotated secret is picked up). Certificates
 * are re-parsed from the raw list, so an entry with other problems still has its files checked.
 */
export async function checkDeploySecretFiles(
  settings: DeploySettings,
  rawCertificates: unknown,
  issues: IssueList,
): Promise<void> {
  const checks: { ref: SecretRef | undefined; path: string }[] = [];
  settings.notify.webhooks.forEach((w, i) =>
    checks.push({ ref: w.secret, path: `notify.webhooks[${i}].secret_file` }),
  );
  checks.push({ ref: settings.notify.email?.password, path: 'notify.email.password_file' });
  (Array.isArray(rawCertificates) ? rawCertificates : []).forEach((c: unknown, ci) => {
    if (!isPlainObject(c)) return;
    const base = childPath('certificates', ci);
    // Problems were reported by the certificate parser; only the secret references matter here.
    certificateDeploy(c, base, new IssueList()).deploy.forEach((s, i) => {
      if (s.type === 'webhook') checks.push({ ref: s.secret, path: `${base}.deploy[${i}].secret_file` });
    });
  });
  for (const { ref, path } of checks)
    if (ref && 'file' in ref) await readSecretFileAt(ref.file, path, issues);
}
