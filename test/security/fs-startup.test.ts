import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { actAsStateOwner } from '../../src/cli/privileges';
import { memoryLogger } from '../helpers/memory-logger';
import { SERVICE_USER } from '../helpers/service-user';

/**
 * Start-up checks, each played the way a careless setup or another local user would leave
 * things: a state directory others can read, a secret file that belongs to someone else, a
 * config file with an inline secret that others can read. The CLI is started as root, as CI
 * runs it; real chown, real other uids (nobody = 65534, and 1234 that no account has).
 * `renew --dry-run` contacts nothing (the ACME directory is a closed loopback port anyway).
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const OTHER_UID = 1234;
const INLINE = 'c2VjcmV0LXZhbHVlLWZvci10ZXN0';

let base: string;
let stateDir: string;
let secret: string;

function cli(
  args: string[],
  as?: { uid: number; gid: number },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** A config for `renew --dry-run`; `inline` puts the TSIG secret in the file itself. */
function writeConfig(mode: number, opts: { inline?: boolean; gid?: number } = {}): string {
  const provider = {
    type: 'rfc2136',
    server: '127.0.0.1',
    tsigKeyName: 'k',
    ...(opts.inline ? { tsigSecret: INLINE } : { tsigSecret_file: secret }),
  };
  const file = path.join(base, `certpilot-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(
    file,
    stringify({
      acme: { directory: 'https://127.0.0.1:9/directory', termsAgreed: true },
      storage: { stateDir },
      dns: { providers: { bind: provider } },
      certificates: [{ name: 'svc', domains: ['svc.example.test'], dns: { provider: 'bind' } }],
    }),
  );
  fs.chownSync(file, 0, opts.gid ?? 0);
  fs.chmodSync(file, mode);
  return file;
}

const renew = (config: string, as?: { uid: number; gid: number }) =>
  cli(['renew', '--dry-run', '--config', config], as);
const warnings = (out: string): number =>
  out.split('\n').filter((l) => /holds secrets inline/.test(l)).length;

beforeAll(() => {
  expect(process.getuid?.()).toBe(0); // these tests play root against other uids
});
beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-fs-startup-'));
  fs.chmodSync(base, 0o755); // the service user must reach its files
  stateDir = path.join(base, 'state');
  fs.mkdirSync(stateDir, { mode: 0o700 });
  secret = path.join(base, 'tsig.secret');
  fs.writeFileSync(secret, INLINE + '\n', { mode: 0o600 });
});
afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('the state directory', () => {
  it('readable by others is refused, naming the path, the mode and the chmod fix', async () => {
    fs.chmodSync(stateDir, 0o755);
    const r = await renew(writeConfig(0o600));
    expect(r.code).toBe(2);
    expect(r.out).toContain(`storage.stateDir: ${stateDir} is open to group or others (mode 0755)`);
    expect(r.out).toContain(`chmod 700 ${stateDir}`);
    expect(fs.readdirSync(stateDir)).toEqual([]);
  });

  it('of the service user, group-readable, is refused before root drops to that user', async () => {
    fs.chownSync(stateDir, SERVICE_USER.uid, SERVICE_USER.gid);
    fs.chmodSync(stateDir, 0o750);
    fs.chownSync(secret, SERVICE_USER.uid, SERVICE_USER.gid);
    const r = await renew(writeConfig(0o644));
    expect(r.code).toBe(2);
    expect(r.out).toContain(`${stateDir} is open to group or others (mode 0750)`);
    expect(r.out).not.toMatch(/running as the owner/);
  });

  it('owned by another user than the one certpilot runs as is refused', async () => {
    fs.chownSync(stateDir, OTHER_UID, OTHER_UID);
    fs.chownSync(secret, SERVICE_USER.uid, SERVICE_USER.gid);
    const r = await renew(writeConfig(0o644), SERVICE_USER);
    expect(r.code).toBe(2);
    expect(r.out).toContain(
      `${stateDir} is owned by uid ${OTHER_UID} (mode 0700), but certpilot runs as uid 65534`,
    );
  });

  it('0700 and the runner’s own passes (what init, systemd and the Debian package create)', async () => {
    const r = await renew(writeConfig(0o600));
    expect(r.out).toMatch(/svc\s+planned/);
    expect(r.code).toBe(0);
  });
});

describe('secret files', () => {
  it('owned by another uid are refused, naming the file, the owner and the mode', async () => {
    fs.chownSync(secret, OTHER_UID, OTHER_UID);
    const r = await renew(writeConfig(0o600));
    expect(r.code).toBe(2);
    expect(r.out).toContain(
      `dns.providers.bind.tsigSecret_file: ${secret} is owned by uid ${OTHER_UID} (mode 0600), but certpilot runs as uid 0`,
    );
    expect(r.out).not.toContain(INLINE);
  });

  it('owned by the service user are refused when root stays root (the state directory is root’s)', async () => {
    fs.chownSync(secret, SERVICE_USER.uid, SERVICE_USER.gid);
    const r = await renew(writeConfig(0o600));
    expect(r.code).toBe(2);
    expect(r.out).toContain(`${secret} is owned by uid 65534 (mode 0600), but certpilot runs as uid 0`);
  });

  it('owned by the service user are accepted when root drops to that user (its state directory)', async () => {
    fs.chownSync(stateDir, SERVICE_USER.uid, SERVICE_USER.gid);
    fs.chownSync(secret, SERVICE_USER.uid, SERVICE_USER.gid);
    const r = await renew(writeConfig(0o644));
    expect(r.out).toMatch(/running as the owner of the state directory, not root/);
    expect(r.out).toMatch(/svc\s+planned/);
    expect(r.code).toBe(0);
  });

  it('run as the service user: its own is accepted, another uid’s refused', async () => {
    fs.chownSync(stateDir, SERVICE_USER.uid, SERVICE_USER.gid);
    fs.chownSync(secret, SERVICE_USER.uid, SERVICE_USER.gid);
    const config = writeConfig(0o644);
    expect((await renew(config, SERVICE_USER)).code).toBe(0);
    // Readable by the service user through its group, so the owner check, not EACCES, refuses it.
    fs.chownSync(secret, OTHER_UID, SERVICE_USER.gid);
    fs.chmodSync(secret, 0o640);
    const r = await renew(config, SERVICE_USER);
    expect(r.code).toBe(2);
    expect(r.out).toContain(
      `tsigSecret_file: ${secret} is owned by uid ${OTHER_UID} (mode 0640), but certpilot runs as uid 65534`,
    );
  });
});

describe('a config file with inline secrets', () => {
  it('world-readable warns once, naming the file, the mode and the setting, never the value', async () => {
    const config = writeConfig(0o644, { inline: true });
    const r = await renew(config);
    expect(r.code).toBe(0);
    expect(warnings(r.out)).toBe(1);
    expect(r.out).toContain(
      `config file ${config} holds secrets inline and is readable by every user (mode 0644)`,
    );
    expect(r.out).toContain('dns.providers.bind.tsigSecret');
    expect(r.out).not.toContain(INLINE);
  });

  it('group-readable by a group certpilot does not run as warns', async () => {
    const r = await renew(writeConfig(0o640, { inline: true, gid: SERVICE_USER.gid }));
    expect(warnings(r.out)).toBe(1);
    expect(r.out).toContain(`readable by group gid ${SERVICE_USER.gid} (mode 0640)`);
  });

  it('group-readable by the group certpilot runs as (Debian: root:certpilot 0640) does not warn', async () => {
    fs.chownSync(stateDir, SERVICE_USER.uid, SERVICE_USER.gid);
    const r = await renew(writeConfig(0o640, { inline: true, gid: SERVICE_USER.gid }));
    expect(r.out).toMatch(/running as the owner of the state directory/);
    expect(warnings(r.out)).toBe(0);
  });

  it('0600, or readable but without inline secrets, does not warn', async () => {
    expect(warnings((await renew(writeConfig(0o600, { inline: true }))).out)).toBe(0);
    expect(warnings((await renew(writeConfig(0o644))).out)).toBe(0);
  });

  it('warns once per process even when the start-up checks run again', () => {
    const config = writeConfig(0o644, { inline: true });
    const log = memoryLogger();
    actAsStateOwner(stateDir, log, config);
    actAsStateOwner(stateDir, log, config);
    expect(log.records.filter((r) => r.level === 'warn')).toHaveLength(1);
  });
});
