import { execFile } from 'node:child_process';
import { open, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { expectSameFiles, renew, snapshot, tempFilesBelow, type RenewRun } from './helpers';

/**
 * Disk faults (issue #7 item 4) during real renewals (Pebble + BIND, the in-process CLI): an
 * output directory on a read-only file system (EROFS), a full output file system and a full
 * state directory (ENOSPC). Each time the renewal fails with the errno and the path named,
 * the stored pair and the output files are byte-identical to before, no temp file is left,
 * and once the fault is gone the next run renews.
 *
 * The faults are real file systems (tmpfs mounts), not mocks, so the test needs root: root
 * ignores directory permissions, so chmod 0555 proves nothing, and only root may mount. CI
 * runs as root. Without root the suite FAILS (it is not skipped) and says why.
 */

const execFileP = promisify(execFile);
const PAGE = 4096;

const OUT_CERT = 'outro';
const FULL_OUT_CERT = 'outfull';
const STATE_CERT = 'statefull';

let tb: Testbed;
let root: string;
const mounted: string[] = [];
/** tmpfs output dir, remounted read-only by one test. */
let roDir: string;
/** tiny tmpfs output dir, filled by one test. */
let fullOutDir: string;
/** tiny tmpfs state dir, filled by one test. */
let fullStateDir: string;
/** state dir on the ordinary temp file system, for the output tests. */
let stateDir: string;
let outputsConfig: string;
let stateConfig: string;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'test/faults/disk.test.ts needs root: it mounts tmpfs file systems to produce real EROFS and ENOSPC ' +
        '(root ignores directory permissions, so chmod cannot make a read-only directory for it, and only ' +
        'root may mount). Run it as root, as CI does; it is deliberately not skipped.',
    );
  }
}

async function mountTmpfs(dir: string, sizeKiB: number, mode = '0755'): Promise<void> {
  await mkdir(dir, { recursive: true });
  await execFileP('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=${mode}`, 'tmpfs', dir]);
  mounted.push(dir);
}

async function remount(dir: string, mode: 'ro' | 'rw'): Promise<void> {
  await execFileP('mount', ['-o', `remount,${mode}`, dir]);
}

/**
 * Fills the file system of `dir` until ENOSPC, leaving `leavePages` pages free: a reserve file
 * of that size is written first and removed at the end. Returns the filler files (remove them
 * to free the space).
 */
async function fill(dir: string, leavePages = 0): Promise<string[]> {
  const reserve = path.join(dir, 'reserve.bin');
  if (leavePages > 0) await writeFile(reserve, Buffer.alloc(leavePages * PAGE));
  const filler = path.join(dir, 'filler.bin');
  const fh = await open(filler, 'w');
  const chunk = Buffer.alloc(PAGE, 0xa5);
  try {
    for (;;) {
      try {
        const { bytesWritten } = await fh.write(chunk);
        if (bytesWritten < chunk.length) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  } finally {
    await fh.close();
  }
  if (leavePages > 0) await unlink(reserve);
  return [filler];
}

async function outputFiles(dir: string): Promise<Record<string, Buffer>> {
  const names = ['cert.pem', 'fullchain.pem', 'privkey.pem'];
  const entries = await Promise.all(names.map(async (n) => [n, await readFile(path.join(dir, n))] as const));
  return Object.fromEntries(entries);
}

function outputsOf(dir: string): Record<string, string> {
  return {
    cert: path.join(dir, 'cert.pem'),
    fullchain: path.join(dir, 'fullchain.pem'),
    key: path.join(dir, 'privkey.pem'),
  };
}

/** What nginx would read must be what the store says is current. */
async function expectOutputsMatchStore(outDir: string, state: string, name: string): Promise<void> {
  const [out, stored] = await Promise.all([outputFiles(outDir), snapshot(state, name)]);
  expect(out['cert.pem']!.equals(stored['cert.pem']!)).toBe(true);
  expect(out['fullchain.pem']!.equals(stored['fullchain.pem']!)).toBe(true);
  expect(out['privkey.pem']!.equals(stored['privkey.pem']!)).toBe(true);
}

function failedWith(run: RenewRun, name: string, errno: RegExp): string {
  expect(run.code).toBe(1);
  const out = run.cert(name);
  expect(out.status).toBe('failed');
  expect(out.errorCode).toBe('STORE_IO');
  expect(out.error).toMatch(errno);
  return out.error ?? '';
}

async function leftoverTxt(): Promise<string[]> {
  const names = ['r', 'f', 's'].map((l) => `_acme-challenge.${l}.example.test`);
  return (await Promise.all(names.map((n) => tb.bind.queryTxt(n)))).flat();
}

beforeAll(async () => {
  requireRoot();
  tb = await startTestbed();
  root = await mkdtemp(path.join(os.tmpdir(), 'certpilot-disk-'));
  roDir = path.join(root, 'ro-out');
  fullOutDir = path.join(root, 'full-out');
  fullStateDir = path.join(root, 'full-state');
  stateDir = path.join(root, 'state');
  await mountTmpfs(roDir, 1024);
  await mountTmpfs(fullOutDir, 64);
  await mountTmpfs(fullStateDir, 256, '0700'); // certpilot refuses a state directory others can read

  const fast = { propagationTimeout: '3s', propagationInterval: '100ms' };
  const common = {
    // Each failed install still counts as an issuance for the exact-set guard (src/plan/schedule.ts),
    // which is not under test here.
    defaults: { renewal: { maxOrdersPerWeek: 50 } },
    acme: {
      directory: tb.pebble.directoryUrl,
      caBundle: tb.pebble.tlsCaPath,
      termsAgreed: true,
      email: 'ops@example.test',
      requestTimeout: '1s',
    },
    dns: {
      resolvers: [`127.0.0.1:${tb.bind.port}`],
      nameserverPort: tb.bind.port,
      queryTimeout: '500ms',
      providers: { bind: tb.bindProvider(fast) },
    },
  };
  outputsConfig = await tb.writeConfig(
    [
      {
        name: OUT_CERT,
        domains: ['r.example.test'],
        dns: { provider: 'bind' },
        outputs: [outputsOf(roDir)],
      },
      {
        name: FULL_OUT_CERT,
        domains: ['f.example.test'],
        dns: { provider: 'bind' },
        outputs: [outputsOf(fullOutDir)],
      },
    ],
    { ...common, storage: { stateDir } },
  );
  stateConfig = await tb.writeConfig(
    [{ name: STATE_CERT, domains: ['s.example.test'], dns: { provider: 'bind' } }],
    { ...common, storage: { stateDir: fullStateDir } },
  );
  for (const cfg of [outputsConfig, stateConfig]) {
    const run = await renew(cfg);
    if (run.code !== 0) throw new Error(`initial issuance failed:\n${run.stdout}\n${run.stderr}`);
  }
}, 60_000);

afterAll(async () => {
  // Unmount whatever was mounted, even after a failure; a busy mount is detached lazily.
  for (const dir of mounted.reverse()) {
    await execFileP('umount', [dir]).catch(() => execFileP('umount', ['-l', dir]));
  }
  if (root) await rm(root, { recursive: true, force: true });
  await tb?.stop();
});

describe('disk faults', () => {
  test('output directory on a read-only file system: EROFS named, store and outputs byte-identical, no temp files; writable again -> renews', async () => {
    const stored = await snapshot(stateDir, OUT_CERT);
    const outputs = await outputFiles(roDir);
    await remount(roDir, 'ro');
    let writable = false;
    try {
      const run = await renew(outputsConfig, OUT_CERT, '--force');
      const error = failedWith(run, OUT_CERT, /EROFS/);
      expect(error).toContain(roDir);
      // The new certificate was issued; only writing it out failed.
      expect(run.logged('certificate issued')).toHaveLength(1);
      expectSameFiles(await snapshot(stateDir, OUT_CERT), stored);
      expectSameFiles(await outputFiles(roDir), outputs);
      expect(await tempFilesBelow(stateDir)).toEqual([]);
      expect(await leftoverTxt()).toEqual([]);

      await remount(roDir, 'rw');
      writable = true;
      // Nothing was half-installed: what the outputs hold is still what the store holds.
      await expectOutputsMatchStore(roDir, stateDir, OUT_CERT);
      const again = await renew(outputsConfig, OUT_CERT, '--force');
      if (again.code !== 0) throw new Error(`renew after remount failed:\n${again.stdout}\n${again.stderr}`);
      expect(again.cert(OUT_CERT).status).toBe('renewed');
      await expectOutputsMatchStore(roDir, stateDir, OUT_CERT);
      expect((await outputFiles(roDir))['cert.pem']!.equals(outputs['cert.pem']!)).toBe(false);
    } finally {
      if (!writable) await remount(roDir, 'rw');
    }
  });

  test('full output file system: ENOSPC named, store and outputs byte-identical, no temp files; space freed -> renews', async () => {
    const stored = await snapshot(stateDir, FULL_OUT_CERT);
    const outputs = await outputFiles(fullOutDir);
    const fillers = await fill(fullOutDir);
    try {
      const run = await renew(outputsConfig, FULL_OUT_CERT, '--force');
      const error = failedWith(run, FULL_OUT_CERT, /ENOSPC/);
      expect(error).toContain(fullOutDir);
      expectSameFiles(await snapshot(stateDir, FULL_OUT_CERT), stored);
      expectSameFiles(await outputFiles(fullOutDir), outputs);
      expect(await tempFilesBelow(fullOutDir)).toEqual([]);
      expect(await tempFilesBelow(stateDir)).toEqual([]);
      expect(await leftoverTxt()).toEqual([]);
    } finally {
      await Promise.all(fillers.map((f) => rm(f, { force: true })));
    }
    const again = await renew(outputsConfig, FULL_OUT_CERT, '--force');
    if (again.code !== 0)
      throw new Error(`renew after freeing space failed:\n${again.stdout}\n${again.stderr}`);
    await expectOutputsMatchStore(fullOutDir, stateDir, FULL_OUT_CERT);
  });

  test('full state directory: ENOSPC named, stored pair byte-identical, no temp files, no TXT left; space freed -> renews', async () => {
    const stored = await snapshot(fullStateDir, STATE_CERT);
    // Room for the challenge journal (one page) but not for a new version (four files): the
    // order succeeds and the store is what runs out of space.
    const fillers = await fill(fullStateDir, 2);
    try {
      const run = await renew(stateConfig, STATE_CERT, '--force');
      failedWith(run, STATE_CERT, /ENOSPC/);
      expect(run.logged('certificate issued')).toHaveLength(1);
      expectSameFiles(await snapshot(fullStateDir, STATE_CERT), stored);
      expect(await tempFilesBelow(fullStateDir)).toEqual([]);
      expect(await leftoverTxt()).toEqual([]);
    } finally {
      await Promise.all(fillers.map((f) => rm(f, { force: true })));
    }
    const again = await renew(stateConfig, STATE_CERT, '--force');
    if (again.code !== 0)
      throw new Error(`renew after freeing space failed:\n${again.stdout}\n${again.stderr}`);
    expect(again.cert(STATE_CERT).status).toBe('renewed');
  });
});
