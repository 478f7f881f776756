import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Dns01Solver } from '../../src/dns/solver';
import { recoverInterrupted } from '../../src/renew/recover';
import { ChallengeJournal, type PresentedRecord } from '../../src/store/journal';
import { memoryLogger } from '../helpers/memory-logger';

/**
 * Records an earlier run left in the challenge journal (issue #12 item 13): the messages say what
 * is known. A journal entry is left by a killed run or by a run whose own cleanup failed, so
 * nothing claims an interrupted run; an entry without records is removed without a word.
 */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-recover-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const RECORD: PresentedRecord = {
  provider: 'bind',
  zone: 'example.test',
  fqdn: '_acme-challenge.www.example.test',
  record: { name: '_acme-challenge.www.example.test', value: 'v', ttl: 60 },
};

function solver(cleanup: () => Promise<void>): () => Dns01Solver {
  return () => ({ cleanup }) as unknown as Dns01Solver;
}

test('records an earlier run left: removed, with a message that claims no interrupted run', async () => {
  const journal = new ChallengeJournal(dir);
  await journal.add('www', [RECORD]);
  const log = memoryLogger();
  const removed: unknown[] = [];
  const n = await recoverInterrupted(
    'www',
    journal,
    solver(async () => void removed.push(1)),
    log,
  );
  expect(n).toBe(1);
  expect(removed).toHaveLength(1);
  expect(log.records.map((r) => r.message)).toEqual([
    'removing challenge records an earlier run left behind',
  ]);
  expect(JSON.stringify(log.records)).not.toMatch(/interrupted/);
  expect(await journal.pending()).toEqual([]);
});

test('when removing them fails, the entry is kept for the next run and the failure is said once', async () => {
  const journal = new ChallengeJournal(dir);
  await journal.add('www', [RECORD]);
  const log = memoryLogger();
  const fail = solver(async () => {
    throw new Error('rfc2136: NOTAUTH, TSIG error BADSIG');
  });
  expect(await recoverInterrupted('www', journal, fail, log)).toBe(0);
  expect(log.records.filter((r) => r.level === 'error').map((r) => r.message)).toEqual([
    'could not remove leftover challenge records',
  ]);
  expect(await journal.pending()).toEqual(['www']);
});

test('nothing in the entry: nothing is said and no DNS server is asked', async () => {
  const journal = new ChallengeJournal(dir);
  const log = memoryLogger();
  const never = solver(async () => {
    throw new Error('must not be called');
  });
  expect(await recoverInterrupted('www', journal, never, log)).toBe(0);
  expect(log.records).toEqual([]);
});
