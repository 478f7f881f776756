import { classifyAcmeError, parseRetryAfter, toProblem } from '../../src/acme/errors';

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
    [
      'TLS: chain not leading to a trusted CA',
      Object.assign(new Error('unable to verify the first certificate'), {
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      }),
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

describe('toProblem', () => {
  test('reads type, detail and Retry-After of a problem document', () => {
    const p = toProblem(
      {
        status: 429,
        headers: { 'retry-after': '7' },
        data: { type: 'urn:ietf:params:acme:error:rateLimited', detail: 'slow down' },
      },
      'https://ca.test/new-order',
    );
    expect(p).toEqual({
      status: 429,
      type: 'urn:ietf:params:acme:error:rateLimited',
      detail: 'slow down',
      retryAfterMs: 7000,
      url: 'https://ca.test/new-order',
    });
  });

  test('a body that is not a problem document gives status and URL only', () => {
    expect(
      toProblem({ status: 502, headers: {}, data: '<html>bad gateway</html>' }, 'https://ca.test/x'),
    ).toEqual({
      status: 502,
      type: undefined,
      detail: undefined,
      retryAfterMs: undefined,
      url: 'https://ca.test/x',
    });
  });
});
