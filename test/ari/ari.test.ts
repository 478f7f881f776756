import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ARI_LONG_TERM_ERROR_RETRY_MS,
  ariCertId,
  clampAriRetryAfter,
  fetchDirectoryInfo,
  fetchRenewalInfo,
  parseDirectoryInfo,
  pickRenewalTime,
  tryAriCertId,
} from '../../src/acme/ari';
import { checkProfile } from '../../src/acme/profiles';
import { CertpilotError } from '../../src/core/errors';
import { parseCertificate } from '../../src/x509';

const MIN = 60_000;
const HOUR = 60 * MIN;
/** RFC 9773 §4.1's example: this AKI keyIdentifier and DER serial give this id. */
const RFC_AKI = '69885B6B87464041E1B37B847BA0AE2CDE01C8D4';
const RFC_SERIAL_DER = '0087654321';
const RFC_CERT_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';

describe('ariCertId', () => {
  test("RFC 9773 §4.1's example", () => {
    expect(ariCertId({ authorityKeyId: RFC_AKI, serialDer: RFC_SERIAL_DER })).toBe(RFC_CERT_ID);
  });

  test('from a real certificate with that AKI and serial 0x87654321 (top bit set: DER keeps the 00)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-ari-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          'k.pem',
          '-out',
          'c.pem',
          '-days',
          '1',
          '-subj',
          '/CN=ari.example',
          '-set_serial',
          '0x87654321',
          '-addext',
          `subjectKeyIdentifier=${RFC_AKI.match(/../g)!.join(':')}`,
          '-addext',
          'authorityKeyIdentifier=keyid:always',
        ],
        { cwd: dir, stdio: 'ignore' },
      );
      const info = parseCertificate(await readFile(path.join(dir, 'c.pem'), 'utf8'));
      expect(info.serial).toBe('87654321');
      expect(ariCertId(info)).toBe(RFC_CERT_ID);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('base64url without padding, and no leading 00 when the top bit is clear', () => {
    // fb ff bf would be "+/+/" in standard base64.
    expect(ariCertId({ authorityKeyId: 'FBFFBF', serialDer: '012345' })).toBe('-_-_.ASNF');
  });

  test('a certificate without an Authority Key Identifier has no id', () => {
    expect(() => ariCertId({ serialDer: '01' })).toThrow(/no Authority Key Identifier/);
    expect(tryAriCertId({ serialDer: '01' })).toBeUndefined();
    expect(tryAriCertId({ authorityKeyId: RFC_AKI, serialDer: RFC_SERIAL_DER })).toBe(RFC_CERT_ID);
  });
});

describe('pickRenewalTime', () => {
  const window = { start: new Date('2026-11-08T00:00:00Z'), end: new Date('2026-11-10T00:00:00Z') };
  const before = new Date('2026-11-01T00:00:00Z');
  test.each([
    [0, '2026-11-08T00:00:00.000Z'],
    [0.5, '2026-11-09T00:00:00.000Z'],
    [0.999999, '2026-11-09T23:59:59.827Z'],
  ])('uniform inside [start, end): random %p -> %s', (r, want) => {
    expect(pickRenewalTime(window, before, () => r).toISOString()).toBe(want);
  });
  test('a time already passed is "now"', () => {
    const now = new Date('2026-11-09T12:00:00Z');
    expect(pickRenewalTime(window, now, () => 0.1)).toEqual(now);
    expect(pickRenewalTime(window, new Date('2026-12-01T00:00:00Z'), () => 0.9)).toEqual(
      new Date('2026-12-01T00:00:00Z'),
    );
  });
});

describe('clampAriRetryAfter', () => {
  test.each([
    [0, MIN],
    [30_000, MIN],
    [6 * HOUR, 6 * HOUR],
    [10 * 24 * HOUR, 24 * HOUR],
  ])('%i -> %i (RFC 9773 §4.3: at least a minute, at most a day)', (ms, want) => {
    expect(clampAriRetryAfter(ms)).toBe(want);
  });
});

/** A loopback server answering renewalInfo requests from a table of canned responses. */
describe('fetchRenewalInfo', () => {
  type Canned = { status: number; headers?: Record<string, string>; body?: string; hang?: boolean };
  let server: http.Server;
  let base: string;
  let next: Canned;
  const paths: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      if (next.hang) return; // never answers: the client's deadline must end it
      res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
      res.end(next.body ?? '');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/renewal-info/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const WINDOW = JSON.stringify({
    suggestedWindow: { start: '2026-11-08T00:00:00Z', end: '2026-11-10T00:00:00Z' },
    explanationURL: 'https://ca.example/why',
  });

  test('GETs <renewalInfo>/<certId> and returns the window, the explanation and Retry-After', async () => {
    next = { status: 200, headers: { 'retry-after': '21600' }, body: WINDOW };
    const info = await fetchRenewalInfo(base, RFC_CERT_ID, { timeoutMs: 5000 });
    expect(paths.at(-1)).toBe(`/renewal-info/${RFC_CERT_ID}`);
    expect(info).toEqual({
      window: { start: new Date('2026-11-08T00:00:00Z'), end: new Date('2026-11-10T00:00:00Z') },
      explanationURL: 'https://ca.example/why',
      retryAfterMs: 6 * HOUR,
      retryAfterFromServer: true,
    });
  });

  test.each([
    ['5', MIN, true],
    ['864000', 24 * HOUR, true],
    ['Sun, 01 Nov 2026 03:00:00 GMT', 3 * HOUR, true],
    ['soon', ARI_LONG_TERM_ERROR_RETRY_MS, false],
    [undefined, ARI_LONG_TERM_ERROR_RETRY_MS, false],
  ])('Retry-After %p -> poll again in %i ms', async (header, want, fromServer) => {
    next = { status: 200, headers: header ? { 'retry-after': header } : {}, body: WINDOW };
    const info = await fetchRenewalInfo(base, RFC_CERT_ID, { now: () => Date.parse('2026-11-01T00:00:00Z') });
    expect(info.retryAfterMs).toBe(want);
    expect(info.retryAfterFromServer).toBe(fromServer);
  });

  test.each<[string, Canned, object]>([
    [
      '404 (unknown certificate) is long-term',
      { status: 404 },
      {
        code: 'ACME_PROBLEM',
        retryable: false,
        details: expect.objectContaining({ nextPollMs: ARI_LONG_TERM_ERROR_RETRY_MS }),
      },
    ],
    [
      '503 with Retry-After is temporary and says when',
      { status: 503, headers: { 'retry-after': '120' } },
      { code: 'ACME_PROBLEM', retryable: true, details: expect.objectContaining({ nextPollMs: 2 * MIN }) },
    ],
    [
      '500 without Retry-After is temporary, caller backs off',
      { status: 500 },
      { retryable: true, details: expect.objectContaining({ nextPollMs: undefined }) },
    ],
    [
      '429 is rate limited',
      { status: 429, headers: { 'retry-after': '600' } },
      {
        code: 'ACME_RATE_LIMITED',
        retryable: true,
        details: expect.objectContaining({ nextPollMs: 10 * MIN }),
      },
    ],
    [
      'a window ending before it starts is invalid (§4.2)',
      {
        status: 200,
        body: JSON.stringify({
          suggestedWindow: { start: '2026-11-10T00:00:00Z', end: '2026-11-08T00:00:00Z' },
        }),
      },
      { code: 'ACME_PROBLEM', retryable: false, message: expect.stringMatching(/ends before it starts/) },
    ],
    [
      'not JSON',
      { status: 200, body: '<html>' },
      { retryable: false, message: expect.stringMatching(/not JSON/) },
    ],
    [
      'no suggestedWindow',
      { status: 200, body: '{}' },
      { retryable: false, message: expect.stringMatching(/no suggestedWindow/) },
    ],
    ['oversized body', { status: 200, body: 'x'.repeat(100_000) }, { code: 'ACME_NETWORK' }],
  ])('%s', async (_label, canned, want) => {
    next = canned;
    const err = await fetchRenewalInfo(base, RFC_CERT_ID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err).toMatchObject(want);
  });

  test('no answer within the deadline is a temporary error; the caller cancelling is ABORTED', async () => {
    next = { status: 200, hang: true };
    await expect(fetchRenewalInfo(base, RFC_CERT_ID, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'ACME_NETWORK',
      retryable: true,
      message: expect.stringMatching(/no answer in time/),
    });
    const ac = new AbortController();
    const p = fetchRenewalInfo(base, RFC_CERT_ID, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
  });

  test('connection refused is a long-term error (RFC 9773 §4.3.3)', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(fetchRenewalInfo(`http://127.0.0.1:${port}/ri`, RFC_CERT_ID)).rejects.toMatchObject({
      code: 'ACME_NETWORK',
      retryable: false,
      details: expect.objectContaining({ nextPollMs: ARI_LONG_TERM_ERROR_RETRY_MS }),
    });
  });

  test('fetchDirectoryInfo reads renewalInfo and meta.profiles', async () => {
    next = {
      status: 200,
      body: JSON.stringify({
        newOrder: 'x',
        renewalInfo: 'https://ca.example/ri',
        meta: { profiles: { classic: 'The default', shortlived: '160 hours' } },
      }),
    };
    expect(await fetchDirectoryInfo(base.replace('/renewal-info/', '/dir'))).toEqual({
      renewalInfo: 'https://ca.example/ri',
      profiles: { classic: 'The default', shortlived: '160 hours' },
    });
  });
});

describe('directory extensions and profiles', () => {
  test.each([
    [{}, { profiles: {} }],
    [{ renewalInfo: '' }, { profiles: {} }],
    [
      { renewalInfo: 'https://ca/ri', meta: { profiles: ['not', 'a', 'map'] } },
      { renewalInfo: 'https://ca/ri', profiles: {} },
    ],
    [{ meta: { profiles: { tlsserver: 42 } } }, { profiles: { tlsserver: '' } }],
    [null, { profiles: {} }],
  ])('parseDirectoryInfo(%j)', (dir, want) => {
    expect(parseDirectoryInfo(dir)).toEqual(want);
  });

  const offered = { profiles: { classic: 'default', shortlived: '160 h' } };
  test('a requested profile that is offered is returned; none requested is undefined', () => {
    expect(checkProfile('shortlived', offered)).toBe('shortlived');
    expect(checkProfile(undefined, offered)).toBeUndefined();
    expect(checkProfile(undefined, { profiles: {} })).toBeUndefined();
  });
  test('a profile the CA does not offer is a clear, non-retryable error listing what it offers', () => {
    expect(() => checkProfile('tlsserver', offered, 'https://ca/dir')).toThrow(
      'acme: profile "tlsserver" is not offered by the CA at https://ca/dir; it offers: "classic", "shortlived"',
    );
    const err = (() => {
      try {
        checkProfile('shortlived', { profiles: {} });
      } catch (e) {
        return e as CertpilotError;
      }
      return undefined;
    })();
    expect(err).toMatchObject({ code: 'ACME_PROBLEM', retryable: false });
    expect(err?.message).toMatch(/offers no profiles at all/);
  });
});
