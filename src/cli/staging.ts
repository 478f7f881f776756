import path from 'node:path';
import { UsageError } from '../core/errors';
import type { AgentConfig } from '../config/types';

/**
 * `--staging`: one run against the CA's staging directory, as a rehearsal of the whole job
 * (account, DNS-01 through the real provider, order, store) that can never touch production:
 * certificates and accounts go to `<stateDir>/staging`, and outputs, deploy steps, endpoints
 * and hooks are left out, so no staging (untrusted) certificate reaches a live server.
 */
export const STAGING_DIRECTORIES: Readonly<Record<string, string>> = {
  'https://acme-v02.api.letsencrypt.org/directory': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  'https://dv.acme-v02.api.pki.goog/directory': 'https://dv.acme-v02.test-api.pki.goog/directory',
  'https://api.buypass.com/acme/directory': 'https://api.test4.buypass.com/acme/directory',
};

const STAGING_URLS = new Set(Object.values(STAGING_DIRECTORIES));

export function withStaging(config: AgentConfig): AgentConfig {
  const from = config.acme.directoryUrl;
  const staging = STAGING_URLS.has(from) ? from : STAGING_DIRECTORIES[from];
  if (!staging) {
    throw new UsageError(
      `certpilot: --staging: no staging directory is known for ${from} ` +
        '(known: letsencrypt, google, buypass); point acme.directory at the staging CA instead',
    );
  }
  return {
    ...config,
    acme: { ...config.acme, directoryUrl: staging },
    storage: { ...config.storage, stateDir: path.join(config.storage.stateDir, 'staging') },
    hooks: undefined,
    certificates: config.certificates.map((c) => ({
      ...c,
      outputs: [],
      endpoints: [],
      deploy: [],
      hooks: undefined,
    })),
  };
}
