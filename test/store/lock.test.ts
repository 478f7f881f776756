import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { CertpilotError } from '../../src/core/errors';
import { acquireLock, lockPath, readLockOwner, type Lock, type LockOwner } from '../../src/store/lock';
import { ensureDir } from '../../src/store/atomic';

let stateDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-lock-'));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const LOCK_MODULE = path.join(__dirname, '../../src/store/lock.ts');

/**
 * A child node process that uses the real lock module. Commands on stdin: "release", "exit"
 * (exit WITHOUT releasing, like a crash). It prints "locked", "busy" or "released".
 */
interface Holder {
  child: ChildProcess;
  pid: number;
  /** Resolves with the child's first answer ("locked" or "busy"). */
  first: Promise<string>;
  send(cmd: 'release' | 'exit'): void;
  next(): Promise<string>;
  exited: Promise<unknown>;
}

function startHolder(name: string, opts: { wait?: boolean } = {}): Holder {
  const script = `
    require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });
    const { acquireLock } = require(${JSON.stringify(LOCK_MODULE)});
    let lock;
    (async () => {
      lock = await acquireLock(${JSON.stringify(stateDir)}, ${JSON.stringify(name)}, { wait: ${opts.wait === true}, pollIntervalMs: 20 });
      process.stdout.write(lock ? 'locked\\n' : 'busy\\n');
    })().catch((e) => { process.stdout.write('error ' + e.message + '\\n'); process.exit(2); });
    let buf = '';
    process.stdin.on('data', async (d) => {
      buf += d;
      if (buf.includes('release')) { await lock.release(); process.stdout.write('released\\n'); process.exit(0); }
      if (buf.includes('exit')) process.exit(0);
    });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const next = (): Promise<string> =>
    lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((r) => waiters.push(r));
  const exited = once(child, 'exit');
  return {
    child,
    pid: child.pid!,
    first: next(),
    next,
    send: (cmd) => child.stdin!.write(cmd + '\n'),
    exited,
  };
}

/** The pid of a process that has certainly exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await once(child, 'exit');
  return pid;
}

async function writeLockFile(name: string, owner: Partial<LockOwner>): Promise<void> {
  await ensureDir(path.join(stateDir, 'locks'));
  await writeFile(lockPath(stateDir, name), JSON.stringify({ nonce: 'planted', startedAt: 'x', ...owner }));
}

describe('acquireLock', () => {
  test('creates <stateDir>/locks/<name>.lock holding pid, hostname and start time; release removes it', async () => {
    const lock = (await acquireLock(stateDir, 'www', { wait: false }))!;
    expect(lock).not.toBeNull();
    expect(lock.path).toBe(path.join(stateDir, 'locks', 'www.lock'));
    const owner = JSON.parse(await readFile(lock.path, 'utf8')) as LockOwner;
    expect(owner).toMatchObject({ pid: process.pid, hostname: os.hostname(), nonce: lock.owner.nonce });
    expect(Number.isNaN(Date.parse(owner.startedAt))).toBe(false);
    expect(await readLockOwner(stateDir, 'www')).toEqual(owner);
    await lock.release();
    await lock.release(); // idempotent
    expect(await readLockOwner(stateDir, 'www')).toBeNull();
    // No temp or aside files left behind.
    expect(await readdir(path.join(stateDir, 'locks'))).toEqual([]);
  });

  test('a second acquirer without wait gets null; different certificates do not block each other', async () => {
    const a = (await acquireLock(stateDir, 'a', { wait: false }))!;
    expect(await acquireLock(stateDir, 'a', { wait: false })).toBeNull();
    const b = await acquireLock(stateDir, 'b', { wait: false });
    expect(b).not.toBeNull();
    await Promise.all([a.release(), b!.release()]);
  });

  test('a waiting acquirer gets the lock once the holder releases it', async () => {
    const first = (await acquireLock(stateDir, 'c', { wait: false }))!;
    let resolved = false;
    let busy!: () => void;
    const sawBusy = new Promise<void>((r) => (busy = r));
    const second = acquireLock(stateDir, 'c', { wait: true, pollIntervalMs: 10, onBusy: () => busy() }).then(
      (l) => {
        resolved = true;
        return l;
      },
    );
    await sawBusy;
    expect(resolved).toBe(false);
    await first.release();
    const lock = (await second)!;
    expect(lock.owner.nonce).not.toBe(first.owner.nonce);
    await lock.release();
  });

  test('waiting gives up with LOCKED after timeoutMs, and with ABORTED when the signal fires', async () => {
    const held = (await acquireLock(stateDir, 'd', { wait: false }))!;
    await expect(
      acquireLock(stateDir, 'd', { wait: true, timeoutMs: 50, pollIntervalMs: 10 }),
    ).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringMatching(/"d" is still locked by pid \d+/),
    });
    const ac = new AbortController();
    const p = acquireLock(stateDir, 'd', {
      wait: true,
      pollIntervalMs: 10,
      signal: ac.signal,
      onBusy: () => ac.abort(),
    });
    await expect(p).rejects.toBeInstanceOf(CertpilotError);
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    await held.release();
  });

  test('rejects names that are not file-name safe', async () => {
    await expect(acquireLock(stateDir, '../etc', { wait: false })).rejects.toMatchObject({ code: 'LOCKED' });
  });
});

describe('stale locks', () => {
  test('a lock left by a dead process on this host is taken over', async () => {
    const pid = await deadPid();
    await writeLockFile('e', { pid, hostname: os.hostname() });
    const lock = (await acquireLock(stateDir, 'e', { wait: false }))!;
    expect(lock).not.toBeNull();
    expect((await readLockOwner(stateDir, 'e'))?.nonce).toBe(lock.owner.nonce);
    await lock.release();
  });

  test('a lock whose pid was reused by a newer process (start time differs) is taken over', async () => {
    // Our own pid with another start time: the file was left by an earlier process with this pid.
    await writeLockFile('f', { pid: process.pid, hostname: os.hostname(), procStart: '1' });
    const lock = await acquireLock(stateDir, 'f', { wait: false });
    expect(lock).not.toBeNull();
    await lock!.release();
  });

  test('a lock of another host is never taken over, even with a dead pid', async () => {
    await writeLockFile('g', { pid: await deadPid(), hostname: 'other-host.invalid' });
    expect(await acquireLock(stateDir, 'g', { wait: false })).toBeNull();
  });

  test('concurrent takers of one stale lock: exactly one wins', async () => {
    await writeLockFile('h', { pid: await deadPid(), hostname: os.hostname() });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => acquireLock(stateDir, 'h', { wait: false })),
    );
    const winners = results.filter((l): l is Lock => l !== null);
    expect(winners).toHaveLength(1);
    expect((await readLockOwner(stateDir, 'h'))?.nonce).toBe(winners[0]!.owner.nonce);
    await winners[0]!.release();
  });
});

describe('across processes', () => {
  const children: Holder[] = [];
  afterEach(async () => {
    for (const h of children.splice(0)) {
      if (h.child.exitCode === null && h.child.signalCode === null) {
        h.child.kill('SIGKILL');
        await h.exited;
      }
    }
  });

  test('a lock held by a child process blocks us; we get it once the child releases', async () => {
    const h = startHolder('x');
    children.push(h);
    expect(await h.first).toBe('locked');
    expect((await readLockOwner(stateDir, 'x'))?.pid).toBe(h.pid);
    expect(await acquireLock(stateDir, 'x', { wait: false })).toBeNull();

    let told = false;
    const mine = acquireLock(stateDir, 'x', {
      wait: true,
      pollIntervalMs: 20,
      timeoutMs: 30_000,
      onBusy: () => {
        if (!told) h.send('release');
        told = true;
      },
    });
    expect(await h.next()).toBe('released');
    const lock = (await mine)!;
    expect(lock.owner.pid).toBe(process.pid);
    await lock.release();
  });

  test('a child that dies holding the lock leaves it stale, and we take it over', async () => {
    const h = startHolder('y');
    children.push(h);
    expect(await h.first).toBe('locked');
    h.send('exit');
    await h.exited;
    expect((await readLockOwner(stateDir, 'y'))?.pid).toBe(h.pid);
    const lock = await acquireLock(stateDir, 'y', { wait: false });
    expect(lock).not.toBeNull();
    await lock!.release();
  });

  test('several processes racing for one stale lock: exactly one gets it', async () => {
    await writeLockFile('z', { pid: await deadPid(), hostname: os.hostname() });
    const racers = Array.from({ length: 4 }, () => startHolder('z'));
    children.push(...racers);
    const answers = await Promise.all(racers.map((r) => r.first));
    expect(answers.filter((a) => a === 'locked')).toHaveLength(1);
    expect(answers.filter((a) => a === 'busy')).toHaveLength(3);
    const winner = racers[answers.indexOf('locked')]!;
    expect((await readLockOwner(stateDir, 'z'))?.pid).toBe(winner.pid);
  });
});
