/* eslint-disable @typescript-eslint/no-explicit-any -- tests build deliberately ill-typed configurations */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, type ConfigIssue } from '../../src/core/errors';
import { loadConfig } from '../../src/config/load';
import type { AgentConfig } from '../../src/config/types';

/** Distinctive secrets, so a test can assert they never show up in any output. */
export const TSIG_SECRET = 'VFNJRy1TRUNSRVQtZG8tbm90LXByaW50';
export const EAB_HMAC = 'RUFCLUhNQUMtZG8tbm90LXByaW50LWl0';

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-config-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

let counter = 0;

/** Writes `content` (an object as YAML/JSON, or raw text) into `dir`; returns the path. */
export function writeConfig(
  dir: string,
  content: unknown,
  ext: '.yaml' | '.yml' | '.json' = '.yaml',
): string {
  const file = path.join(dir, `config-${++counter}${ext}`);
  const text =
    typeof content === 'string' ? content : ext === '.json' ? JSON.stringify(content) : stringify(content);
  fs.writeFileSync(file, text);
  return file;
}

export function writeSecret(dir: string, value: string, mode = 0o600): string {
  const file = path.join(dir, `secret-${++counter}`);
  fs.writeFileSync(file, value);
  fs.chmodSync(file, mode);
  return file;
}

/** A small valid configuration; tests clone and break it. */
export function baseConfig(dir: string): Record<string, any> {
  return {
    acme: { directory: 'letsencrypt-staging', email: 'ops@example.com', termsAgreed: true },
    storage: { stateDir: path.join(dir, 'state') },
    dns: {
      providers: {
        bind: { type: 'rfc2136', server: '127.0.0.1', tsigKeyName: 'certpilot', tsigSecret: TSIG_SECRET },
      },
    },
    certificates: [
      {
        name: 'www',
        domains: ['example.com', '*.example.com'],
        outputs: [{ fullchain: '/etc/ssl/www/fullchain.pem', key: '/etc/ssl/www/key.pem' }],
      },
    ],
  };
}

export async function load(file: string, env: NodeJS.ProcessEnv = {}): Promise<AgentConfig> {
  return loadConfig({ path: file, env });
}

/** Loads a file that must be invalid and returns the ConfigError. */
export async function loadError(file: string, env: NodeJS.ProcessEnv = {}): Promise<ConfigError> {
  try {
    await loadConfig({ path: file, env });
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`expected ${file} to be invalid`);
}

export function paths(issues: readonly ConfigIssue[]): string[] {
  return [...new Set(issues.map((i) => i.path))].sort();
}
