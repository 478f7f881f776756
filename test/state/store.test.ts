import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  MAX_ORDER_RECORDS,
  StateStore,
  decodeState,
  emptyState,
  encodeState,
  type CertState,
} from '../../src/state/store';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-state-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const NOW = new Date('2026-11-20T12:00:00Z');
const FULL: CertState = {
  name: 'www',
  ari: {
    certId: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    window: { start: new Date('2026-12-01T00:00:00Z'), end: new Date('2026-12-03T00:00:00Z') },
    explanationURL: 'https://ca.example/why',
    chosenAt: new Date('2026-12-02T05:06:07Z'),
    nextPollAt: new Date('2026-11-20T18:00:00Z'),
    lastPolledAt: new Date('2026-11-20T12:00:00Z'),
    errorCount: 0,
  },
  failures: {
    count: 2,
    nextRetryAt: new Date('2026-11-20T12:10:00Z'),
    lastFailureAt: new Date('2026-11-20T12:00:00Z'),
    lastError: 'rfc2136: REFUSED',
    lastErrorCode: 'DNS_UPDATE_FAILED',
    fingerprint: 'c0ffee',
  },
  orders: [
    { at: new Date('2026-11-19T00:00:00Z'), names: ['a.example.test', 'b.example.test'] },
    {
      at: new Date('2026-11-19T06:00:00Z'),
      names: ['a.example.test', 'b.example.test'],
      ca: 'https://127.0.0.1:14000/dir',
    },
  ],
  guard: { alertedUntil: new Date('2026-11-26T00:00:00Z') },
  lastSuccess: {
    at: new Date('2026-11-19T00:00:01Z'),
    serial: '0A1B',
    notAfter: new Date('2027-02-17T00:00:00Z'),
  },
};

describe('StateStore', () => {
  test('a certificate without a state file has the empty state', async () => {
    const store = new StateStore(stateDir);
    expect(await store.read('www')).toEqual({ state: emptyState('www') });
    expect(await store.list()).toEqual([]);
  });

  test('round-trips every field, Dates included, in <stateDir>/state/<name>.json with mode 0600', async () => {
    const store = new StateStore(stateDir);
    await store.write(FULL, NOW);
    const file = path.join(stateDir, 'state', 'www.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(stateDir, 'state'))).mode & 0o777).toBe(0o700);
    const { state, problem } = await store.read('www');
    expect(problem).toBeUndefined();
    expect(state).toEqual(FULL);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      version: 1,
      ari: { chosenAt: '2026-12-02T05:06:07.000Z' },
    });
    expect(await store.list()).toEqual(['www']);
    // Atomic write leaves no temp files behind.
    expect(await readdir(path.join(stateDir, 'state'))).toEqual(['www.json']);
  });

  test('order records older than the history window are pruned on write, and the count is bounded', () => {
    const old = { at: new Date(NOW.getTime() - 9 * 86_400_000), names: ['x'] };
    const recent = Array.from({ length: MAX_ORDER_RECORDS + 5 }, (_, i) => ({
      at: new Date(NOW.getTime() - (i + 1) * 1000),
      names: ['x'],
    }));
    const decoded = decodeState(
      'www',
      JSON.parse(encodeState({ ...emptyState('www'), orders: [old, ...recent] }, NOW)),
    );
    expect(decoded.orders).toHaveLength(MAX_ORDER_RECORDS);
    expect(decoded.orders.some((o) => o.at.getTime() === old.at.getTime())).toBe(false);
  });

  test('a corrupt file is moved aside and reported; the empty state is returned', async () => {
    const store = new StateStore(stateDir);
    await store.write(FULL, NOW);
    await writeFile(path.join(stateDir, 'state', 'www.json'), '{"version": 1, "failures": ');
    const { state, problem } = await store.read('www');
    expect(state).toEqual(emptyState('www'));
    expect(problem).toMatch(/www\.json is unusable .*moved to .*www\.json\.corrupt-\d+/);
    const files = await readdir(path.join(stateDir, 'state'));
    expect(files.filter((f) => f.startsWith('www.json.corrupt-'))).toHaveLength(1);
    expect(files).not.toContain('www.json');
  });

  test.each([
    ['a future version', { version: 2 }],
    ['not an object', [1, 2]],
  ])('%s is unusable', (_label, json) => {
    expect(() => decodeState('www', json)).toThrow();
  });

  test('malformed fields are dropped instead of trusted', () => {
    const s = decodeState('www', {
      version: 1,
      ari: { certId: 'x', nextPollAt: 'not a date' },
      failures: { count: -3, nextRetryAt: 12 },
      orders: [{ at: 'bad', names: ['a'] }, { at: '2026-11-19T00:00:00Z', names: [1] }, null],
      lastSuccess: { at: '2026-11-19T00:00:00Z' },
    });
    expect(s).toEqual(emptyState('www'));
  });

  test('rejects certificate names that are not file-name safe', () => {
    expect(() => new StateStore(stateDir).file('../x')).toThrow(/invalid certificate name/);
  });
});
