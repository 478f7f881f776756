import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { callAcme, classifyAcmeError, parseRetryAfter } from '../../src/acme/http';

describe('parseRetryAfter', () => {
  test.each([
    ['120', 120_000],
    [' 5 ', 5_000],
    ['Fri, 27 Nov 2026 20:00:30 GMT', 30_000],
    ['Fri, 27 Nov 2026 19:00:00 GMT', 0],
    ['soon', undefined],
    [undefined, undefined],
  ])('%p -> %p', (value, expected) => {
    expect(parseRetryAfter(value, Date.parse('2026-11-27T20:00:00Z'))).toBe(expected);
  });
});

describe('classifyAcmeError', () => {
  const problem = (status: number, type?: string, retryAfterMs?: number) => ({
    status,
    type: type && `urn:ietf:params:acme:error:${type}`,
    detail: 'told by the CA',
    retryAfterMs,
    url: 'https://ca.test/x',
  });
  test.each([
    [
      'rateLimited problem',
      new Error('x'),
      problem(429, 'rateLimited', 3_600_000),
      'ACME_RATE_LIMITED',
      true,
    ],
    ['server error', new Error('x'), problem(503, undefined, 2000), 'ACME_PROBLEM', true],
    ['unauthorized', new Error('x'), problem(403, 'unauthorized'), 'ACME_PROBLEM', false],
    [
      'connection reset',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      undefined,
      'ACME_NETWORK',
      true,
    ],
    [
      'TLS',
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      undefined,
      'ACME_NETWORK',
      false,
    ],
  ] as const)('%s', (_label, err, prob, code, retryable) => {
    const e = classifyAcmeError('new order', err, prob);
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(e.message).toMatch(/^acme: new order: /);
    expect(e.cause).toBe(err);
  });

  test('keeps the problem type and detail in the message', () => {
    const e = classifyAcmeError('finalize', new Error('x'), problem(400, 'badCSR'));
    expect(e.message).toBe('acme: finalize: told by the CA (badCSR, HTTP 400)');
  });
});

describe('callAcme', () => {
  test('retries transient failures a bounded number of times, then surfaces the real cause', async () => {
    let calls = 0;
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const p = callAcme('directory', { timeoutMs: 1000, log: silentLogger, maxAttempts: 3 }, async () => {
      calls++;
      throw err;
    });
    await expect(p).rejects.toThrow(/acme: directory: ECONNREFUSED: connect ECONNREFUSED/);
    expect(calls).toBe(3);
  });

  test('does not retry a permanent problem', async () => {
    let calls = 0;
    await expect(
      callAcme('x', { timeoutMs: 1000, log: silentLogger }, async () => {
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
      callAcme('x', { timeoutMs: 1000, log: silentLogger, signal: ac.signal }, async () => 1),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});
