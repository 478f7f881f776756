import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { CertStore } from '../../src/store/cert-store';
import type { KeyPairPem } from '../helpers/certs';
import { runCli, type CliResult } from '../helpers/testbed';
import { LOOPBACK, type RunningServer } from '../helpers/tls-servers';
import { TSIG_SECRET } from '../config/helpers';
import type { Pki } from '../inspect/fixtures';

/** A DNS provider instance so managed certificates validate; `check` never contacts it. */
export const DNS_SECTION = {
  providers: {
    bind: { type: 'rfc2136', server: '127.0.0.1', tsigKeyName: 'certpilot', tsigSecret: TSIG_SECRET },
  },
};

export interface Workspace {
  dir: string;
  stateDir: string;
  /** The test root CA as a PEM file, for `caBundle`. */
  rootCa: string;
  write(name: string, text: string): string;
  config(content: Record<string, unknown>): string;
  cleanup(): void;
}

export function workspace(pki: Pki): Workspace {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-check-'));
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  let n = 0;
  return {
    dir,
    stateDir: path.join(dir, 'state'),
    rootCa: write('root-ca.pem', pki.root.certPem),
    write,
    config: (content) => write(`certpilot-${++n}.yaml`, stringify(content)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A watched endpoint for a loopback server: `example.test` is only a name (SNI, verification). */
export function endpointFor(
  server: Pick<RunningServer, 'port'>,
  ws: Workspace,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { host: 'example.test', port: server.port, connectAddress: LOOPBACK, caBundle: ws.rootCa, ...extra };
}

/** Runs `certpilot check` in-process; logs kept to errors so stderr stays readable. */
export function check(config: string, ...args: string[]): Promise<CliResult> {
  return runCli(['check', '--config', config, '--log-level', 'error', ...args]);
}

export interface JsonRow {
  name: string;
  managed: boolean;
  source: 'file' | 'endpoint';
  target: string;
  status: string;
  certificate: null | Record<string, unknown>;
  daysLeft: number | null;
  lifetimeLeftRatio: number | null;
  probe: null | {
    success: boolean;
    trusted: boolean | null;
    trustError: string | null;
    elapsedMs: number | null;
  };
  served: null | string;
  findings: { code: string; severity: string; message: string }[];
}

export interface JsonReport {
  schemaVersion: number;
  status: string;
  exitCode: number;
  checkedAt: string;
  summary: Record<string, number>;
  results: JsonRow[];
  error: null | { message: string; issues: { path: string; message: string }[] };
}

export async function checkJson(
  config: string,
  ...args: string[]
): Promise<{ code: number; report: JsonReport }> {
  const r = await check(config, '--json', ...args);
  try {
    return { code: r.code, report: JSON.parse(r.stdout) as JsonReport };
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Installs a version into the store the way renew does (validated, archived, atomically swapped). */
export async function install(
  stateDir: string,
  name: string,
  pair: KeyPairPem,
  chainPems: string[],
): Promise<void> {
  const store = new CertStore({ stateDir, archiveDepth: 5 });
  const chain = chainPems.join('');
  await store.install(name, { cert: pair.certPem, chain, fullchain: pair.certPem + chain, key: pair.keyPem });
}
