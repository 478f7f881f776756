import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChallengeJournal } from '../../src/store/journal';
import type { PresentedRecord } from '../../src/dns/solver';

const rec = (fqdn: string, value: string): PresentedRecord => ({
  provider: 'bind',
  zone: 'example.test',
  fqdn,
  record: { name: fqdn.replace(/\.example\.test$/, ''), value, ttl: 60 },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('records accumulate without duplicates, survive a new instance, and clear', async () => {
  const j = new ChallengeJournal(dir);
  expect(await j.pending()).toEqual([]);
  await j.add('www', [rec('_acme-challenge.example.test', 'a')]);
  await j.add('www', [rec('_acme-challenge.example.test', 'a'), rec('_acme-challenge.example.test', 'b')]);
  const again = new ChallengeJournal(dir);
  expect((await again.read('www')).map((r) => r.record.value)).toEqual(['a', 'b']);
  expect(await again.pending()).toEqual(['www']);
  expect((await stat(path.join(dir, 'journal', 'www.json'))).mode & 0o777).toBe(0o600);
  await again.clear('www');
  expect(await again.pending()).toEqual([]);
  expect(await again.read('www')).toEqual([]);
});
