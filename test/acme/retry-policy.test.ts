import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { classifyAcmeError } from '../../src/acme/errors';
import { acmeRetryDecision, retryAcmeOperation, RETRY_AFTER_CAP_MS } from '../../src/acme/retry-policy';
import { memoryLogger } from '../helpers/memory-logger';

const classify = (op: string) => (err: unknown) => classifyAcmeError(op, err, undefined);

describe('retryAcmeOperation', () => {
  test('retries transient failures a bounded number of times, then surfaces the real cause', async () => {
    let calls = 0;
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const p = retryAcmeOperation(
      'directory',
      { log: silentLogger, maxAttempts: 3, classify: classify('directory') },
      async () => {
        calls++;
        throw err;
      },
    );
    await expect(p).rejects.toThrow(/acme: directory: ECONNREFUSED: connect ECONNREFUSED/);
    expect(calls).toBe(3);
  });

  test('does not retry a permanent problem', async () => {
    let calls = 0;
    await expect(
      retryAcmeOperation('x', { log: silentLogger, classify: classify('x') }, async () => {
        calls++;
        throw new CertpilotError('ACME_PROBLEM', 'acme: x: no');
      }),
    ).rejects.toThrow('acme: x: no');
    expect(calls).toBe(1);
  });

  test('stops at once when the signal aborts', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      retryAcmeOperation(
        'x',
        { log: silentLogger, signal: ac.signal, classify: classify('x') },
        async () => 1,
      ),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  test('waits exactly the Retry-After the CA gave, and logs it', async () => {
    const log = memoryLogger();
    let calls = 0;
    const limited = new CertpilotError('ACME_RATE_LIMITED', 'acme: x: slow down', {
      retryable: true,
      details: { retryAfterMs: 200 },
    });
    const started = Date.now();
    const result = await retryAcmeOperation('x', { log, classify: classify('x') }, async () => {
      if (++calls === 1) throw limited;
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(log.records.map((r) => [r.message, r.meta.waitMs])).toEqual([
      ['acme request failed, retrying', 200],
    ]);
  });
});

describe('acmeRetryDecision', () => {
  const err = (retryable: boolean, retryAfterMs?: number) =>
    new CertpilotError('ACME_PROBLEM', 'x', { retryable, details: { retryAfterMs } });
  test.each([
    ['permanent', err(false), false],
    ['transient, no Retry-After: back off', err(true), true],
    ['Retry-After within the cap: wait for it', err(true, 5_000), { afterMs: 5_000 }],
    ['Retry-After beyond the cap: give up now', err(true, RETRY_AFTER_CAP_MS + 1), false],
  ])('%s', (_label, e, expected) => {
    expect(acmeRetryDecision(e)).toEqual(expected);
  });
});
