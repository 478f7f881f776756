import { promises as fs } from 'node:fs';
import { registerSecret } from '../core/redact';
import { duration, listOf, mapping, optional, required, secretRef, text } from './combinators';
import {
  ACME_DIRECTORY_PRESETS,
  EAB_REQUIRED_PRESETS,
  parseAbsolutePath,
  parseAcmeDirectory,
  parseBoolean,
  parseEmail,
} from './formats';
import { childPath, isPlainObject, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import { ENV, HMAC_KEY, type LeafValues } from './schema';
import { readSecretFileAt } from './secrets';
import type { AcmeSettings, EabSettings, SecretOrigin } from './types';

/**
 * The `acme:` section. Its leaves are schema leaves (validated by readLeaves); what is checked
 * here spans leaves or reaches the disk: the CA bundle's content, the EAB key id and HMAC key
 * as a pair (inline, `hmacKey_file` or the environment), and CAs that require EAB.
 */

async function checkCaBundle(file: string, issues: IssueList, at = 'acme.caBundle'): Promise<void> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) {
      issues.add(at, `${file} is not a regular file`);
      return;
    }
    const pem = await fs.readFile(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) issues.add(at, `${file} holds no PEM certificate`);
  } catch (e) {
    issues.add(at, `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

interface FoundKey {
  readonly key: string;
  readonly origin?: SecretOrigin;
}

/** The HMAC key from the environment, the file or the document, in that order; undefined = none or a problem. */
async function findHmacKey(
  values: LeafValues,
  rawEab: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<FoundKey | undefined> {
  const envKey = env[ENV.eabHmacKey];
  // The environment wins over the file, as for every convict-managed setting.
  if (envKey !== undefined && envKey !== '') return { key: envKey.trim(), origin: { env: ENV.eabHmacKey } };
  const keyFile = values.get('acme.eab.hmacKey_file');
  if (keyFile === undefined) {
    const inline = values.get('acme.eab.hmacKey');
    return inline === undefined ? undefined : { key: inline };
  }
  if (rawEab.hmacKey !== undefined && rawEab.hmacKey !== null) {
    issues.add('acme.eab.hmacKey_file', 'give either hmacKey or hmacKey_file, not both');
    return undefined;
  }
  const secret = await readSecretFileAt(keyFile, 'acme.eab.hmacKey_file', issues);
  if (secret === undefined) return undefined;
  if (HMAC_KEY.test(secret)) return { key: secret, origin: { file: keyFile } };
  issues.add('acme.eab.hmacKey_file', `${keyFile} does not hold a base64url HMAC key`);
  return undefined;
}

async function parseEab(
  values: LeafValues,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<EabSettings | undefined> {
  if (issues.hasAt('acme.eab')) return undefined;
  const rawEab = isPlainObject(raw.acme) && isPlainObject(raw.acme.eab) ? raw.acme.eab : {};
  const keyId = values.get('acme.eab.keyId');
  const before = issues.size;
  const found = await findHmacKey(values, rawEab, env, issues);
  const hmacKey = found?.key;
  registerSecret(hmacKey);
  if (issues.size > before) return undefined;
  if (keyId !== undefined && hmacKey === undefined) {
    issues.add(
      'acme.eab.hmacKey',
      `required when acme.eab.keyId is set (or hmacKey_file, or $${ENV.eabHmacKey})`,
    );
    return undefined;
  }
  if (keyId === undefined && hmacKey !== undefined) {
    issues.add('acme.eab.keyId', 'required when an EAB HMAC key is given');
    return undefined;
  }
  if (keyId === undefined || hmacKey === undefined) return undefined;
  return { keyId, hmacKey, ...(found?.origin ? { hmacKeyOrigin: found.origin } : {}) };
}

export async function parseAcme(
  values: LeafValues,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<AcmeSettings> {
  const directoryUrl = values.get('acme.directory') ?? ACME_DIRECTORY_PRESETS.letsencrypt;
  const email = values.get('acme.email');
  const caBundle = values.get('acme.caBundle');
  const preferredChain = values.get('acme.preferredChain')?.trim();
  const caaIdentities = parseCaaIdentities(values.get('acme.caaIdentities'), issues);
  if (caBundle !== undefined) await checkCaBundle(caBundle, issues);
  const eab = await parseEab(values, raw, env, issues);
  checkEabRequired(directoryUrl, eab, 'acme', issues);
  const primary: AcmeSettings = {
    directoryUrl,
    ...(email !== undefined ? { email } : {}),
    termsAgreed: values.get('acme.termsAgreed') === true,
    ...(eab ? { eab } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(preferredChain ? { preferredChain } : {}),
    ...(caaIdentities.length > 0 ? { caaIdentities } : {}),
    requestTimeoutMs: values.get('acme.requestTimeout') ?? 0,
  };
  const fallback = await parseFallbacks(values.get('acme.fallback'), primary, issues);
  return fallback.length > 0 ? { ...primary, fallback } : primary;
}

/** CAs that bind accounts to an external one refuse newAccount without EAB: say so at load. */
function checkEabRequired(
  directoryUrl: string,
  eab: EabSettings | undefined,
  base: string,
  issues: IssueList,
): void {
  const preset = EAB_REQUIRED_PRESETS.find((p) => ACME_DIRECTORY_PRESETS[p] === directoryUrl);
  const at = childPath(base, 'eab');
  if (preset && !eab && !issues.hasAt(at))
    issues.add(at, `${preset} requires External Account Binding: set ${at}.keyId and hmacKey`);
}

/** `acme.caaIdentities`: domain names, lower-case (CAA issuer domains compare case-insensitively). */
function parseCaaIdentities(
  raw: readonly unknown[] | undefined,
  issues: IssueList,
  at = 'acme.caaIdentities',
): string[] {
  const out: string[] = [];
  for (const [i, v] of (raw ?? []).entries()) {
    if (typeof v === 'string' && /^[A-Za-z0-9.-]+$/.test(v.trim())) out.push(v.trim().toLowerCase());
    else issues.add(childPath(at, i), 'must be a domain name such as letsencrypt.org');
  }
  return out;
}

// ---- acme.fallback[] ----------------------------------------------------------------------------

/** The keys of an `acme.fallback[]` entry: the primary's per-CA options, for another CA. */
export const FALLBACK_KEY_DOCS: KeyDocs = {
  directory: {
    type: 'preset or https:// URL',
    default: 'required',
    doc: "This CA's ACME directory, as for `acme.directory`; another CA than the primary and the other entries.",
  },
  email: { type: 'e-mail address', default: '`acme.email`', doc: "Contact of this CA's account." },
  termsAgreed: {
    type: 'boolean',
    default: '`false`',
    doc: "Agree to this CA's terms of service; its account is registered on first use (not inherited: another CA, other terms).",
  },
  eab: {
    type: 'mapping',
    doc: "`keyId` and `hmacKey` (or `hmacKey_file`) of this CA's External Account Binding, as for `acme.eab` (no environment variables).",
  },
  caBundle: {
    type: 'absolute path',
    default: '`acme.caBundle`',
    doc: "PEM file of extra CA certificates to trust for this CA's ACME server.",
  },
  preferredChain: { type: 'string', doc: 'As for `acme.preferredChain`, for this CA.' },
  caaIdentities: {
    type: 'list of domain names',
    default: "the directory's",
    doc: "This CA's issuer domains as CAA records name them, when its directory publishes none; a CA whose CAA permission cannot be told is not failed over to.",
  },
  requestTimeout: {
    type: 'duration',
    default: '`acme.requestTimeout`',
    doc: 'Timeout of one HTTP request to this CA.',
  },
};
export const FALLBACK_KEYS: readonly string[] = Object.keys(FALLBACK_KEY_DOCS);
const FALLBACK_EAB_KEYS = ['keyId', 'hmacKey', 'hmacKey_file'];

/** `acme.fallback`: each entry through the primary's value parsers, at its own path. */
async function parseFallbacks(
  raw: unknown,
  primary: AcmeSettings,
  issues: IssueList,
): Promise<AcmeSettings[]> {
  const pending = listOf(raw, 'acme.fallback', issues, (item, at) =>
    parseFallback(item, at, primary, issues),
  );
  const out: AcmeSettings[] = [];
  const seen = new Set([primary.directoryUrl]);
  for (const [i, entry] of pending.entries()) {
    const ca = await entry;
    if (!ca) continue;
    if (seen.has(ca.directoryUrl)) {
      issues.add(`acme.fallback[${i}].directory`, `${ca.directoryUrl} is already configured above`);
      continue;
    }
    seen.add(ca.directoryUrl);
    out.push(ca);
  }
  return out;
}

async function parseFallback(
  item: unknown,
  at: string,
  primary: AcmeSettings,
  issues: IssueList,
): Promise<AcmeSettings | undefined> {
  const m = mapping(item, at, issues, { keys: FALLBACK_KEYS, what: 'a mapping with a directory' });
  if (!m) return undefined;
  const directoryUrl = required(
    m,
    'directory',
    at,
    issues,
    parseAcmeDirectory,
    "required: the CA's ACME directory",
  );
  const email = optional(m, 'email', at, issues, parseEmail) ?? primary.email;
  const termsAgreed = optional(m, 'termsAgreed', at, issues, parseBoolean) ?? false;
  const caBundle = optional(m, 'caBundle', at, issues, parseAbsolutePath) ?? primary.caBundle;
  const preferredChain = optional(m, 'preferredChain', at, issues, text)?.trim();
  const timeout = optional(m, 'requestTimeout', at, issues, duration);
  const rawIds = m.caaIdentities;
  const caaIdentities = Array.isArray(rawIds)
    ? parseCaaIdentities(rawIds, issues, childPath(at, 'caaIdentities'))
    : [];
  if (rawIds !== undefined && rawIds !== null && !Array.isArray(rawIds))
    issues.add(childPath(at, 'caaIdentities'), 'must be a list of domain names');
  if (timeout !== undefined && timeout < 1_000)
    issues.add(childPath(at, 'requestTimeout'), 'must be at least 1s');
  const eab = await parseFallbackEab(m.eab, childPath(at, 'eab'), issues);
  if (caBundle !== undefined && caBundle !== primary.caBundle)
    await checkCaBundle(caBundle, issues, childPath(at, 'caBundle'));
  if (directoryUrl === undefined || issues.hasAt(at)) return undefined;
  checkEabRequired(directoryUrl, eab, at, issues);
  return {
    directoryUrl,
    ...(email !== undefined ? { email } : {}),
    termsAgreed,
    ...(eab ? { eab } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(preferredChain ? { preferredChain } : {}),
    ...(caaIdentities.length > 0 ? { caaIdentities } : {}),
    requestTimeoutMs: timeout ?? primary.requestTimeoutMs,
  };
}

/** A fallback entry's `eab`: key id and HMAC key (inline or `hmacKey_file`, read now as the primary's is). */
async function parseFallbackEab(
  raw: unknown,
  at: string,
  issues: IssueList,
): Promise<EabSettings | undefined> {
  const m = mapping(raw, at, issues, { keys: FALLBACK_EAB_KEYS });
  if (!m) return undefined;
  const keyId = required(m, 'keyId', at, issues, text, 'required with an EAB HMAC key');
  const ref = secretRef(m, 'hmacKey', at, issues);
  if (!ref) {
    if (!issues.hasAt(childPath(at, 'hmacKey')))
      issues.add(childPath(at, 'hmacKey'), 'required (or hmacKey_file)');
    return undefined;
  }
  const keyAt = childPath(at, 'file' in ref ? 'hmacKey_file' : 'hmacKey');
  const key = 'file' in ref ? await readSecretFileAt(ref.file, keyAt, issues) : ref.value;
  if (key === undefined || keyId === undefined) return undefined;
  if (!HMAC_KEY.test(key.trim())) {
    issues.add(keyAt, 'must be the base64url HMAC key the CA issued');
    return undefined;
  }
  registerSecret(key.trim());
  return { keyId, hmacKey: key.trim(), ...('file' in ref ? { hmacKeyOrigin: { file: ref.file } } : {}) };
}
