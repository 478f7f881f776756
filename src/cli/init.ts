import { constants } from 'node:fs';
import { link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { UsageError, describeError } from '../core/errors';
import type { CommandContext } from './context';

/**
 * `certpilot init`: writes a first configuration. On a terminal it asks; every answer is also a
 * flag, so automation runs it with `--yes` (or without a terminal) and no questions. The file is
 * validated exactly as `config check` would before it is put in place: a wrong answer gives the
 * loader's own message (with the field's path) and writes nothing.
 */

/** CA presets offered first; any https:// directory URL is accepted as well. */
const CA_CHOICES = ['letsencrypt', 'letsencrypt-staging', 'zerossl', 'google', 'buypass'];
const EAB_CAS = new Set(['zerossl', 'google']);
const DEPLOY_CHOICES = ['none', 'nginx'];
const DEFAULT_CONFIG_PATH = '/etc/certpilot/certpilot.yaml';

export interface InitAnswers {
  ca: string;
  caBundle?: string;
  eabKeyId?: string;
  eabHmacFile?: string;
  email?: string;
  termsAgreed: boolean;
  stateDir?: string;
  provider: string;
  providerOptions: Record<string, unknown>;
  name: string;
  domains: string[];
  outputDir?: string;
  deploy: string;
  endpoint?: string;
  /** Extra settings as dotted paths (`dns.nameserverPort=5353`), YAML values. */
  set: [string, string][];
}

/** The configuration document for the answers (pure; the loader validates it). */
export function buildConfig(a: InitAnswers): Record<string, unknown> {
  const acme: Record<string, unknown> = { directory: a.ca, termsAgreed: a.termsAgreed };
  if (a.email) acme.email = a.email;
  if (a.caBundle) acme.caBundle = a.caBundle;
  if (a.eabKeyId) acme.eab = { keyId: a.eabKeyId, hmacKey_file: a.eabHmacFile };
  const cert: Record<string, unknown> = { name: a.name, domains: a.domains, dns: { provider: a.provider } };
  if (a.outputDir) {
    cert.outputs = [
      {
        fullchain: path.join(a.outputDir, `${a.name}.fullchain.pem`),
        key: path.join(a.outputDir, `${a.name}.key`),
      },
    ];
  }
  if (a.deploy === 'nginx') cert.deploy = [{ type: 'nginx' }];
  if (a.endpoint) cert.endpoints = [a.endpoint];
  const doc: Record<string, unknown> = {
    acme,
    ...(a.stateDir ? { storage: { stateDir: a.stateDir } } : {}),
    dns: { providers: { [a.provider]: { ...a.providerOptions } } },
    certificates: [cert],
  };
  for (const [key, value] of a.set) setPath(doc, key, value);
  return doc;
}

function setPath(doc: Record<string, unknown>, dotted: string, raw: string): void {
  const keys = dotted.split('.');
  if (keys.some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) {
    throw new UsageError(`certpilot init: --set ${dotted}: a dotted path of config keys is expected`);
  }
  let node = doc;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    node = (typeof next === 'object' && next !== null ? next : (node[k] = {})) as Record<string, unknown>;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  node[keys[keys.length - 1]!] = (require('yaml') as typeof import('yaml')).parse(raw) as unknown;
}

type Ask = (question: string, fallback?: string) => Promise<string>;

function list(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

function pairs(values: readonly string[], flag: string): [string, string][] {
  return values.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`certpilot init: ${flag} ${kv}: expected KEY=VALUE`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  });
}

/** Collects the answers from flags, asking for what is missing when `ask` is given. */
export async function collectAnswers(
  flags: CommandContext['flags'] & Record<string, unknown>,
  ask: Ask | undefined,
): Promise<InitAnswers> {
  const missing: string[] = [];
  const need = async (flag: string, question: string, fallback?: string): Promise<string> => {
    const given = flags[flag];
    if (typeof given === 'string' && given !== '') return given;
    if (ask) return (await ask(question, fallback)).trim() || fallback || '';
    if (fallback !== undefined) return fallback;
    missing.push(`--${flag}`);
    return '';
  };
  const ca = await need('ca', `ACME CA (${CA_CHOICES.join(', ')}, or an https:// URL)`, 'letsencrypt');
  const email = await need('email', 'Contact email for the ACME account (empty for none)', '');
  let termsAgreed = flags['agree-tos'] === true;
  if (!termsAgreed && ask)
    termsAgreed = /^y(es)?$/i.test(await ask(`Do you agree to the CA's terms of service? (yes/no)`, 'no'));
  let eabKeyId: string | undefined;
  let eabHmacFile: string | undefined;
  if (EAB_CAS.has(ca)) {
    eabKeyId = await need('eab-kid', `${ca} needs External Account Binding: key id`);
    eabHmacFile = await need('eab-hmac-file', 'Path of the file holding the EAB HMAC key (mode 0600)');
  }
  const provider = await need('provider', 'DNS provider (rfc2136, route53, cloudflare, exec)', 'rfc2136');
  const providerOptions = await providerAnswers(provider, flags, ask, missing);
  const name = await need('name', 'Name of the first certificate (file-name safe, e.g. www-example-com)');
  let domains = list(flags.domain);
  if (domains.length === 0 && ask) {
    domains = (await ask('Domain names, separated by spaces (the first is the subject)'))
      .split(/[\s,]+/)
      .filter(Boolean);
  }
  if (domains.length === 0 && !ask) missing.push('--domain');
  const outputDir = await need(
    'output-dir',
    'Also copy the certificate and key to a directory (empty for no)',
    '',
  );
  const deploy = await need('deploy', `Deploy target after renewal (${DEPLOY_CHOICES.join(', ')})`, 'none');
  const endpoint = await need(
    'endpoint',
    'TLS endpoint that must serve the new certificate, host:port (empty for none)',
    '',
  );
  if (missing.length > 0) {
    throw new UsageError(
      `certpilot init: without a terminal every answer is a flag; missing: ${missing.join(', ')}`,
    );
  }
  if (!DEPLOY_CHOICES.includes(deploy)) {
    throw new UsageError(
      `certpilot init: --deploy must be one of ${DEPLOY_CHOICES.join(', ')} (got "${deploy}")`,
    );
  }
  const caBundle = typeof flags['ca-bundle'] === 'string' ? flags['ca-bundle'] : undefined;
  const stateDir = typeof flags['state-dir'] === 'string' ? flags['state-dir'] : undefined;
  return {
    ca,
    ...(caBundle ? { caBundle } : {}),
    ...(eabKeyId ? { eabKeyId, eabHmacFile } : {}),
    ...(email ? { email } : {}),
    termsAgreed,
    ...(stateDir ? { stateDir } : {}),
    provider,
    providerOptions,
    name,
    domains,
    ...(outputDir ? { outputDir } : {}),
    deploy,
    ...(endpoint ? { endpoint } : {}),
    set: pairs(list(flags.set), '--set'),
  };
}

/**
 * Provider options: `--provider-option KEY=VALUE` (secrets as `KEY_file=PATH`); on a terminal
 * the provider's required options are asked for, secrets always as a file path, never the
 * secret itself (it would sit in the shell history and the process list).
 */
async function providerAnswers(
  provider: string,
  flags: Record<string, unknown>,
  ask: Ask | undefined,
  missing: string[],
): Promise<Record<string, unknown>> {
  const { findProvider } = await import('../dns/registry');
  const def = findProvider(provider);
  if (!def)
    throw new UsageError(`certpilot init: unknown DNS provider "${provider}" (see certpilot providers)`);
  const options: Record<string, string> = { type: def.code };
  for (const [k, v] of pairs(list(flags['provider-option']), '--provider-option')) options[k] = v;
  const typed = (key: string, raw: string): unknown => {
    const format = def.options[key]?.format;
    if ((format === 'port' || format === 'nat') && /^\d+$/.test(raw)) return Number(raw);
    if (format === 'boolean' && /^(true|false)$/.test(raw)) return raw === 'true';
    if (format === 'string-list')
      return raw
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
    return raw;
  };
  for (const [key, spec] of Object.entries(def.options)) {
    if (!spec.required || key in options || `${key}_file` in options || `${key}_env` in options) continue;
    if (!ask) {
      missing.push(`--provider-option ${spec.sensitive ? `${key}_file=PATH` : `${key}=VALUE`}`);
      continue;
    }
    if (spec.sensitive) {
      options[`${key}_file`] = (
        await ask(`${def.code} ${key}: path of the file holding it (mode 0600)`)
      ).trim();
    } else {
      options[key] = (await ask(`${def.code} ${key} (${spec.doc.replace(/\.$/, '')})`)).trim();
    }
  }
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [k, typed(k, v)]));
}

/** A new file beside `target` (O_EXCL, never through a symlink), mode 0640, synced; its path. */
async function writeTemp(target: string, text: string): Promise<string> {
  await mkdir(path.dirname(target), { recursive: true, mode: 0o750 });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.init-${process.pid}.yaml`);
  const fh = await open(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o640,
  );
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

/** Puts `tmp` in place: link() fails when the target exists, so there is no check-then-write race. */
async function publish(tmp: string, target: string, force: boolean): Promise<void> {
  try {
    if (force) await rename(tmp, target);
    else await link(tmp, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(`certpilot init: ${target} exists; keep it, or pass --force to replace it`);
    }
    throw err;
  }
}

function terminalAsk(ctx: CommandContext): { ask: Ask; close: () => void } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const readline = require('node:readline') as typeof import('node:readline');
  const out = ctx.stdout as NodeJS.WritableStream;
  const rl = readline.createInterface({ input: process.stdin, output: out });
  // Lines are read through one iterator, so answers typed (or pasted) ahead are kept in order.
  const lines = rl[Symbol.asyncIterator]();
  return {
    ask: async (q, fallback) => {
      out.write(fallback ? `${q} [${fallback}]: ` : `${q}: `);
      const next = await lines.next();
      if (next.done) throw new UsageError('certpilot init: input ended before every question was answered');
      return next.value as string;
    },
    close: () => rl.close(),
  };
}

export async function initCommand(ctx: CommandContext): Promise<number> {
  const target = path.resolve(ctx.global.config ?? DEFAULT_CONFIG_PATH);
  const flags = ctx.flags as Record<string, unknown>;
  if (flags.force !== true && (await stat(target).catch(() => null))) {
    throw new UsageError(`certpilot init: ${target} exists; keep it, or pass --force to replace it`);
  }
  const interactive = process.stdin.isTTY === true && flags.yes !== true;
  const term = interactive ? terminalAsk(ctx) : undefined;
  let answers: InitAnswers;
  try {
    answers = await collectAnswers(ctx.flags, term?.ask);
  } finally {
    term?.close();
  }
  const text =
    '# Written by `certpilot init`. Reference: docs/configuration.md; check with `certpilot config check`.\n' +
    stringify(buildConfig(answers));
  // The file is validated where it will live, under a temporary name: a config that
  // `config check` refuses is never put in place.
  const tmp = await writeTemp(target, text);
  try {
    try {
      const { loadConfig } = await import('../config/load');
      await loadConfig({ path: tmp });
    } catch (err) {
      // The loader's own message, naming the field; the temporary name replaced by the target's.
      throw new UsageError((err instanceof Error ? err.message : describeError(err)).split(tmp).join(target));
    }
    await publish(tmp, target, flags.force === true);
  } finally {
    await rm(tmp, { force: true });
  }
  ctx.stdout.write(
    `wrote ${target} (config check: valid)\n` +
      `next: certpilot renew --dry-run --config ${target}   (then: certpilot renew, or systemctl enable --now certpilot)\n`,
  );
  return 0;
}
