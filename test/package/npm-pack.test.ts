import { execFile, type ExecFileOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { version } from '../../src/cli/main';

/**
 * The npm tarball: `npm pack` (whose prepack builds dist/ and renders the man page) and then
 * `npm install -g --prefix DIR ./certpilot-<v>.tgz` give a working `certpilot`. Packed from a
 * copy of the working tree, so rebuilding dist/ cannot disturb tests running the CLI from this
 * checkout. The tarball bundles its production dependencies (bundleDependencies), so the
 * install runs --offline: no traffic leaves the machine, as on an air-gapped server.
 */

const ROOT = path.join(__dirname, '..', '..');

function sh(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: 240_000, encoding: 'utf8', ...opts },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`))
          : resolve(String(stdout)),
    );
  });
}

let dir: string;
let tgz: string;
let files: string[];
let prefix: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-npm-'));
  const src = path.join(dir, 'src');
  const listed = (
    await sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })
  )
    .split('\0')
    .filter((f) => f && existsSync(path.join(ROOT, f)));
  for (const f of listed) {
    mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    cpSync(path.join(ROOT, f), path.join(src, f));
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  const out = await sh('npm', ['pack', '--json', '--pack-destination', dir], { cwd: src });
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tgz = path.join(dir, info!.filename);
  files = info!.files.map((f) => f.path);
  prefix = path.join(dir, 'prefix');
  await sh('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tgz], {
    cwd: dir,
  });
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the tarball is certpilot-<version>.tgz and not private', () => {
  expect(path.basename(tgz)).toBe(`certpilot-${version()}.tgz`);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  expect(pkg.private).toBeUndefined();
  expect(pkg.license).toBe('Apache-2.0');
});

test('every production dependency is bundled, and nothing else', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    bundleDependencies: string[];
  };
  expect([...pkg.bundleDependencies].sort()).toEqual(Object.keys(pkg.dependencies).sort());
});

test('it holds the program, the units, the configs, the docs, the man page and the LICENSE', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'bin/certpilot.js',
      'dist/cli/main.js',
      'systemd/certpilot.service',
      'systemd/certpilot-renew.service',
      'systemd/certpilot-renew.timer',
      'systemd/certpilot-reload-nginx.path',
      'systemd/certpilot-reload-nginx.service',
      'config/certpilot.example.yaml',
      'config/certpilot.yaml',
      'docs/systemd.md',
      'docs/configuration.md',
      'dist/share/man/man1/certpilot.1',
      'dist/share/bash-completion/completions/certpilot',
      'LICENSE',
      'README.md',
    ]),
  );
  // The production dependencies are inside; nothing from the development side.
  expect(files).toContain('node_modules/acme-client/package.json');
  expect(files.filter((f) => /^node_modules\/(typescript|jest|eslint|ts-node|prettier)\//.test(f))).toEqual(
    [],
  );
  expect(files.filter((f) => /^(src|test|scripts|bench|packaging)\/|^dist\/deb\/|\.deb$/.test(f))).toEqual(
    [],
  );
  const license = readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  expect(license).toContain('Apache License');
  expect(license).toContain('Version 2.0, January 2004');
});

test('npm install -g --prefix gives a working certpilot with its man page', async () => {
  const bin = path.join(prefix, 'bin', 'certpilot');
  const help = await sh(bin, ['--help']);
  expect(help).toMatch(/^ {2}renew /m);
  expect(await sh(bin, ['--version'])).toBe(`certpilot ${version()}\n`);
  const example = path.join(prefix, 'lib', 'node_modules', 'certpilot', 'config', 'certpilot.yaml');
  expect(await sh(bin, ['config', 'check', '--config', example])).toMatch(/: valid$/m);
  expect(existsSync(path.join(prefix, 'share', 'man', 'man1', 'certpilot.1'))).toBe(true);
});
