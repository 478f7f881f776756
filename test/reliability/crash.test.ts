import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CertStore } from '../../src/store/cert-store';
import { ChallengeJournal } from '../../src/store/journal';
import type { Checkpoint } from '../../src/core/checkpoints';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Crash safety (issue #7): the real CLI is killed with SIGKILL at each stage of a renewal (a
 * checkpoint of src/core/checkpoints.ts, made fatal by the test preload fault-preload.js).
 * Afterwards the stored pair is whole and
 * matching (old or new, never a mix), and the next plain run removes every leftover TXT value
 * and completes the renewal.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const FAULT_PRELOAD = path.join(__dirname, '..', 'helpers', 'fault-preload.js');
let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runBin(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Every run carries the preload; it does nothing unless CERTPILOT_TEST_KILL_AT is set.
    const child = spawn(process.execPath, ['-r', FAULT_PRELOAD, BIN, ...args], {
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const FILES = ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem'];

async function snapshot(stateDir: string, name: string): Promise<Buffer[]> {
  return Promise.all(FILES.map((f) => readFile(path.join(stateDir, 'certs', name, f))));
}

async function challengeValues(labels: string[]): Promise<string[]> {
  const all = await Promise.all(labels.map((l) => tb.bind.queryTxt(`_acme-challenge.${l}.example.test`)));
  return all.flat();
}

/** Points before the new pair is installed: the old pair must stay byte-identical. */
const BEFORE_INSTALL: Checkpoint[] = [
  'after-txt-written',
  'after-challenge-answered',
  'after-finalize',
  'mid-store-write',
];

describe.each([...BEFORE_INSTALL, 'during-deploy-hook' as const])('SIGKILL at %s', (point) => {
  test('leaves a whole, matching pair; the next run cleans up and completes', async () => {
    const labels = [`${point}-a`, `${point}-b`];
    const stateDir = path.join(tb.dir, `state-${point}`);
    const marker = path.join(tb.dir, `deployed-${point}.log`);
    const cert = (domains: string[]) => ({
      name: 'site',
      domains,
      dns: { provider: 'bind' },
      hooks: { deploy: [['/bin/sh', '-c', 'echo "$CERTPILOT_SERIAL" >> "$0"', marker]] },
    });
    const extra = { storage: { stateDir } };
    // 1. An existing certificate for one name.
    const first = await tb.writeConfig([cert([`${labels[0]}.example.test`])], extra);
    const r1 = await runBin(['renew', '--config', first]);
    expect(r1.stderr).not.toMatch(/unexpected error/);
    expect(r1.code).toBe(0);
    const store = new CertStore({ stateDir, archiveDepth: 5 });
    const old = (await store.read('site'))!;
    const before = await snapshot(stateDir, 'site');

    // 2. A second name makes it due (names-changed); the run is killed at the fault point.
    const second = await tb.writeConfig([cert(labels.map((l) => `${l}.example.test`))], extra);
    const killed = await runBin(['renew', '--config', second], { CERTPILOT_TEST_KILL_AT: point });
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.stderr).toContain(`fault point ${point} reached`);

    // The pair on disk is complete and matching (read() verifies key against certificate).
    const afterKill = (await store.read('site'))!;
    expect(afterKill).not.toBeNull();
    if (BEFORE_INSTALL.includes(point)) {
      const after = await snapshot(stateDir, 'site');
      after.forEach((buf, i) => expect(buf.equals(before[i]!)).toBe(true));
      expect(afterKill.info.serial).toBe(old.info.serial);
    } else {
      expect(afterKill.info.names.sort()).toEqual(labels.map((l) => `${l}.example.test`).sort());
    }
    if (point === 'after-txt-written' || point === 'after-challenge-answered') {
      // The dead run could not clean up: its values are still in DNS, and in the journal.
      expect((await challengeValues(labels)).length).toBeGreaterThan(0);
      expect(await new ChallengeJournal(stateDir).pending()).toEqual(['site']);
    }

    // 3. The next plain run: leftovers removed, renewal (or the interrupted deploy) completed.
    const r3 = await runBin(['renew', '--config', second, '--json']);
    expect(r3.stderr).not.toMatch(/unexpected error/);
    expect(r3.code).toBe(0);
    const report = JSON.parse(r3.stdout) as { certificates: { status: string }[] };
    expect(report.certificates[0]!.status).toBe(point === 'during-deploy-hook' ? 'deployed' : 'renewed');
    const final = (await store.read('site'))!;
    expect(final.info.names.sort()).toEqual(labels.map((l) => `${l}.example.test`).sort());
    expect(await challengeValues(labels)).toEqual([]);
    expect(await new ChallengeJournal(stateDir).pending()).toEqual([]);
    // The deploy hook ran for the certificate that is now current.
    const deployed = (await readFile(marker, 'utf8')).trim().split('\n');
    expect(deployed.at(-1)).toBe(final.info.serial);
    await writeFile(marker, '');
  });
});
