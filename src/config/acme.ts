import { promises as fs } from 'node:fs';
import { registerSecret } from '../core/redact';
import { ACME_DIRECTORY_PRESETS, EAB_REQUIRED_PRESETS } from './formats';
import { isPlainObject, type IssueList } from './issues';
import { ENV, HMAC_KEY, type LeafValues } from './schema';
import { readSecretFileAt } from './secrets';
import type { AcmeSettings, EabSettings, SecretOrigin } from './types';

/**
 * The `acme:` section. Its leaves are schema leaves (validated by readLeaves); what is checked
 * here spans leaves or reaches the disk: the CA bundle's content, the EAB key id and HMAC key
 * as a pair (inline, `hmacKey_file` or the environment), and CAs that require EAB.
 */

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
  const presetNeedingEab = EAB_REQUIRED_PRESETS.find((p) => ACME_DIRECTORY_PRESETS[p] === directoryUrl);
  if (presetNeedingEab && !eab && !issues.hasAt('acme.eab')) {
    issues.add(
      'acme.eab',
      `${presetNeedingEab} requires External Account Binding: set acme.eab.keyId and hmacKey`,
    );
  }
  return {
    directoryUrl,
    ...(email !== undefined ? { email } : {}),
    termsAgreed: values.get('acme.termsAgreed') === true,
    ...(eab ? { eab } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(preferredChain ? { preferredChain } : {}),
    ...(caaIdentities.length > 0 ? { caaIdentities } : {}),
    requestTimeoutMs: values.get('acme.requestTimeout') ?? 0,
  };
}

/** `acme.caaIdentities`: domain names, lower-case (CAA issuer domains compare case-insensitively). */
function parseCaaIdentities(raw: readonly unknown[] | undefined, issues: IssueList): string[] {
  const out: string[] = [];
  for (const [i, v] of (raw ?? []).entries()) {
    if (typeof v === 'string' && /^[A-Za-z0-9.-]+$/.test(v.trim())) out.push(v.trim().toLowerCase());
    else issues.add(`acme.caaIdentities[${i}]`, 'must be a domain name such as letsencrypt.org');
  }
  return out;
}
