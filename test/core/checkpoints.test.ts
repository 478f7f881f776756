import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CHECKPOINTS, checkpoint, onCheckpoint, type Checkpoint } from '../../src/core/checkpoints';

const ROOT = path.join(__dirname, '..', '..');
const PRELOAD = path.join(ROOT, 'test', 'helpers', 'fault-preload.js');
const BUILT = path.join(ROOT, 'dist', 'core', 'checkpoints.js');

describe('checkpoints', () => {
  test('reaching a point calls the registered listeners, and no longer once removed', () => {
    const seen: Checkpoint[] = [];
    const off = onCheckpoint((p) => seen.push(p));
    checkpoint('after-finalize');
    checkpoint('mid-store-write');
    off();
    checkpoint('after-finalize');
    expect(seen).toEqual(['after-finalize', 'mid-store-write']);
  });

  test('no production module reads a fault variable', async () => {
    const files = (await readdir(path.join(ROOT, 'src'), { recursive: true })).filter((f) =>
      f.endsWith('.ts'),
    );
    expect(files.length).toBeGreaterThan(50);
    const offenders: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(ROOT, 'src', f), 'utf8');
      if (/CERTPILOT_FAULT_POINT|CERTPILOT_TEST_KILL_AT/.test(text)) offenders.push(f);
    }
    expect(offenders).toEqual([]);
  });
});

describe('fault-preload.js (node -r)', () => {
  // A child that reaches `after-finalize` through the built registry, as the CLI would.
  const reach = (killAt: string | undefined) =>
    spawnSync(
      process.execPath,
      ['-r', PRELOAD, '-e', `require(${JSON.stringify(BUILT)}).checkpoint('after-finalize')`],
      {
        env: { ...process.env, CERTPILOT_TEST_KILL_AT: killAt ?? '' },
        encoding: 'utf8',
      },
    );

  test('kills the process with SIGKILL at the named point', () => {
    const r = reach('after-finalize');
    expect(r.signal).toBe('SIGKILL');
    expect(r.stderr).toContain('fault point after-finalize reached');
  });

  test.each([
    ['another point', 'mid-store-write'],
    ['no variable', undefined],
  ])('%s: the process carries on', (_label, killAt) => {
    const r = reach(killAt);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });

  test('refuses an unknown point instead of never firing', () => {
    const r = reach('after-finalise');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown checkpoint "after-finalise"');
    expect(CHECKPOINTS).not.toContain('after-finalise');
  });
});
