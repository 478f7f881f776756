import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The import rules of .dependency-cruiser.cjs (layers, no cycles, no test code in src/) hold
 * on the tree, and the check really fails when a cycle or a climbing import is planted in a
 * copy of it. dependency-cruiser reads the TypeScript imports itself (type-only ones too).
 */
const ROOT = path.join(__dirname, '..', '..');
const DEPCRUISE = path.join(ROOT, 'node_modules', '.bin', 'depcruise');

function cruise(cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      DEPCRUISE,
      ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
      { cwd, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, out: stdout + stderr });
      },
    );
  });
}

/** A copy of src/ with the rules and tsconfig, to plant violations in. */
async function copyTree(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-layers-'));
  await cp(path.join(ROOT, 'src'), path.join(dir, 'src'), { recursive: true });
  for (const f of ['.dependency-cruiser.cjs', 'tsconfig.json'])
    await cp(path.join(ROOT, f), path.join(dir, f));
  return dir;
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('src/ keeps its layers and has no import cycles', async () => {
  const res = await cruise(ROOT);
  expect(res.out).toMatch(/no dependency violations found/);
  expect(res.code).toBe(0);
}, 60_000);

test('a planted cycle between two files fails the check', async () => {
  const dir = await copyTree();
  dirs.push(dir);
  await writeFile(
    path.join(dir, 'src/core/planted-a.ts'),
    "import { b } from './planted-b';\nexport const a = () => b;\n",
  );
  await writeFile(
    path.join(dir, 'src/core/planted-b.ts'),
    "import { a } from './planted-a';\nexport const b = () => a;\n",
  );
  const res = await cruise(dir);
  expect(res.code).not.toBe(0);
  expect(res.out).toMatch(/no-circular: src\/core\/planted-(a|b)\.ts/);
}, 60_000);

test('a planted import that climbs a layer fails the check', async () => {
  const dir = await copyTree();
  dirs.push(dir);
  await appendFile(
    path.join(dir, 'src/core/clock.ts'),
    "\nexport { runCli as planted } from '../cli/main';\n",
  );
  const res = await cruise(dir);
  expect(res.code).not.toBe(0);
  expect(res.out).toMatch(/layer-core: src\/core\/clock\.ts → src\/cli\/main\.ts/);
}, 60_000);
