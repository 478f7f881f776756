import { readFileSync, statSync, type Stats } from 'node:fs';
import { parsedConfigText, parseYaml } from '../config/file';
import { secretOwnerMessage, settleSecretOwner } from '../config/secrets';
import { ConfigError, type ConfigIssue } from '../core/errors';
import type { Logger } from '../core/logger';
import { isSecretName } from '../core/redact';

/**
 * The root-run trap: an operator types `sudo certpilot renew` (the certbot reflex) on a host
 * where the service runs as `certpilot`. Run as root, it would leave root-owned files in the
 * state directory, and from then on the service could no longer read them. So a command that
 * writes the state directory, started as root on a state directory that belongs to another user,
 * does its work as that user: the same identity, and so the same files and modes, as the
 * service. Called after the configuration is loaded (secret files may be readable by root only
 * at that point) and before anything is written or any child process started.
 *
 * It is also where the start-up checks live that need the user certpilot will run as:
 *   - the state directory (ACME account key, private keys) must belong to that user and be
 *     closed to group and others;
 *   - secret files owned by a non-root user are accepted only if that user is the one certpilot
 *     runs as (src/config/secrets.ts records them while loading as root);
 *   - a config file that holds secrets inline and that others can read is warned about, once.
 *
 * Returns the uid now in effect, or undefined when nothing changed (not root, the directory is
 * root's, or it does not exist yet).
 */
export function actAsStateOwner(stateDir: string, log: Logger, configPath?: string): number | undefined {
  const self = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
  const st = statStateDir(stateDir);
  // Root drops to the owner of an existing, non-root state directory; anyone else stays as is.
  const runAs = self.uid === 0 && st !== undefined && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : self;
  checkSecretOwners(runAs.uid, configPath);
  if (st !== undefined) checkStateDir(stateDir, st, runAs.uid, configPath);
  if (configPath !== undefined) warnAboutConfigFile(configPath, runAs.gid, log);
  if (runAs === self) return undefined;
  try {
    // Supplementary groups of the owner (e.g. a group that may read the config), else its gid only.
    // Present on POSIX builds of Node, missing from its type definitions.
    (process as unknown as { initgroups(user: number, extraGroup: number): void }).initgroups(
      runAs.uid,
      runAs.gid,
    );
  } catch {
    process.setgroups!([runAs.gid]);
  }
  process.setgid!(runAs.gid);
  process.setuid!(runAs.uid);
  log.info('running as the owner of the state directory, not root', {
    stateDir,
    uid: runAs.uid,
    gid: runAs.gid,
  });
  return runAs.uid;
}

function statStateDir(stateDir: string): Stats | undefined {
  try {
    return statSync(stateDir);
  } catch {
    return undefined; // created by this run (0700, see src/store/atomic.ts ensureDir)
  }
}

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** The state directory holds the ACME account key and every private key: its user's alone. */
function checkStateDir(stateDir: string, st: Stats, runAs: number, source?: string): void {
  const issue = (message: string): ConfigError =>
    new ConfigError([{ path: 'storage.stateDir', message }], source);
  if (!st.isDirectory()) throw issue(`${stateDir} is not a directory`);
  if (st.uid !== runAs) {
    throw issue(
      `${stateDir} is owned by uid ${st.uid} (mode ${octal(st.mode)}), but certpilot runs as uid ${runAs}; ` +
        `chown ${runAs} ${stateDir}`,
    );
  }
  if ((st.mode & 0o077) !== 0) {
    throw issue(
      `${stateDir} is open to group or others (mode ${octal(st.mode)}) and holds private keys; ` +
        `chmod 700 ${stateDir}`,
    );
  }
}

/** Secret files read as root that belong to someone other than root and the user we run as. */
function checkSecretOwners(runAs: number, source?: string): void {
  const wrong = settleSecretOwner(runAs);
  if (wrong.length === 0) return;
  const issues: ConfigIssue[] = wrong.map((p) => ({
    path: p.at,
    message: secretOwnerMessage(p.file, p.uid, p.mode, runAs),
  }));
  throw new ConfigError(issues, source);
}

/** Config files already warned about: the daemon re-reads its config on SIGHUP, warns at start only. */
const warned = new Set<string>();

/**
 * Warns when the config file holds secrets inline (an API token, a TSIG key, an SMTP password)
 * and users other than the one certpilot runs as can read it: the *_file options keep them out.
 * A group may read it when it is the group certpilot runs as (the Debian package's root:certpilot
 * 0640), since the service must read its config on reload; so may root's group.
 */
function warnAboutConfigFile(configPath: string, runAsGid: number, log: Logger): void {
  if (warned.has(configPath)) return;
  let st: Stats;
  let text: string;
  try {
    st = statSync(configPath);
    text = readFileSync(configPath, 'utf8');
  } catch {
    return; // the loader read it a moment ago; a file gone since is not this check's business
  }
  const others = (st.mode & 0o004) !== 0;
  // Root's group is root's (init writes the file 0640 with the creator's group).
  const group = (st.mode & 0o040) !== 0 && st.gid !== runAsGid && st.gid !== 0;
  if (!others && !group) return;
  // The loader parsed this very text a moment ago: its value, unless the file changed since.
  const inline = inlineSecretPaths(
    (parsedConfigText(configPath, text) ?? { value: parseQuietly(text) }).value,
  );
  if (inline.length === 0) return;
  warned.add(configPath);
  log.warn(
    `config file ${configPath} holds secrets inline and is readable by ` +
      `${others ? 'every user' : `group gid ${st.gid}`} (mode ${octal(st.mode)}); ` +
      `chmod 600 ${configPath}, or move them to files (the *_file options)`,
    { settings: inline },
  );
}

/** The loader has just parsed the same text; should that fail now, there is nothing to warn about. */
function parseQuietly(text: string): unknown {
  try {
    return parseYaml(text, '');
  } catch {
    return undefined;
  }
}

/** Dotted paths of non-empty strings under a secret name (not `*_file`, not absolute paths). */
export function inlineSecretPaths(doc: unknown, at = ''): string[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => inlineSecretPaths(v, `${at}[${i}]`));
  if (typeof doc !== 'object' || doc === null) return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const p = at === '' ? key : `${at}.${key}`;
    if (typeof value === 'string') {
      // An output's `key: /etc/ssl/x.key` names a file; a value starting with "/" is a path.
      if (value !== '' && !value.startsWith('/') && !key.endsWith('_file') && isSecretName(key))
        found.push(p);
    } else {
      found.push(...inlineSecretPaths(value, p));
    }
  }
  return found;
}
