import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CertpilotError } from '../../src/core/errors';
import { describeFileProblem } from '../../src/renew/fs-diagnosis';

/**
 * Messages for file-system errors name the file and the fix. The EACCES case uses a real
 * EACCES: a child process running as `nobody` (uid 65534) reads a root-owned 0600 state file,
 * which root itself could always read. It loads the built module (jest's global setup builds
 * dist/ from the current source).
 */

const NOBODY = 65534;
let dir: string;
let stateDir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-fsdiag-'));
  chmodSync(dir, 0o755);
  stateDir = path.join(dir, 'state');
  mkdirSync(path.join(stateDir, 'state'), { recursive: true, mode: 0o755 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function nobodyName(): string {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(NOBODY));
  return line?.split(':')[0] ?? String(NOBODY);
}

test('a real EACCES for a service user: names the file, the uid, the owner and the chown fix', async () => {
  expect(process.getuid?.()).toBe(0); // the fixture needs root to hand the file to another uid
  const file = path.join(stateDir, 'state', 'web.json');
  writeFileSync(file, '{}', { mode: 0o600 });
  const module = path.join(__dirname, '..', '..', 'dist', 'renew', 'fs-diagnosis.js');
  const script = `
    const { describeFileProblem } = require(${JSON.stringify(module)});
    require('fs/promises').readFile(${JSON.stringify(file)}).then(
      () => console.log('read it'),
      async (err) => console.log(JSON.stringify({ code: err.code, message: await describeFileProblem(err, ${JSON.stringify(stateDir)}) })),
    );`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    uid: NOBODY,
    gid: NOBODY,
  });
  const result = JSON.parse(stdout) as { code: string; message: string };
  expect(result.code).toBe('EACCES');
  expect(result.message).toBe(
    `state file ${file} is not readable by uid ${NOBODY} (owned by root): fix with chown ${nobodyName()} ${file}`,
  );
});

test('EISDIR has no path of its own: the path comes from the wrapping error', async () => {
  const file = path.join(stateDir, 'state', 'dir.json');
  mkdirSync(file);
  const err = await readFile(file).catch((e: unknown) => e);
  const wrapped = new CertpilotError('STORE_IO', `state: cannot read ${file}: EISDIR`, { cause: err });
  expect(await describeFileProblem(wrapped, stateDir)).toBe(
    `state file ${file} is a directory, not a file: move it aside (mv ${file} ${file}.bad) and run again`,
  );
});

test('the kind of file comes from where it is in the state directory', async () => {
  const lockDir = path.join(stateDir, 'locks');
  mkdirSync(lockDir, { recursive: true });
  const lock = path.join(lockDir, 'web.lock');
  writeFileSync(lock, '');
  const err = Object.assign(new Error(`EROFS: read-only file system, open '${lock}'`), {
    code: 'EROFS',
    path: lock,
    syscall: 'open',
  });
  expect(await describeFileProblem(err, stateDir)).toBe(
    `lock file ${lock} is on a read-only file system (EROFS): certpilot needs its state directory writable`,
  );
  const outside = Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    path: '/srv/out/fullchain.pem',
  });
  expect(await describeFileProblem(outside, stateDir)).toBe(
    'file /srv/out/fullchain.pem: no space left on the file system (ENOSPC): free some space',
  );
});

test('anything that is not a file-system error is left to the caller', async () => {
  expect(await describeFileProblem(new Error('boom'), stateDir)).toBeUndefined();
  expect(
    await describeFileProblem(new CertpilotError('ACME_PROBLEM', 'acme: nope /x/y'), stateDir),
  ).toBeUndefined();
  const noPath = Object.assign(new Error('EACCES'), { code: 'EACCES' });
  expect(await describeFileProblem(noPath, stateDir)).toBeUndefined();
});
