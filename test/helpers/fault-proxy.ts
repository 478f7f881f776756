import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Pebble } from './pebble';

/**
 * A fault-injecting HTTPS reverse proxy in front of a real Pebble (issue #7, ACME faults).
 *
 * It listens on 127.0.0.1:<free port> with Pebble's own TLS certificate (SAN 127.0.0.1, signed
 * by the CA at `pebble.tlsCaPath`, so `acme.caBundle` stays the same) and forwards every
 * request to Pebble unchanged. The Host header stays the proxy's: Pebble checks the JWS `url`
 * against it and builds its URLs from it. Pebble's own origin, should it appear anyway, is
 * rewritten to the proxy's in the Location and Link headers and in JSON bodies, so a client
 * never bypasses the proxy.
 *
 * Rules (`inject`) answer matching requests themselves instead of forwarding them, the next N
 * times or always: an HTTP status with a problem document and Retry-After (500, 503, 429
 * rateLimited), a connection reset, or a response that never comes (the socket is held open
 * until the client gives up or the proxy stops). The first matching rule with hits left wins.
 * The request body is always read first, so a fault hits a complete request, as a real
 * server's would.
 *
 * Every request is recorded (method, path, endpoint kind with ids collapsed, arrival time, what
 * was done), so tests count attempts per endpoint and per minute.
 *
 *   const proxy = await startFaultProxy(tb.pebble);
 *   proxy.inject({ method: 'POST', path: proxy.paths.newOrder, times: 2, action: faults.serverError() });
 *   // acme.directory: proxy.directoryUrl, acme.caBundle: proxy.caBundlePath
 */

export type FaultAction =
  | {
      readonly kind: 'status';
      readonly status: number;
      /** Seconds, or an HTTP-date; omitted when undefined. */
      readonly retryAfter?: number | string;
      /** Sent as `application/problem+json` when an object. */
      readonly body?: Record<string, unknown> | string;
    }
  /** The connection is torn down (RST where the platform allows) after the request arrived. */
  | { readonly kind: 'reset' }
  /** No answer at all; the socket stays open until the client closes it or the proxy stops. */
  | { readonly kind: 'hang' };

const PROBLEM = 'urn:ietf:params:acme:error:';

/** Ready-made faults. */
export const faults = {
  /** 500 with a `serverInternal` problem document. */
  serverError(detail = 'injected: internal server error'): FaultAction {
    return { kind: 'status', status: 500, body: { type: `${PROBLEM}serverInternal`, detail, status: 500 } };
  },
  /** 503 with Retry-After (seconds) and a plain-text body, as a load balancer in front of a CA sends it. */
  unavailable(retryAfterSeconds?: number): FaultAction {
    return {
      kind: 'status',
      status: 503,
      ...(retryAfterSeconds === undefined ? {} : { retryAfter: retryAfterSeconds }),
      body: 'injected: service unavailable',
    };
  },
  /** 429 with a `rateLimited` problem document and Retry-After (seconds). */
  rateLimited(retryAfterSeconds: number, detail = 'injected: too many new orders recently'): FaultAction {
    return {
      kind: 'status',
      status: 429,
      retryAfter: retryAfterSeconds,
      body: { type: `${PROBLEM}rateLimited`, detail, status: 429 },
    };
  },
  reset(): FaultAction {
    return { kind: 'reset' };
  },
  hang(): FaultAction {
    return { kind: 'hang' };
  },
};

export interface FaultRule {
  /** Upper case; any method when absent. */
  readonly method?: string;
  /** A string matches paths starting with it; a RegExp is tested against the path (query excluded). Any path when absent. */
  readonly path?: string | RegExp;
  /** How many matching requests get the fault (default: every one, until removed). */
  readonly times?: number;
  readonly action: FaultAction;
}

export interface FaultHandle {
  /** Requests this rule has answered so far. */
  readonly hits: number;
  remove(): void;
}

export interface ProxyRequest {
  /** Arrival time, ms since the epoch. */
  readonly at: number;
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** "METHOD /path" with ids collapsed: "POST /finalize-order/:id". */
  readonly endpoint: string;
  /** What the proxy did: 'forwarded' or the fault kind. */
  readonly outcome: 'forwarded' | FaultAction['kind'];
  /** The status sent back, once known (never for reset and hang). */
  status?: number;
}

export interface CountFilter {
  readonly method?: string;
  readonly path?: string | RegExp;
  /** Only requests that arrived at or after this time (ms since the epoch). */
  readonly since?: number;
}

export interface FaultProxy {
  /** https://127.0.0.1:<port> */
  readonly origin: string;
  /** The directory URL to configure as `acme.directory`. */
  readonly directoryUrl: string;
  /** The CA bundle that trusts the proxy (the same CA as Pebble's). */
  readonly caBundlePath: string;
  /** Pathnames of the directory's resources (newNonce, newAccount, newOrder, ...) and of the directory itself. */
  readonly paths: Readonly<Record<string, string>> & {
    readonly directory: string;
    readonly newOrder: string;
  };
  inject(rule: FaultRule): FaultHandle;
  clearFaults(): void;
  /** Every request seen, in arrival order. */
  readonly requests: readonly ProxyRequest[];
  count(filter?: CountFilter): number;
  /** Arrival times (ms since the epoch) of the matching requests, in order. */
  times(filter?: CountFilter): number[];
  /** Counts keyed by endpoint ("POST /order-plz"), optionally since a time. */
  byEndpoint(since?: number): Record<string, number>;
  /** Sockets currently held open by `hang` faults. */
  held(): number;
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** "/my-order/AbC123xyz" -> "/my-order/:id" (Pebble's ids are long base64url strings). */
export function endpointKind(path: string): string {
  return path.replace(/\/[A-Za-z0-9_-]{8,}(?=\/|$)/g, '/:id');
}

function matches(rule: FaultRule, method: string, path: string): boolean {
  if (rule.method && rule.method.toUpperCase() !== method) return false;
  if (rule.path === undefined) return true;
  return typeof rule.path === 'string' ? path.startsWith(rule.path) : rule.path.test(path);
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer | string,
): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const h = { ...headers };
  delete h['content-length'];
  delete h['transfer-encoding'];
  delete h['connection'];
  res.writeHead(status, { ...h, 'content-length': String(buf.length) });
  res.end(buf);
}

function getText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(s) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

export async function startFaultProxy(pebble: Pebble): Promise<FaultProxy> {
  const upstream = new URL(pebble.directoryUrl);
  const upstreamOrigin = upstream.origin;
  const ca = pebble.tlsCaPem;
  const [cert, key] = await Promise.all([readFile(pebble.tlsCertPath), readFile(pebble.tlsKeyPath)]);

  // Resource paths from Pebble's own directory, so tests never hard-code "/order-plz".
  const directory = JSON.parse(await getText(pebble.directoryUrl, ca)) as Record<string, unknown>;
  const paths: Record<string, string> = { directory: upstream.pathname };
  for (const [k, v] of Object.entries(directory)) {
    if (typeof v === 'string' && v.startsWith(upstreamOrigin)) paths[k] = new URL(v).pathname;
  }
  if (!paths.newOrder) throw new Error('fault-proxy: Pebble directory has no newOrder');

  type ActiveRule = FaultRule & { left: number; hits: number; removed: boolean };
  let rules: ActiveRule[] = [];
  const requests: ProxyRequest[] = [];
  const heldSockets = new Set<Socket>();
  let origin = '';

  const rewrite = (text: string): string => text.split(upstreamOrigin).join(origin);

  function forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['content-length'];
      delete headers['connection'];
      const up = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...headers, host: new URL(origin).host, 'content-length': String(body.length) },
          ca,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const out: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = v;
            resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  function applyFault(
    action: FaultAction,
    req: IncomingMessage,
    res: ServerResponse,
    rec: ProxyRequest,
  ): void {
    switch (action.kind) {
      case 'status': {
        const json = typeof action.body === 'object';
        const headers: Record<string, string> = {
          'content-type': json ? 'application/problem+json' : 'text/plain',
        };
        if (action.retryAfter !== undefined) headers['retry-after'] = String(action.retryAfter);
        rec.status = action.status;
        send(res, action.status, headers, json ? JSON.stringify(action.body) : (action.body ?? ''));
        return;
      }
      case 'reset': {
        const socket = req.socket as Socket & { resetAndDestroy?: () => Socket };
        // An RST is what a crashed middlebox sends; a TLS socket may not support it: then FIN.
        try {
          if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
          else socket.destroy();
        } catch {
          socket.destroy();
        }
        return;
      }
      case 'hang': {
        const socket = req.socket;
        heldSockets.add(socket);
        socket.once('close', () => heldSockets.delete(socket));
        return;
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0]!;
    const body = await readBody(req);
    const rule = rules.find((r) => !r.removed && r.left > 0 && matches(r, method, path));
    const rec: ProxyRequest = {
      at: Date.now(),
      method,
      path,
      endpoint: `${method} ${endpointKind(path)}`,
      outcome: rule ? rule.action.kind : 'forwarded',
    };
    requests.push(rec);
    if (rule) {
      rule.left--;
      rule.hits++;
      applyFault(rule.action, req, res, rec);
      return;
    }
    const up = await forward(req, body);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) {
      headers[k] = k === 'location' || k === 'link' ? (Array.isArray(v) ? v.map(rewrite) : rewrite(v)) : v;
    }
    const json = /json/.test(String(up.headers['content-type'] ?? ''));
    rec.status = up.status;
    send(res, up.status, headers, json ? Buffer.from(rewrite(up.body.toString('utf8'))) : up.body);
  }

  const server = https.createServer({ cert, key }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 502, { 'content-type': 'text/plain' }, `fault-proxy: ${(err as Error).message}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const select = (f: CountFilter = {}): ProxyRequest[] =>
    requests.filter(
      (r) =>
        (f.since === undefined || r.at >= f.since) &&
        matches({ method: f.method, path: f.path, action: faults.hang() }, r.method, r.path),
    );

  return {
    origin,
    directoryUrl: `${origin}${upstream.pathname}`,
    caBundlePath: pebble.tlsCaPath,
    paths: paths as FaultProxy['paths'],
    inject(rule) {
      const active: ActiveRule = { ...rule, left: rule.times ?? Infinity, hits: 0, removed: false };
      rules.push(active);
      return {
        get hits() {
          return active.hits;
        },
        remove() {
          active.removed = true;
          rules = rules.filter((r) => r !== active);
        },
      };
    },
    clearFaults() {
      rules = [];
    },
    requests,
    count: (filter) => select(filter).length,
    times: (filter) => select(filter).map((r) => r.at),
    byEndpoint(since) {
      const out: Record<string, number> = {};
      for (const r of select({ since })) out[r.endpoint] = (out[r.endpoint] ?? 0) + 1;
      return out;
    },
    held: () => heldSockets.size,
    async stop() {
      rules = [];
      for (const s of heldSockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
