import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileOutput } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { CertStore, type CertificateFiles } from '../../src/store/cert-store';
import { makeCa, makeCertificate } from '../helpers/certs';
import { SERVICE_USER } from '../helpers/service-user';

/**
 * The symlinked-parent attack on outputs, played by a real unprivileged user (nobody): certpilot
 * runs as root and writes an output under a directory that user owns; the user has planted a
 * symlink there to a directory only root may write. Needs root (real chown, a real other uid).
 */

const ca = makeCa();
const DAY = 86_400_000;

let base: string;
let rootOnly: string;
let userDir: string;
let stateDir: string;

/** Runs a command as the unprivileged service user, the way the attacker would. */
function asNobody(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { uid: SERVICE_USER.uid, gid: SERVICE_USER.gid, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} as nobody: ${r.stderr}`);
}

function issue(): CertificateFiles {
  const pair = makeCertificate({
    names: ['example.test'],
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 89 * DAY),
    issuer: ca,
  });
  return { cert: pair.certPem, chain: ca.certPem, fullchain: pair.certPem + ca.certPem, key: pair.keyPem };
}

function output(dir: string, over: Partial<FileOutput> = {}): FileOutput {
  return {
    fullchain: path.join(dir, 'svc.pem'),
    key: path.join(dir, 'svc.key'),
    certMode: 0o644,
    keyMode: 0o600,
    ...over,
  };
}

async function refusal(outputs: FileOutput[]): Promise<CertpilotError> {
  const err = await new CertStore({ stateDir, archiveDepth: 1 }).install('svc', issue(), outputs).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

beforeAll(() => {
  expect(process.getuid?.()).toBe(0); // these tests play root against another uid
});

beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-fs-outputs-'));
  fs.chmodSync(base, 0o755);
  rootOnly = path.join(base, 'root-only');
  fs.mkdirSync(rootOnly, { mode: 0o700 });
  userDir = path.join(base, 'home');
  fs.mkdirSync(userDir, { mode: 0o755 });
  fs.chownSync(userDir, SERVICE_USER.uid, SERVICE_USER.gid);
  stateDir = path.join(base, 'state');
});
afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('outputs written as root under a directory another user controls', () => {
  it('a symlink planted in that user’s directory is not followed into a root-only directory', async () => {
    asNobody('ln', ['-s', rootOnly, path.join(userDir, 'tls')]);
    const err = await refusal([output(path.join(userDir, 'tls'))]);
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain(`output ${path.join(userDir, 'tls', 'svc')}`);
    expect(err.message).toContain(`${userDir} is owned by uid 65534`);
    expect(fs.readdirSync(rootOnly)).toEqual([]);
    // Refused before the store changed: no version of the certificate is live.
    expect(fs.existsSync(path.join(stateDir, 'certs', 'svc', 'current'))).toBe(false);
  });

  it('nor when the output is to belong to that user: the link is their way out of their own directory', async () => {
    asNobody('ln', ['-s', rootOnly, path.join(userDir, 'tls')]);
    const err = await refusal([output(path.join(userDir, 'tls'), { owner: 'nobody' })]);
    expect(err.message).toContain(`${userDir} is owned by uid 65534`);
    expect(err.message).toContain(`holds the symbolic link ${path.join(userDir, 'tls')}`);
    expect(fs.readdirSync(rootOnly)).toEqual([]);
  });

  it('a symlink deeper down, in a directory of that user inside a root-owned tree, is refused as well', async () => {
    const tree = path.join(base, 'srv');
    fs.mkdirSync(path.join(tree, 'tls'), { recursive: true, mode: 0o755 });
    fs.chownSync(path.join(tree, 'tls'), SERVICE_USER.uid, SERVICE_USER.gid);
    asNobody('ln', ['-s', rootOnly, path.join(tree, 'tls', 'live')]);
    const err = await refusal([output(path.join(tree, 'tls', 'live'))]);
    expect(err.message).toContain(`${path.join(tree, 'tls')} is owned by uid 65534`);
    expect(fs.readdirSync(rootOnly)).toEqual([]);
  });

  it('a directory a group may write is refused, naming the group', async () => {
    const shared = path.join(base, 'shared');
    fs.mkdirSync(shared);
    fs.chownSync(shared, 0, SERVICE_USER.gid);
    fs.chmodSync(shared, 0o775);
    const err = await refusal([output(shared)]);
    expect(err.message).toContain(`${shared} is writable by group gid 65534`);
    expect(fs.readdirSync(shared)).toEqual([]);
  });

  it('the output owner’s own directory without links is fine: the file is theirs, set on the descriptor', async () => {
    await new CertStore({ stateDir, archiveDepth: 1 }).install('svc', issue(), [
      output(userDir, { owner: 'nobody', group: 'nogroup' }),
    ]);
    const st = fs.lstatSync(path.join(userDir, 'svc.key'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([SERVICE_USER.uid, SERVICE_USER.gid, 0o600]);
    expect(fs.readdirSync(userDir).sort()).toEqual(['svc.key', 'svc.pem']);
  });

  it('a symlink in a directory only root may change is followed (the operator’s own layout)', async () => {
    const real = path.join(base, 'real');
    fs.mkdirSync(real, { mode: 0o755 });
    fs.symlinkSync('real', path.join(base, 'alias'));
    await new CertStore({ stateDir, archiveDepth: 1 }).install('svc', issue(), [
      output(path.join(base, 'alias', 'tls')),
    ]);
    expect(fs.readdirSync(path.join(real, 'tls')).sort()).toEqual(['svc.key', 'svc.pem']);
    // Directories created for outputs get exactly 0755, whatever the umask.
    expect(fs.statSync(path.join(real, 'tls')).mode & 0o7777).toBe(0o755);
  });
});
