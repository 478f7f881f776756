import { createPublicKey } from 'node:crypto';
import path from 'node:path';
import type { StoredAccount } from '../acme/account';
import type { CertInfo } from '../x509';
import type { ImportedAccount, ImportedCertificate, ImportedProvider, ImportSource } from './types';

/**
 * From what was read to what will be done: the config snippet (secrets replaced by
 * `<option>_file` references), the secret files, the account and the certificates to install.
 * Pure: the caller reads the current configuration, account and store and passes them in.
 */

export interface PlanInput {
  source: ImportSource;
  /** The ACME directory certpilot will use; certificates from another CA are skipped. */
  directoryUrl: string;
  configPath: string;
  /** The configuration file as parsed (unvalidated), or undefined when there is none yet. */
  raw?: Record<string, unknown>;
  /** certpilot's account for directoryUrl, if it has one. */
  existingAccount: StoredAccount | null;
  /** What the store holds under each imported name (null: nothing). */
  stored: ReadonlyMap<string, CertInfo | null>;
  /** --force: replace a stored certificate of the same name. */
  force: boolean;
}

export interface SecretFile {
  provider: string;
  file: string;
  value: string;
}

export type InstallAction = 'install' | 'already-installed' | 'skip';

export interface PlannedInstall {
  cert: ImportedCertificate;
  action: InstallAction;
  reason?: string;
}

export interface ImportPlan {
  snippet: Record<string, unknown>;
  secrets: SecretFile[];
  /** The account to write, or undefined (none found, or certpilot's own is kept). */
  account?: ImportedAccount;
  installs: PlannedInstall[];
  notes: string[];
}

type Raw = Record<string, unknown>;

function objectAt(raw: Raw | undefined, ...keys: string[]): Raw | undefined {
  let v: unknown = raw;
  for (const k of keys) v = v && typeof v === 'object' ? (v as Raw)[k] : undefined;
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
}

function samePublicKey(a: string, b: string): boolean {
  const der = (pem: string): string =>
    createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('hex');
  try {
    return der(a) === der(b);
  } catch {
    return false;
  }
}

/** The provider entry as it goes into the snippet: the secret as a file reference. */
function providerEntry(p: ImportedProvider, secretFile: string | undefined): Raw {
  return {
    type: p.type,
    ...p.options,
    ...(p.secret && secretFile ? { [`${p.secret.option}_file`]: secretFile } : {}),
  };
}

/**
 * One provider instance per distinct setting, named `<tool>-<type>` (suffixed when the
 * configuration already has that name for something else); an instance already in the
 * configuration with the same settings is reused.
 */
function planProviders(input: PlanInput, certs: ImportedCertificate[]) {
  const existing = objectAt(input.raw, 'dns', 'providers') ?? {};
  const names = new Map<ImportedProvider, string>();
  const byKey = new Map<string, string>();
  const entries: Record<string, Raw> = {};
  const secrets: SecretFile[] = [];
  for (const c of certs) {
    const p = c.provider;
    if (!p) continue;
    const key = JSON.stringify([p.type, p.options, p.secret?.value ?? null]);
    let name = byKey.get(key);
    if (!name) {
      const base = `${input.source.tool}-${p.type}`;
      name = base;
      for (let i = 2; existing[name] !== undefined && !sameEntry(existing[name], p); i++)
        name = `${base}-${i}`;
      const file = p.secret ? path.join(path.dirname(input.configPath), `${name}.secret`) : undefined;
      const reused = existing[name] !== undefined;
      if (!reused) {
        entries[name] = providerEntry(p, file);
        if (p.secret && file) secrets.push({ provider: name, file, value: p.secret.value });
      }
      byKey.set(key, name);
    }
    names.set(p, name);
  }
  return { names, entries, secrets };
}

/** An instance in the configuration with the same type and options (its secret is not compared). */
function sameEntry(entry: unknown, p: ImportedProvider): boolean {
  if (!entry || typeof entry !== 'object') return false;
  const e = entry as Raw;
  return e.type === p.type && Object.entries(p.options).every(([k, v]) => e[k] === v);
}

function certificateEntry(c: ImportedCertificate, provider: string | undefined): Raw {
  const hooks: Raw = {};
  for (const kind of ['pre', 'deploy', 'post'] as const) {
    if (c.hooks[kind].length > 0) hooks[kind] = c.hooks[kind].map((command) => ({ shell: true, command }));
  }
  return {
    name: c.name,
    domains: c.info.names,
    ...(c.keyType ? { keyType: c.keyType } : {}),
    ...(c.reuseKey ? { reuseKey: true } : {}),
    ...(provider ? { dns: { provider } } : {}),
    ...(Object.keys(hooks).length > 0 ? { hooks } : {}),
  };
}

function planInstall(input: PlanInput, c: ImportedCertificate): PlannedInstall {
  const stored = input.stored.get(c.name) ?? null;
  if (!stored) return { cert: c, action: 'install' };
  if (stored.serial === c.info.serial) return { cert: c, action: 'already-installed' };
  if (input.force) return { cert: c, action: 'install', reason: `replaces stored serial ${stored.serial}` };
  return {
    cert: c,
    action: 'skip',
    reason: `certpilot already stores "${c.name}" (serial ${stored.serial}); --force replaces it`,
  };
}

function planAccount(input: PlanInput, notes: string[]): ImportedAccount | undefined {
  const account = input.source.accounts.find((a) => a.directoryUrl === input.directoryUrl);
  if (!account) return undefined;
  const mine = input.existingAccount;
  if (mine && !samePublicKey(mine.keyPem, account.keyPem)) {
    notes.push(
      `certpilot already has an account for ${input.directoryUrl}: kept; ${account.from} not imported`,
    );
    return undefined;
  }
  if (mine?.url) return undefined;
  return account;
}

export function planImport(input: PlanInput): ImportPlan {
  const notes = [...input.source.notes];
  const certs: ImportedCertificate[] = [];
  for (const c of input.source.certificates) {
    if (c.directoryUrl !== input.directoryUrl) {
      notes.push(`${c.sourceName}: issued through ${c.directoryUrl}, not ${input.directoryUrl}: skipped`);
      continue;
    }
    certs.push(c);
    notes.push(...c.notes.map((n) => `${c.sourceName}: ${n}`));
  }
  const { names, entries, secrets } = planProviders(input, certs);
  const configured = new Set(
    (Array.isArray(input.raw?.certificates) ? (input.raw.certificates as Raw[]) : []).map((c) => c?.name),
  );
  const newCerts = certs.filter((c) => !configured.has(c.name));
  for (const c of certs.filter((x) => configured.has(x.name))) {
    notes.push(`certificates: "${c.name}" is already configured; its entry is left as it is`);
  }
  const account = planAccount(input, notes);
  const acme: Raw = { directory: input.directoryUrl, termsAgreed: true };
  if (account?.email) acme.email = account.email;
  const snippet: Raw = {
    acme,
    ...(Object.keys(entries).length > 0 ? { dns: { providers: entries } } : {}),
    certificates: newCerts.map((c) => certificateEntry(c, c.provider ? names.get(c.provider) : undefined)),
  };
  return { snippet, secrets, account, installs: certs.map((c) => planInstall(input, c)), notes };
}
