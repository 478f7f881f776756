import {
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { Testbed } from './testbed';

/**
 * A place the unprivileged service user can work in, as the Debian package sets it up: a state
 * directory it owns (0700), its own TSIG secret (0600), a readable copy of the test CA's root
 * and configs it can read. The service user is `nobody` (65534:65534), the one unprivileged
 * account every Debian system has. Needs root (chown).
 */
export const SERVICE_USER = { uid: 65534, gid: 65534 } as const;

export interface ServiceUserWorld {
  dir: string;
  stateDir: string;
  /** chown to the service user, then chmod. */
  own(p: string, mode: number): Promise<void>;
  /** A config for the testbed (as Testbed.writeConfig) pointed at this world's files; its path. */
  writeConfig(certificates: unknown[], extra?: Record<string, unknown>): Promise<string>;
  remove(): Promise<void>;
}

export async function serviceUserWorld(tb: Testbed, prefix: string): Promise<ServiceUserWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  const own = async (p: string, mode: number): Promise<void> => {
    await chown(p, SERVICE_USER.uid, SERVICE_USER.gid);
    await chmod(p, mode);
  };
  const stateDir = path.join(dir, 'state');
  await mkdir(stateDir);
  await own(stateDir, 0o700);
  const secret = path.join(dir, 'tsig.secret');
  await writeFile(secret, tb.bind.tsig.secret + '\n');
  await own(secret, 0o600);
  const caBundle = path.join(dir, 'ca.pem');
  await copyFile(tb.pebble.tlsCaPath, caBundle);
  await chmod(caBundle, 0o644);
  let n = 0;
  return {
    dir,
    stateDir,
    own,
    async writeConfig(certificates, extra = {}) {
      const doc = parse(
        await readFile(await tb.writeConfig(certificates, { storage: { stateDir }, ...extra }), 'utf8'),
      ) as { acme: Record<string, unknown>; dns: { providers: { bind: Record<string, unknown> } } };
      doc.acme.caBundle = caBundle;
      doc.dns.providers.bind.tsigSecret_file = secret;
      const config = path.join(dir, `certpilot-${++n}.yaml`);
      await writeFile(config, stringify(doc), { mode: 0o644 });
      return config;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Every path under `p` owned by root (user or group): what the service could trip over. */
export async function rootOwned(p: string): Promise<string[]> {
  const st = await lstat(p);
  const found = st.uid === 0 || st.gid === 0 ? [p] : [];
  if (st.isDirectory()) for (const e of await readdir(p)) found.push(...(await rootOwned(path.join(p, e))));
  return found;
}
