import { CertpilotError } from '../../src/core/errors';
import { backoffDelay, parseRetryAfter, retry, type RetryOptions } from '../../src/core/retry';

/** A fake clock: sleeping records the delay and returns at once (or rejects when aborted). */
function fakeSleep(): { sleeps: number[]; sleep: NonNullable<RetryOptions['sleep']> } {
  const sleeps: number[] = [];
  return {
    sleeps,
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      if (signal?.aborted) throw new CertpilotError('ABORTED', 'test: cancelled');
    },
  };
}

/** fn failing `failures` times with the given errors, then resolving 'done'. */
function flaky(errors: unknown[]): { calls: number[]; fn: (attempt: number) => Promise<string> } {
  const calls: number[] = [];
  return {
    calls,
    fn: async (attempt) => {
      calls.push(attempt);
      const e = errors.shift();
      if (e !== undefined) throw e;
      return 'done';
    },
  };
}

const base = { attempts: 5, baseMs: 100, maxMs: 1_000, random: () => 0.5 };

describe('retry', () => {
  test('retries retryable failures with full-jitter exponential backoff, capped', async () => {
    const clock = fakeSleep();
    const f = flaky(['a', 'b', 'c', 'd']);
    await expect(retry(f.fn, { ...base, retryable: () => true, sleep: clock.sleep })).resolves.toBe('done');
    expect(f.calls).toEqual([1, 2, 3, 4, 5]);
    // random 0.5 of min(1000, 100 * 2^(n-1)): 100, 200, 400, 800 -> 50, 100, 200, 400.
    expect(clock.sleeps).toEqual([50, 100, 200, 400]);
  });

  test('the computed backoff never exceeds maxMs', () => {
    expect(backoffDelay(20, 100, 1_000, () => 0.999)).toBeLessThan(1_000);
    expect(backoffDelay(1, 100, 1_000, () => 0)).toBe(0);
  });

  test("a server's Retry-After replaces the backoff, capped at maxMs", async () => {
    const clock = fakeSleep();
    const f = flaky([{ after: 300 }, { after: 60_000 }]);
    const infos: unknown[] = [];
    await retry(f.fn, {
      ...base,
      retryable: (e) => ({ afterMs: (e as { after: number }).after }),
      onRetry: (i) => infos.push({ attempt: i.attempt, delayMs: i.delayMs, serverAsked: i.serverAsked }),
      sleep: clock.sleep,
    });
    expect(clock.sleeps).toEqual([300, 1_000]);
    expect(infos).toEqual([
      { attempt: 1, delayMs: 300, serverAsked: true },
      { attempt: 2, delayMs: 1_000, serverAsked: true },
    ]);
  });

  test('gives up at once when retryable says no, rethrowing the error itself', async () => {
    const clock = fakeSleep();
    const fatal = new CertpilotError('DNS_UPDATE_FAILED', 'x: denied');
    const f = flaky(['transient', fatal]);
    const err = await retry(f.fn, {
      ...base,
      retryable: (e) => e === 'transient',
      sleep: clock.sleep,
    }).catch((e: unknown) => e);
    expect(err).toBe(fatal);
    expect(f.calls).toEqual([1, 2]);
    expect(clock.sleeps).toHaveLength(1);
  });

  test('attempts bound the tries; the last error is rethrown without asking retryable', async () => {
    const clock = fakeSleep();
    const asked: number[] = [];
    const f = flaky(['e1', 'e2', 'e3', 'e4']);
    const err = await retry(f.fn, {
      ...base,
      attempts: 3,
      retryable: (_e, attempt) => (asked.push(attempt), true),
      sleep: clock.sleep,
    }).catch((e: unknown) => e);
    expect(err).toBe('e3');
    expect(f.calls).toEqual([1, 2, 3]);
    expect(asked).toEqual([1, 2]);
  });

  test('attempts: 1 means no retry', async () => {
    const f = flaky(['only']);
    await expect(retry(f.fn, { ...base, attempts: 1, retryable: () => true })).rejects.toBe('only');
    expect(f.calls).toEqual([1]);
  });

  test('cancelling during a wait stops with ABORTED and no further attempt (real sleep)', async () => {
    const ac = new AbortController();
    const f = flaky(['e1', 'e2']);
    const started = Date.now();
    const run = retry(f.fn, {
      attempts: 3,
      baseMs: 60_000,
      maxMs: 60_000,
      random: () => 1,
      signal: ac.signal,
      component: 'test',
      retryable: () => true,
      onRetry: () => ac.abort(),
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORTED', message: 'test: cancelled' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(f.calls).toEqual([1]);
  });

  test('an already aborted signal runs nothing', async () => {
    const f = flaky([]);
    const ac = new AbortController();
    ac.abort();
    await expect(
      retry(f.fn, { ...base, signal: ac.signal, component: 'test', retryable: () => true }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(f.calls).toEqual([]);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-30T12:00:00Z');
  test.each([
    ['120', 120_000],
    [' 7 ', 7_000],
    ['0', 0],
    ['Mon, 30 Nov 2026 12:00:30 GMT', 30_000],
    // A date in the past: retry now, never a negative wait.
    ['Mon, 30 Nov 2026 11:00:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    ['1.5', undefined],
    ['', undefined],
    [null, undefined],
    [undefined, undefined],
  ])('%j -> %j', (header, ms) => {
    expect(parseRetryAfter(header, now)).toBe(ms);
  });
});
