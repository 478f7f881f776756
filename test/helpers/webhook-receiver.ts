import { EventEmitter } from 'node:events';
import http from 'node:http';
import { LOOPBACK, listen } from './tls-servers';

/**
 * A loopback HTTP server that records every request, for webhook deployer and alert tests.
 * `respond` picks the status per request (e.g. 500 first, then 200, to exercise retries).
 * `waitFor` resolves on an event (a matching request), never on a timer.
 */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  waitFor(pred: (r: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(
  opts: { respond?: (index: number, req: ReceivedRequest) => number } = {},
): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const r: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        json,
      };
      const status = opts.respond?.(requests.length, r) ?? 200;
      requests.push(r);
      res.statusCode = status;
      res.end();
      events.emit('request', r);
    });
  });
  const port = await listen(server);
  return {
    url: `http://${LOOPBACK}:${port}/hook`,
    requests,
    waitFor(pred, timeoutMs = 15_000) {
      const found = requests.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('request', on);
          reject(new Error(`no matching webhook request within ${timeoutMs} ms (got ${requests.length})`));
        }, timeoutMs);
        const on = (r: ReceivedRequest): void => {
          if (!pred(r)) return;
          clearTimeout(timer);
          events.off('request', on);
          resolve(r);
        };
        events.on('request', on);
      });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
