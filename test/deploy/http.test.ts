import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { memoryLogger } from '../helpers/memory-logger';
import { postJson, WEBHOOK_RETRY_MAX_MS, type PostOptions } from '../../src/core/http';

/**
 * Webhook retries through the shared retry loop, against a real loopback HTTP server that
 * answers from a script (status and Retry-After per request). Waits go through a fake sleep
 * that records them, so a server asking for minutes costs nothing.
 */
interface Reply {
  status: number;
  retryAfter?: string;
}

let server: http.Server;
let url: string;
let script: Reply[] = [];
let received = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      const reply = script.shift() ?? { status: 200 };
      res.writeHead(reply.status, reply.retryAfter ? { 'retry-after': reply.retryAfter } : {}).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = 0;
});

function options(retries: number, sleeps: number[]): PostOptions {
  return {
    url,
    body: { hello: 'world' },
    signatureHeader: 'X-Certpilot-Signature',
    headers: {},
    retries,
    timeoutMs: 5_000,
    component: 'notify',
    log: memoryLogger(),
    sleep: async (ms) => void sleeps.push(ms),
  };
}

test("honours the server's Retry-After, capped, then delivers", async () => {
  script = [{ status: 503, retryAfter: '7' }, { status: 429, retryAfter: '3600' }, { status: 200 }];
  const sleeps: number[] = [];
  await postJson(options(3, sleeps));
  expect(received).toBe(3);
  expect(sleeps).toEqual([7_000, WEBHOOK_RETRY_MAX_MS]);
});

test('without Retry-After, backs off within the exponential bound', async () => {
  script = [{ status: 500 }, { status: 502 }, { status: 200 }];
  const sleeps: number[] = [];
  await postJson(options(2, sleeps));
  expect(received).toBe(3);
  expect(sleeps).toHaveLength(2);
  expect(sleeps[0]).toBeLessThan(500);
  expect(sleeps[1]).toBeLessThan(1_000);
});

test('a 4xx other than 408/429 is not retried', async () => {
  script = [{ status: 400 }];
  const sleeps: number[] = [];
  await expect(postJson(options(3, sleeps))).rejects.toMatchObject({
    code: 'NOTIFY_FAILED',
    message: expect.stringMatching(/^notify: POST http:\/\/127\.0\.0\.1:\d+\/hook failed: HTTP 400$/),
  });
  expect(received).toBe(1);
  expect(sleeps).toEqual([]);
});

test('retries are bounded; every failed attempt is logged', async () => {
  script = [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }];
  const sleeps: number[] = [];
  const opts = options(2, sleeps);
  await expect(postJson(opts)).rejects.toMatchObject({ code: 'NOTIFY_FAILED', retryable: true });
  expect(received).toBe(3);
  const log = opts.log as ReturnType<typeof memoryLogger>;
  expect(
    log.records.filter((r) => r.message === 'webhook attempt failed').map((r) => r.meta.attempt),
  ).toEqual([0, 1, 2]);
  script = [];
});
