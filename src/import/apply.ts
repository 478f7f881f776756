import { readFile, stat } from 'node:fs/promises';
import { Document, isMap, isSeq, parseDocument, stringify } from 'yaml';
import { writeAccountKey, writeAccountMeta } from '../acme/account';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import { atomicWriteFile } from '../store/atomic';
import { CertStore } from '../store/cert-store';
import type { ImportPlan } from './plan';

/** Carrying out an import plan: configuration side (secrets, merge), then state side (account, certificates). */

const SECRET_MODE = 0o600;
/** A new configuration file: it names secret files and hooks, nothing for others to read. */
const NEW_CONFIG_MODE = 0o600;

/** The snippet as YAML, for review: secrets appear only as `_file` references. */
export function renderSnippet(plan: ImportPlan): string {
  return stringify(plan.snippet);
}

/** The plan, one line per action, then what did not map. */
export function renderPlan(
  plan: ImportPlan,
  opts: { stateDir: string; configPath: string; write: boolean },
): string {
  const lines: string[] = [];
  for (const s of plan.secrets) lines.push(`secret: write ${s.file} (0600) for provider ${s.provider}`);
  if (plan.account) {
    lines.push(`account: import ${plan.account.url} from ${plan.account.from} (no new registration)`);
  }
  for (const i of plan.installs) {
    const what = `${i.cert.name} (${i.cert.info.names.join(', ')}; serial ${i.cert.info.serial}, expires ${i.cert.info.notAfter.toISOString()}) from ${i.cert.from}`;
    if (i.action === 'install')
      lines.push(`install: ${what} into ${opts.stateDir}${i.reason ? `; ${i.reason}` : ''}`);
    else if (i.action === 'already-installed') lines.push(`unchanged: ${what} is already installed`);
    else lines.push(`skip: ${what}: ${i.reason}`);
  }
  lines.push(
    opts.write
      ? `config: merge the snippet into ${opts.configPath}`
      : `config: ${opts.configPath} not changed (review the snippet; --write merges it)`,
  );
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines.join('\n') + '\n';
}

export async function writeSecrets(plan: ImportPlan): Promise<void> {
  for (const s of plan.secrets) await atomicWriteFile(s.file, s.value + '\n', { mode: SECRET_MODE });
}

/**
 * Merges the snippet into the configuration file, keeping its comments and layout (YAML
 * document API): providers and certificates are added, acme settings only where the file has
 * none. A missing file is created from the snippet (plus storage.stateDir when given).
 */
export async function mergeConfig(plan: ImportPlan, configPath: string, stateDir?: string): Promise<void> {
  let text: string | null = null;
  let mode = NEW_CONFIG_MODE;
  try {
    text = await readFile(configPath, 'utf8');
    mode = (await stat(configPath)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CertpilotError('CONFIG_INVALID', `certpilot import: cannot read ${configPath}`, {
        cause: err,
      });
    }
  }
  const json = configPath.endsWith('.json');
  const parsed = text === null ? null : parseDocument(text);
  const doc: Document = parsed && isMap(parsed.contents) ? parsed : new Document({});
  const snippet = plan.snippet as {
    acme: Record<string, unknown>;
    dns?: { providers: Record<string, unknown> };
    certificates: unknown[];
  };
  for (const [k, v] of Object.entries(snippet.acme)) {
    if (!doc.hasIn(['acme', k])) doc.setIn(['acme', k], v);
  }
  if (text === null && stateDir) doc.setIn(['storage', 'stateDir'], stateDir);
  for (const [name, entry] of Object.entries(snippet.dns?.providers ?? {})) {
    doc.setIn(['dns', 'providers', name], doc.createNode(entry));
  }
  const list = doc.getIn(['certificates']);
  if (isSeq(list)) for (const c of snippet.certificates) list.add(doc.createNode(c));
  else doc.setIn(['certificates'], doc.createNode(snippet.certificates));
  const out = json ? JSON.stringify(doc.toJS(), null, 2) + '\n' : doc.toString();
  await atomicWriteFile(configPath, out, { mode });
}

/** Writes the account (so no new registration happens) and installs the certificates. */
export async function applyState(
  plan: ImportPlan,
  opts: { stateDir: string; archiveDepth: number; log: Logger; signal: AbortSignal },
): Promise<void> {
  const { account } = plan;
  if (account) {
    await writeAccountKey(opts.stateDir, account.directoryUrl, account.keyPem);
    await writeAccountMeta(opts.stateDir, {
      directoryUrl: account.directoryUrl,
      url: account.url,
      keyPem: account.keyPem,
      createdAt: account.createdAt ?? new Date().toISOString(),
    });
    opts.log.info('acme account imported', { directory: account.directoryUrl, account: account.url });
  }
  const store = new CertStore({ stateDir: opts.stateDir, archiveDepth: opts.archiveDepth, log: opts.log });
  for (const i of plan.installs.filter((x) => x.action === 'install')) {
    await store.install(i.cert.name, i.cert.files, [], { signal: opts.signal });
  }
}
