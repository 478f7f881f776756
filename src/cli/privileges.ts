import { statSync } from 'node:fs';
import type { Logger } from '../core/logger';

/**
 * The root-run trap: an operator types `sudo certpilot renew` (the certbot reflex) on a host
 * where the service runs as `certpilot`. Run as root, it would leave root-owned files in the
 * state directory, and from then on the service could no longer read them. So a command that
 * writes the state directory, started as root on a state directory that belongs to another user,
 * does its work as that user: the same identity, and so the same files and modes, as the
 * service. Called after the configuration is loaded (secret files may be readable by root only
 * at that point) and before anything is written or any child process started.
 *
 * Returns the uid now in effect, or undefined when nothing changed (not root, the directory is
 * root's, or it does not exist yet).
 */
export function actAsStateOwner(stateDir: string, log: Logger): number | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(stateDir);
  } catch {
    return undefined; // created by this run, as root: a root-run installation
  }
  if (owner.uid === 0) return undefined;
  try {
    // Supplementary groups of the owner (e.g. a group that may read the config), else its gid only.
    // Present on POSIX builds of Node, missing from its type definitions.
    (process as unknown as { initgroups(user: number, extraGroup: number): void }).initgroups(
      owner.uid,
      owner.gid,
    );
  } catch {
    process.setgroups!([owner.gid]);
  }
  process.setgid!(owner.gid);
  process.setuid!(owner.uid);
  log.info('running as the owner of the state directory, not root', {
    stateDir,
    uid: owner.uid,
    gid: owner.gid,
  });
  return owner.uid;
}
