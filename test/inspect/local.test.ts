import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mapWithConcurrency } from '../../src/core/concurrency';
import type { Thresholds } from '../../src/inspect/findings';
import { expandWatchPaths, inspectFile, inspectFiles } from '../../src/inspect/local';
import { NAMES, makePki, type Pki } from './fixtures';

const NOW = new Date('2026-11-15T12:00:00Z');
const THRESHOLDS: Thresholds = { warningDays: 21, criticalDays: 7 };

let pki: Pki;
let dir: string;

beforeAll(async () => {
  pki = makePki(NOW);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'certpilot-local-'));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function write(rel: string, content: string): Promise<string> {
  const file = path.join(dir, rel);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  return file;
}

const ctx = { now: NOW, thresholds: THRESHOLDS, expectedNames: NAMES };

describe('inspectFile', () => {
  it('reads a full chain: leaf, then intermediates', async () => {
    const file = await write('ok/fullchain.pem', pki.valid.certPem + pki.intermediate.certPem);
    const r = await inspectFile(file, { ...ctx, keyPath: await write('ok/privkey.pem', pki.valid.keyPem) });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('ok');
    expect(r.certificate?.names).toEqual(NAMES);
    expect(r.chain.map((c) => c.subject)).toEqual(['CN=certpilot test intermediate']);
    expect(r.findings).toEqual([]);
    expect(r.daysLeft).toBeCloseTo(60, 5);
  });

  it('reports a mismatched key file', async () => {
    const file = await write('mismatch/fullchain.pem', pki.valid.certPem + pki.intermediate.certPem);
    const keyPath = await write('mismatch/privkey.pem', pki.expired.keyPem);
    const r = await inspectFile(file, { ...ctx, keyPath });
    expect(r.findings.map((f) => f.code)).toEqual(['key-mismatch']);
    expect(r.status).toBe('critical');
  });

  it('checks a key stored in the same file (HAProxy style)', async () => {
    const good = await write(
      'combined/good.pem',
      pki.valid.certPem + pki.intermediate.certPem + pki.valid.keyPem,
    );
    const bad = await write(
      'combined/bad.pem',
      pki.valid.certPem + pki.intermediate.certPem + pki.twoDays.keyPem,
    );
    expect((await inspectFile(good, ctx)).findings).toEqual([]);
    expect((await inspectFile(bad, ctx)).findings.map((f) => f.code)).toEqual(['key-mismatch']);
  });

  it('reports a missing chain unless told the file is leaf-only', async () => {
    const file = await write('leaf/cert.pem', pki.valid.certPem);
    expect((await inspectFile(file, ctx)).findings.map((f) => f.code)).toEqual(['chain-missing']);
    expect((await inspectFile(file, { ...ctx, checkChain: false })).findings).toEqual([]);
  });

  it('reports a bundle in the wrong order', async () => {
    const file = await write(
      'order/fullchain.pem',
      pki.valid.certPem + pki.root.certPem + pki.intermediate.certPem,
    );
    expect((await inspectFile(file, ctx)).findings.map((f) => f.code)).toEqual(['chain-order']);
  });

  it('assesses expiry of the leaf', async () => {
    const file = await write('expired/fullchain.pem', pki.expired.certPem + pki.intermediate.certPem);
    const r = await inspectFile(file, ctx);
    expect(r.status).toBe('critical');
    expect(r.findings.map((f) => f.code)).toEqual(['expired']);
  });

  it.each([
    ['a missing file', async () => path.join(dir, 'nope.pem'), /cannot read/],
    ['an empty file', async () => write('bad/empty.pem', ''), /holds no certificate/],
    ['a file that is not PEM', async () => write('bad/text.pem', 'hello\n'), /holds no certificate/],
    [
      'broken base64',
      async () => write('bad/broken.pem', '-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n'),
      /cannot parse/,
    ],
    ['a directory', async () => dir, /not a regular file/],
  ])('reports %s as unknown instead of throwing', async (_name, make, message) => {
    const r = await inspectFile(await make(), ctx);
    expect(r.status).toBe('unknown');
    expect(r.error).toMatch(message);
    expect(r.findings).toEqual([]);
  });

  it('refuses files far larger than any PEM bundle', async () => {
    const file = path.join(dir, 'bad/huge.pem');
    await fs.writeFile(file, Buffer.alloc(2 * 1024 * 1024, 0x41));
    expect((await inspectFile(file, ctx)).error).toMatch(/larger than any PEM bundle/);
  });

  it('rejects when cancelled', async () => {
    const file = await write('cancel/fullchain.pem', pki.valid.certPem);
    const ac = new AbortController();
    ac.abort();
    await expect(inspectFile(file, { ...ctx, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('expandWatchPaths', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(dir, 'glob');
    for (const rel of [
      'a.pem',
      'b.pem',
      'c.crt',
      'ab.pem',
      '.hidden.pem',
      'sub/d.pem',
      'sub/deep/e.pem',
      'sub/deep/f.key',
    ]) {
      await write(path.join('glob', rel), pki.valid.certPem);
    }
    await fs.symlink(path.join(root, 'a.pem'), path.join(root, 'sub', 'link.pem'));
  });

  const rel = (files: string[]): string[] => files.map((f) => path.relative(root, f));

  it('matches * in one directory, skipping dot files', async () => {
    expect(rel(await expandWatchPaths([path.join(root, '*.pem')]))).toEqual(['a.pem', 'ab.pem', 'b.pem']);
  });

  it('matches ? as one character', async () => {
    expect(rel(await expandWatchPaths([path.join(root, '?.pem')]))).toEqual(['a.pem', 'b.pem']);
  });

  it('matches ** across directories and follows symlinks', async () => {
    expect(rel(await expandWatchPaths([path.join(root, '**/*.pem')]))).toEqual([
      'a.pem',
      'ab.pem',
      'b.pem',
      'sub/d.pem',
      'sub/deep/e.pem',
      'sub/link.pem',
    ]);
  });

  it('merges patterns, de-duplicates and sorts', async () => {
    const files = await expandWatchPaths([
      path.join(root, 'sub/**/*.pem'),
      path.join(root, '{a,c}.*'),
      path.join(root, 'a.pem'),
    ]);
    expect(rel(files)).toEqual(['a.pem', 'c.crt', 'sub/d.pem', 'sub/deep/e.pem', 'sub/link.pem']);
  });

  it('keeps literal paths even when missing, so the inventory reports them', async () => {
    const missing = path.join(root, 'missing.pem');
    expect(await expandWatchPaths([missing])).toEqual([missing]);
    expect(await expandWatchPaths([path.join(root, 'nothing-*.pem')])).toEqual([]);
  });
});

describe('inspectFiles', () => {
  it('inspects 1,000 files with bounded concurrency, results in input order', async () => {
    const bulk = path.join(dir, 'bulk');
    await fs.mkdir(bulk);
    const pems = [
      pki.valid.certPem + pki.intermediate.certPem,
      pki.expired.certPem + pki.intermediate.certPem,
    ];
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        fs.writeFile(path.join(bulk, `c${String(i).padStart(4, '0')}.pem`), pems[i % 2] as string),
      ),
    );
    const files = await expandWatchPaths([path.join(bulk, '*.pem')]);
    expect(files).toHaveLength(1000);
    const results = await inspectFiles(files, ctx, 16);
    expect(results.map((r) => r.path)).toEqual(files);
    expect(results.filter((r) => r.status === 'ok')).toHaveLength(500);
    expect(results.filter((r) => r.status === 'critical')).toHaveLength(500);
  });
});

describe('mapWithConcurrency', () => {
  it('never runs more than the limit at once and keeps input order', async () => {
    let running = 0;
    let peak = 0;
    // Each call waits for a promise the test resolves, so overlap is real, not timing-based.
    const gates: (() => void)[] = [];
    const pending = mapWithConcurrency(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (n) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        return n * 2;
      },
    );
    while (gates.length > 0 || running > 0) {
      await new Promise((r) => setImmediate(r));
      gates.splice(0).forEach((open) => open());
    }
    expect(await pending).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(peak).toBe(3);
  });

  it('stops starting new work after a failure', async () => {
    const started: number[] = [];
    await expect(
      mapWithConcurrency([1, 2, 3, 4, 5], 1, async (n) => {
        started.push(n);
        if (n === 2) throw new Error('boom');
        return n;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });

  it('rejects a non-positive concurrency', async () => {
    await expect(mapWithConcurrency([1], 0, async (n) => n)).rejects.toThrow(RangeError);
  });
});

describe('inspectFile with synchronous reads (one-shot check)', () => {
  it('gives the same inspection as the callback reads, key file included', async () => {
    const file = await write('sync/fullchain.pem', pki.valid.certPem + pki.intermediate.certPem);
    const keyPath = await write('sync/privkey.pem', pki.expired.keyPem);
    const both = await Promise.all([
      inspectFile(file, { ...ctx, keyPath }),
      inspectFile(file, { ...ctx, keyPath, readSync: true }),
    ]);
    expect(both[1]).toEqual(both[0]);
    expect(both[1].findings.map((f) => f.code)).toEqual(['key-mismatch']);
  });

  it('reports a FIFO, a directory and a missing file as errors without blocking', async () => {
    const fifo = path.join(dir, 'sync', 'pipe.pem');
    execFileSync('mkfifo', [fifo]);
    const folder = path.join(dir, 'sync', 'folder.pem');
    await fs.mkdir(folder);
    const results = await Promise.all(
      [fifo, folder, path.join(dir, 'sync', 'absent.pem')].map((f) =>
        inspectFile(f, { ...ctx, readSync: true }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['unknown', 'unknown', 'unknown']);
    expect(results[0]!.error).toContain('is not a regular file');
    expect(results[1]!.error).toContain('is not a regular file');
    expect(results[2]!.error).toContain('ENOENT');
  });
});
