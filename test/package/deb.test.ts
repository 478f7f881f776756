import { execFile, type ExecFileOptions } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { version } from '../../src/cli/main';

/**
 * The Debian package through its whole life on this machine: built by scripts/package-deb.sh,
 * installed with dpkg, used as the service user, verified with systemd-analyze, upgraded over
 * itself with an edited conffile, removed and purged, and checked by lintian. Runs as root
 * (dpkg) and leaves the machine as it found it: afterAll purges whatever is left.
 * Needs dpkg-deb, lintian and systemd-analyze (.ci/run installs them). dpkg runs with
 * --force-unsafe-io: a throwaway install needs no fsync per file (3000 files, a slow disk).
 */

const ROOT = path.join(__dirname, '..', '..');
const ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: ENV, maxBuffer: 64 * 1024 * 1024, timeout: 300_000, encoding: 'utf8', ...opts },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function ok(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  const res = await sh(cmd, args, opts);
  if (res.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}:\n${res.stderr}${res.stdout}`);
  return res.stdout;
}

async function installedVersion(): Promise<string | undefined> {
  const res = await sh('dpkg-query', ['-W', '-f=${Status} ${Version}', 'certpilot']);
  const m = /^install ok installed (\S+)$/.exec(res.stdout);
  return m?.[1];
}

async function purge(): Promise<void> {
  await sh('dpkg', ['--purge', 'certpilot']);
}

function mode(p: string): string {
  return (statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
}

async function owner(p: string): Promise<string> {
  return (await ok('stat', ['-c', '%U:%G', p])).trim();
}

let dir: string;
let deb: string;
let lintian: Promise<Result>;
/** Set once this test may have installed the package: only then does afterAll purge. */
let touched = false;

beforeAll(async () => {
  expect(process.getuid?.()).toBe(0);
  // An installation found here is not this test's to remove: fail and leave it alone.
  expect(await installedVersion()).toBeUndefined();
  touched = true;
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-deb-'));
  const out = await ok('bash', [path.join(ROOT, 'scripts', 'package-deb.sh'), dir], { cwd: ROOT });
  deb = out.trim().split('\n').pop()!;
  // lintian takes about a minute: it runs while the package is exercised.
  lintian = sh('lintian', ['--tag-display-limit', '0', '--fail-on', 'error', deb]);
}, 600_000);

afterAll(async () => {
  if (touched) await purge();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

test('the file is certpilot_<version>_all.deb with the declared control fields', async () => {
  expect(path.basename(deb)).toBe(`certpilot_${version()}_all.deb`);
  const control = await ok('dpkg-deb', ['--field', deb]);
  expect(control).toMatch(/^Architecture: all$/m);
  expect(control).toMatch(/^Depends: nodejs \(>= 20\), adduser$/m);
  const conffiles = await ok('sh', ['-c', `dpkg-deb --info "${deb}" conffiles`]);
  expect(conffiles.trim()).toBe('/etc/certpilot/certpilot.yaml');
  // Production dependencies only: no compiler, test runner or linter.
  const files = await ok('dpkg-deb', ['--contents', deb]);
  for (const dev of ['typescript', 'jest', 'eslint', 'ts-node', 'prettier'])
    expect(files).not.toContain(`/usr/lib/certpilot/node_modules/${dev}/`);
  expect(files).toContain('./usr/lib/certpilot/node_modules/acme-client/package.json');
});

test('installs: /usr/bin/certpilot runs as a JavaScript file, as the unit starts it', async () => {
  await ok('dpkg', ['--force-unsafe-io', '-i', deb]);
  expect(await installedVersion()).toBe(version());
  expect(lstatSync('/usr/bin/certpilot').isSymbolicLink()).toBe(true);
  expect(readlinkSync('/usr/bin/certpilot')).toBe('../lib/certpilot/bin/certpilot.js');
  expect(readFileSync('/usr/bin/certpilot', 'utf8')).toMatch(/^#!\/usr\/bin\/node\n/);
  expect(await ok('/usr/bin/certpilot', ['--version'])).toBe(`certpilot ${version()}\n`);
  expect(
    await ok('/usr/bin/node', [
      '--max-semi-space-size=1',
      '--optimize-for-size',
      '--max-opt=0',
      '--bytecode-old-age=2',
      '/usr/bin/certpilot',
      'version',
    ]),
  ).toBe(`certpilot ${version()}\n`);
}, 300_000);

test('the certpilot system user and the directories have the modes the units expect', async () => {
  const [, , uid, , , home, shell] = (await ok('getent', ['passwd', 'certpilot'])).trim().split(':');
  expect(Number(uid)).toBeLessThan(1000);
  expect({ home, shell }).toEqual({ home: '/var/lib/certpilot', shell: '/usr/sbin/nologin' });
  const seen: Record<string, string> = {};
  for (const p of [
    '/etc/certpilot',
    '/etc/certpilot/certpilot.yaml',
    '/var/lib/certpilot',
    '/etc/ssl/certpilot',
  ])
    seen[p] = `${await owner(p)} ${mode(p)}`;
  expect(seen).toEqual({
    '/etc/certpilot': 'root:certpilot 0750',
    '/etc/certpilot/certpilot.yaml': 'root:certpilot 0640',
    '/var/lib/certpilot': 'certpilot:certpilot 0700',
    '/etc/ssl/certpilot': 'certpilot:certpilot 0755',
  });
});

test('the shipped conffile passes `certpilot config check` as the service user', async () => {
  const out = await ok('runuser', [
    '-u',
    'certpilot',
    '--',
    '/usr/bin/certpilot',
    'config',
    'check',
    '--config',
    '/etc/certpilot/certpilot.yaml',
  ]);
  expect(out).toMatch(/^# \/etc\/certpilot\/certpilot\.yaml: valid$/m);
  expect(out).toMatch(/^certificates: \[\]$/m);
});

test('man page, completion and docs are where the units and the man page say', async () => {
  expect((await ok('man', ['-w', 'certpilot'])).trim()).toBe('/usr/share/man/man1/certpilot.1.gz');
  expect(existsSync('/usr/share/bash-completion/completions/certpilot')).toBe(true);
  expect(existsSync('/usr/share/doc/certpilot/copyright')).toBe(true);
  const units = (await ok('sh', ['-c', 'ls /lib/systemd/system/certpilot*'])).trim().split('\n');
  expect(units.map((u) => path.basename(u)).sort()).toEqual([
    'certpilot-reload-nginx.path',
    'certpilot-reload-nginx.service',
    'certpilot-renew.service',
    'certpilot-renew.timer',
    'certpilot.service',
  ]);
  for (const unit of units) {
    for (const m of readFileSync(unit, 'utf8').matchAll(/^Documentation=file:\/\/(\S+)$/gm))
      expect({ unit, doc: m[1], exists: existsSync(m[1]!) }).toEqual({ unit, doc: m[1], exists: true });
  }
});

test('systemd-analyze verify passes on the installed units, with no warning at all', async () => {
  const res = await sh('sh', ['-c', 'systemd-analyze verify --man=no /lib/systemd/system/certpilot* 2>&1']);
  expect({ code: res.code, out: res.stdout.trim() }).toEqual({ code: 0, out: '' });
});

test('an upgrade keeps the edited conffile (--force-confold) and its owner and mode', async () => {
  const edit = `# local edit ${process.pid}\n`;
  writeFileSync(
    '/etc/certpilot/certpilot.yaml',
    readFileSync('/etc/certpilot/certpilot.yaml', 'utf8') + edit,
  );
  // The next version ships a changed conffile too, so dpkg has a real conflict to resolve.
  const tree = path.join(dir, 'next');
  await ok('dpkg-deb', ['-R', deb, tree]);
  const next = `${version()}+next1`;
  const control = path.join(tree, 'DEBIAN', 'control');
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${next}`));
  const conf = path.join(tree, 'etc', 'certpilot', 'certpilot.yaml');
  writeFileSync(conf, readFileSync(conf, 'utf8') + '# shipped in the next version\n');
  const md5 = path.join(tree, 'DEBIAN', 'md5sums');
  await ok('sh', [
    '-c',
    `cd "${tree}" && find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum > "${md5}"`,
  ]);
  const nextDeb = path.join(dir, `certpilot_${next}_all.deb`);
  await ok('dpkg-deb', ['--root-owner-group', '--build', tree, nextDeb]);

  await ok('dpkg', ['--force-unsafe-io', '--force-confold', '-i', nextDeb]);
  expect(await installedVersion()).toBe(next);
  const kept = readFileSync('/etc/certpilot/certpilot.yaml', 'utf8');
  expect(kept.endsWith(edit)).toBe(true);
  expect(kept).not.toContain('# shipped in the next version');
  expect(readFileSync('/etc/certpilot/certpilot.yaml.dpkg-dist', 'utf8')).toContain(
    '# shipped in the next version',
  );
  expect(`${await owner('/etc/certpilot/certpilot.yaml')} ${mode('/etc/certpilot/certpilot.yaml')}`).toBe(
    'root:certpilot 0640',
  );
  expect(await ok('/usr/bin/certpilot', ['--version'])).toBe(`certpilot ${version()}\n`);
}, 300_000);

test('remove takes the program away and keeps configuration and state; purge leaves nothing', async () => {
  // State the service would have written, which purge must remove as well.
  writeFileSync('/var/lib/certpilot/marker', 'state\n');
  await ok('dpkg', ['--force-unsafe-io', '--remove', 'certpilot']);
  expect(existsSync('/usr/lib/certpilot')).toBe(false);
  expect(existsSync('/usr/bin/certpilot')).toBe(false);
  expect(existsSync('/lib/systemd/system/certpilot.service')).toBe(false);
  expect(existsSync('/etc/certpilot/certpilot.yaml')).toBe(true);
  expect(existsSync('/var/lib/certpilot/marker')).toBe(true);
  expect((await sh('getent', ['passwd', 'certpilot'])).code).toBe(0);

  await ok('dpkg', ['--force-unsafe-io', '--purge', 'certpilot']);
  const left = [
    '/etc/certpilot',
    '/var/lib/certpilot',
    '/etc/ssl/certpilot',
    '/usr/lib/certpilot',
    '/usr/share/doc/certpilot',
  ].filter((p) => existsSync(p));
  expect(left).toEqual([]);
  expect((await sh('getent', ['passwd', 'certpilot'])).code).toBe(2);
  expect((await sh('getent', ['group', 'certpilot'])).code).toBe(2);
  expect(await installedVersion()).toBeUndefined();
}, 300_000);

test('lintian reports no error', async () => {
  const res = await lintian;
  const errors = res.stdout.split('\n').filter((l) => l.startsWith('E:'));
  expect(errors).toEqual([]);
  expect(res.code).toBe(0);
}, 300_000);
