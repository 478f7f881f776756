import { access } from 'node:fs/promises';
import { readAccount } from '../acme/account';
import { UsageError } from '../core/errors';
import type { Logger } from '../core/logger';
import { DEFAULT_STATE_DIR } from '../config/defaults';
import { ACME_DIRECTORY_PRESETS } from '../config/formats';
import { loadConfig, readConfigFile } from '../config/load';
import type { AgentConfig } from '../config/types';
import { CertStore } from '../store/cert-store';
import type { CertInfo } from '../x509';
import { applyState, mergeConfig, renderPlan, renderSnippet, writeSecrets } from './apply';
import { CERTBOT_DEFAULT_DIR, readCertbot } from './certbot';
import { readLego } from './lego';
import { planImport, type ImportPlan } from './plan';
import type { ImportSource } from './types';

/**
 * `certpilot import certbot|lego`: read the other tool's certificates, account and settings,
 * print a configuration snippet and the plan, then (unless dry-run) write the secrets, install
 * the certificates as current versions and the account, and with `write` merge the snippet
 * into the configuration. The certificates go in unchanged, so the next `renew` finds them
 * valid, and the first renewal names the imported one in ARI `replaces`.
 */

export interface ImportRequest {
  tool: string;
  names: string[];
  /** certbot --config-dir or lego --path. */
  dir?: string;
  configPath: string;
  /** --ca: a preset or a directory URL. */
  ca?: string;
  /** lego: certpilot provider type for lego's --dns. */
  provider?: string;
  stateDir?: string;
  write: boolean;
  dryRun: boolean;
  force: boolean;
  json: boolean;
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal: AbortSignal;
  stdout: NodeJS.WritableStream;
  /** Called before the state directory is written (the CLI drops root privileges there). */
  beforeStateWrite?: (stateDir: string) => void;
}

const LEGO_DEFAULT_DIR = '.lego';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

interface CurrentConfig {
  raw?: Record<string, unknown>;
  config?: AgentConfig;
  /** The directory the file sets (a default does not count: the import may choose). */
  directoryUrl?: string;
}

async function readCurrentConfig(configPath: string): Promise<CurrentConfig> {
  if (!(await exists(configPath))) return {};
  const raw = (await readConfigFile(configPath)) as Record<string, unknown>;
  const config = await loadConfig({ path: configPath });
  const acme = raw?.acme as Record<string, unknown> | undefined;
  return { raw, config, directoryUrl: acme?.directory !== undefined ? config.acme.directoryUrl : undefined };
}

function chooseDirectory(req: ImportRequest, current: CurrentConfig, source: ImportSource): string {
  if (req.ca) return ACME_DIRECTORY_PRESETS[req.ca] ?? req.ca;
  if (current.directoryUrl) return current.directoryUrl;
  const servers = [
    ...new Set([
      ...source.certificates.map((c) => c.directoryUrl),
      ...source.accounts.map((a) => a.directoryUrl),
    ]),
  ];
  if (servers.length === 1) return servers[0]!;
  throw new UsageError(
    servers.length === 0
      ? `certpilot import ${req.tool}: nothing to import`
      : `certpilot import ${req.tool}: certificates from several CAs (${servers.join(', ')}); choose one with --ca URL`,
  );
}

async function readSource(req: ImportRequest, current: CurrentConfig): Promise<ImportSource> {
  if (req.tool === 'certbot') return readCertbot(req.dir ?? CERTBOT_DEFAULT_DIR, req.names);
  if (req.tool === 'lego') {
    const ca = req.ca ? (ACME_DIRECTORY_PRESETS[req.ca] ?? req.ca) : current.directoryUrl;
    return readLego(req.dir ?? LEGO_DEFAULT_DIR, req.names, {
      ...(ca ? { directoryUrl: ca } : {}),
      ...(req.provider ? { provider: req.provider } : {}),
      env: req.env,
    });
  }
  throw new UsageError(`certpilot import: unknown tool "${req.tool}" (certbot or lego)`);
}

async function storedInfos(store: CertStore, source: ImportSource): Promise<Map<string, CertInfo | null>> {
  const out = new Map<string, CertInfo | null>();
  for (const c of source.certificates) {
    // An unreadable stored certificate counts as absent: installing over it is the repair.
    out.set(c.name, await store.readInfo(c.name).catch(() => null));
  }
  return out;
}

export async function runImport(req: ImportRequest): Promise<ImportPlan> {
  const current = await readCurrentConfig(req.configPath);
  const source = await readSource(req, current);
  const directoryUrl = chooseDirectory(req, current, source);
  const stateDir = current.config?.storage.stateDir ?? req.stateDir ?? DEFAULT_STATE_DIR;
  const archiveDepth = current.config?.storage.archiveDepth ?? 5;
  const store = new CertStore({ stateDir, archiveDepth, log: req.log });
  const plan = planImport({
    source,
    directoryUrl,
    configPath: req.configPath,
    ...(current.raw ? { raw: current.raw } : {}),
    existingAccount: await readAccount(stateDir, directoryUrl),
    stored: await storedInfos(store, source),
    force: req.force,
  });
  const planText = renderPlan(plan, { stateDir, configPath: req.configPath, write: req.write });
  if (req.json) {
    req.stdout.write(
      JSON.stringify({ snippet: plan.snippet, plan: planText.trimEnd().split('\n') }, null, 2) + '\n',
    );
  } else {
    req.stdout.write(
      `# certpilot configuration snippet (${source.tool} import)\n${renderSnippet(plan)}\n${planText}`,
    );
  }
  if (req.dryRun) return plan;
  await writeSecrets(plan);
  if (req.write) {
    await mergeConfig(plan, req.configPath, current.config ? undefined : req.stateDir);
    // The merged file must load as it is; report now rather than at the next renew.
    await loadConfig({ path: req.configPath });
  }
  req.beforeStateWrite?.(stateDir);
  await applyState(plan, { stateDir, archiveDepth, log: req.log, signal: req.signal });
  return plan;
}
