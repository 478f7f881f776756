import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const ROOT = path.join(__dirname, '..');
interface PackageJson {
  name: string;
  main: string;
  types: string;
  exports: Record<string, { types: string; default: string }>;
}
let pkg: PackageJson;

/**
 * The library entry as a consumer gets it: the built dist/ (jest's globalSetup builds it),
 * loaded by a plain node process by package name (package.json "exports") and by path ("main").
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-lib-'));
  pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inNode(script: string): Promise<unknown> {
  const { stdout } = await execFileP(process.execPath, ['-e', script], { cwd: ROOT });
  return JSON.parse(stdout) as unknown;
}

test('"main", "types" and "exports" name files that exist', async () => {
  expect(pkg.main).toBe('dist/index.js');
  expect(pkg.exports['.']!.default).toBe(`./${pkg.main}`);
  expect(pkg.exports['.']!.types).toBe(`./${pkg.types}`);
  await access(path.join(ROOT, pkg.main));
  await access(path.join(ROOT, pkg.types));
});

test('by package name: loadConfig, runRenew and runCheck are functions; acme-client is not loaded', async () => {
  const out = await inNode(`
    const lib = require(${JSON.stringify(pkg.name)});
    const kinds = Object.fromEntries(['loadConfig', 'runRenew', 'runCheck', 'AcmeService', 'Dns01Solver', 'createLogger']
      .map((k) => [k, typeof lib[k]]));
    const acmeLoaded = Object.keys(require.cache).some((f) => f.includes('node_modules/acme-client/'));
    console.log(JSON.stringify({ kinds, acmeLoaded }));
  `);
  expect(out).toEqual({
    kinds: {
      loadConfig: 'function',
      runRenew: 'function',
      runCheck: 'function',
      AcmeService: 'function',
      Dns01Solver: 'function',
      createLogger: 'function',
    },
    acmeLoaded: false,
  });
});

test('by path ("main"): a config loads and an empty check runs', async () => {
  const file = path.join(dir, 'certpilot.yaml');
  await writeFile(file, `storage:\n  stateDir: ${path.join(dir, 'state')}\n`);
  const out = await inNode(`
    const { loadConfig, runCheck } = require(${JSON.stringify(ROOT)});
    (async () => {
      const config = await loadConfig({ path: ${JSON.stringify(file)} });
      const report = await runCheck(config, {}, { now: new Date() });
      console.log(JSON.stringify({ stateDir: config.storage.stateDir, status: report.status, rows: report.results.length }));
    })().catch((e) => { console.error(e); process.exit(1); });
  `);
  expect(out).toEqual({ stateDir: path.join(dir, 'state'), status: 'unknown', rows: 0 });
});
