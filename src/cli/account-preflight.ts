import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { accountDir } from '../acme/account';
import type { AgentConfig } from '../config/types';
import { ConfigError, type ConfigIssue } from '../core/errors';

/**
 * Problems that need the state directory, found without writing to it: with no ACME account
 * for the CA stored there, one must be registered, which the CA refuses unless its terms of
 * service are agreed to. `config check` and the start of `renew` report it before an account
 * key, a journal or an order exists (src/config may not read the account store, hence here).
 */

/**
 * True when an ACME account for the configured CA is registered in the state directory (its
 * account.json holds the account URL). Reads only; a state directory that cannot be read
 * (another user's, 0700) counts as "cannot tell" and returns undefined.
 */
export async function hasStoredAccount(
  config: AgentConfig,
  directoryUrl = config.acme.directoryUrl,
): Promise<boolean | undefined> {
  const file = path.join(accountDir(config.storage.stateDir, directoryUrl), 'account.json');
  try {
    const meta = JSON.parse(await readFile(file, 'utf8')) as { url?: unknown };
    return typeof meta.url === 'string' && meta.url !== '';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || e instanceof SyntaxError) return false;
    return undefined;
  }
}

/**
 * Problems that need the state directory: registering an account the CA would refuse. Each
 * acme.fallback CA too: its account is registered when an order first fails over, which is the
 * worst moment to learn that it cannot be.
 */
export async function accountIssues(config: AgentConfig): Promise<ConfigIssue[]> {
  if (config.certificates.length === 0) return [];
  const cas = [
    { at: 'acme.termsAgreed', ca: config.acme },
    ...(config.acme.fallback ?? []).map((ca, i) => ({ at: `acme.fallback[${i}].termsAgreed`, ca })),
  ];
  const issues: ConfigIssue[] = [];
  for (const { at, ca } of cas) {
    if (ca.termsAgreed || (await hasStoredAccount(config, ca.directoryUrl)) !== false) continue;
    issues.push({
      path: at,
      message:
        `must be true: no ACME account for ${ca.directoryUrl} is stored in ` +
        `${config.storage.stateDir}, and the CA registers one only when its terms of service are agreed to`,
    });
  }
  return issues;
}

/**
 * The start of `renew`: problems that would only show after an account was registered, a
 * journal written or an order placed. Throws a ConfigError (exit 2) before anything happens.
 */
export async function assertReadyToRenew(config: AgentConfig): Promise<void> {
  const issues = await accountIssues(config);
  if (issues.length > 0) throw new ConfigError(issues, config.source);
}
