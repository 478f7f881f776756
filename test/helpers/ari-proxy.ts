import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pebble } from './pebble';

/**
 * Pebble 2.4 has no ARI (`renewalInfo`) and no profiles. This HTTPS reverse proxy on
 * 127.0.0.1:<free port> sits in front of a real Pebble and adds them, so certpilot's ARI code
 * runs against a real CA for everything else:
 *
 *   - every request is forwarded to Pebble unchanged (the JWS stays valid: the body is not
 *     touched, and the Host header is kept as the proxy's, which is what Pebble checks the JWS
 *     `url` against and builds its own URLs from);
 *   - the directory gets `renewalInfo: <proxy>/renewal-info` and, when set, `meta.profiles`;
 *   - `GET /renewal-info/<certId>` is answered from a table the test controls (`setWindow`);
 *   - every newOrder payload is decoded and recorded (tests assert `replaces` and `profile`);
 *   - requests are counted by kind.
 *
 * Pebble's own URLs that still name Pebble's address (none do in 2.4 when Host is the proxy's,
 * but a later version may use its listen address) are rewritten to the proxy in headers and
 * JSON bodies, so a client never bypasses the proxy.
 *
 * Pebble 2.4 and `replaces`/`profile`: it decodes newOrder with Go's encoding/json, which
 * ignores unknown fields, so both are accepted and ignored (test/ari/ari-pebble.test.ts proves
 * it on the real binary); the proxy therefore never needs to strip them (it could not anyway:
 * the payload is signed).
 */

export interface RenewalInfoEntry {
  start: Date;
  end: Date;
  /** Retry-After of the answer in seconds (default 21600 = 6 h); null sends none. */
  retryAfterSeconds: number | null;
  explanationURL?: string;
}

export interface RecordedOrder {
  /** The decoded JWS payload of the newOrder request. */
  payload: Record<string, unknown>;
  /** Pebble's answer. */
  status: number;
  /** Pebble's answer body (order object or problem document). */
  response: unknown;
}

export interface AriProxy {
  /** https://127.0.0.1:<port> */
  readonly origin: string;
  /** The directory URL to configure as `acme.directory`. */
  readonly directoryUrl: string;
  /** The `renewalInfo` URL the directory advertises. */
  readonly renewalInfoUrl: string;
  /** Sets the window served for `certId`, or for every certificate without an entry ('*'); null removes it. */
  setWindow(
    certId: string | '*',
    window: { start: Date; end: Date } | null,
    retryAfterSeconds?: number | null,
    explanationURL?: string,
  ): void;
  /** Sets (or, with undefined, removes) `meta.profiles` in the directory. */
  setProfiles(profiles: Record<string, string> | undefined): void;
  /** Hides `renewalInfo` from the directory (a CA without ARI). */
  setAriEnabled(enabled: boolean): void;
  /**
   * Answers newOrder requests that carry `replaces` with this problem instead of forwarding them
   * (e.g. `alreadyReplaced`, which Pebble 2.4 cannot produce); null stops it.
   */
  setReplacesProblem(problem: { status: number; type: string; detail: string } | null): void;
  /** newOrder requests seen, in order. */
  readonly orders: RecordedOrder[];
  /** Requests seen, keyed "GET /renewal-info", "POST /order-plz", "GET /dir", ... */
  readonly counts: Readonly<Record<string, number>>;
  /** renewalInfo requests for one certificate id. */
  renewalInfoRequests(certId: string): number;
  stop(): Promise<void>;
}

const RENEWAL_INFO_PATH = '/renewal-info';
const DEFAULT_RETRY_AFTER_S = 21_600;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decodePayload(body: Buffer): Record<string, unknown> {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload?: string };
    return JSON.parse(Buffer.from(jws.payload ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
}

/** Path with ids collapsed, for counting ("/my-order/abc123" -> "/my-order/:id"). */
function kindOf(path: string): string {
  const p = path.split('?')[0]!;
  if (p.startsWith(RENEWAL_INFO_PATH + '/')) return RENEWAL_INFO_PATH;
  return p.replace(/\/[A-Za-z0-9_-]{8,}(?=\/|$)/g, '/:id');
}

export async function startAriProxy(pebble: Pebble): Promise<AriProxy> {
  const upstream = new URL(pebble.directoryUrl);
  const upstreamOrigin = upstream.origin;
  const [cert, key] = await Promise.all([readFile(pebble.tlsCertPath), readFile(pebble.tlsKeyPath)]);
  const ca = pebble.tlsCaPem;

  const windows = new Map<string, RenewalInfoEntry>();
  const orders: RecordedOrder[] = [];
  const counts: Record<string, number> = {};
  const perCert = new Map<string, number>();
  let profiles: Record<string, string> | undefined;
  let ariEnabled = true;
  let replacesProblem: { status: number; type: string; detail: string } | null = null;
  let origin = '';

  // Learn Pebble's newOrder path from its own directory (not hard-coded: "/order-plz" in 2.4).
  const dirText = await new Promise<string>((resolve, reject) => {
    https
      .get(pebble.directoryUrl, { ca }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => resolve(s));
      })
      .on('error', reject);
  });
  const newOrderPath = new URL((JSON.parse(dirText) as { newOrder: string }).newOrder).pathname;

  const rewrite = (text: string): string => text.split(upstreamOrigin).join(origin);

  function forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['content-length'];
      const up = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          // Keep the proxy's Host: Pebble checks the JWS url against it and builds URLs from it.
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const kind = `${req.method ?? 'GET'} ${kindOf(path)}`;
    counts[kind] = (counts[kind] ?? 0) + 1;

    if (path.startsWith(RENEWAL_INFO_PATH + '/')) {
      const certId = decodeURIComponent(path.slice(RENEWAL_INFO_PATH.length + 1).split('?')[0]!);
      perCert.set(certId, (perCert.get(certId) ?? 0) + 1);
      const entry = windows.get(certId) ?? windows.get('*');
      if (!ariEnabled || req.method !== 'GET' || !entry) {
        send(
          res,
          404,
          { 'content-type': 'application/problem+json' },
          JSON.stringify({
            type: 'urn:ietf:params:acme:error:malformed',
            detail: `no renewal information for ${certId}`,
          }),
        );
        return;
      }
      send(
        res,
        200,
        {
          'content-type': 'application/json',
          ...(entry.retryAfterSeconds === null ? {} : { 'retry-after': String(entry.retryAfterSeconds) }),
        },
        JSON.stringify({
          suggestedWindow: { start: entry.start.toISOString(), end: entry.end.toISOString() },
          ...(entry.explanationURL ? { explanationURL: entry.explanationURL } : {}),
        }),
      );
      return;
    }

    const body = await readBody(req);
    const isNewOrder = req.method === 'POST' && path === newOrderPath;
    if (isNewOrder && replacesProblem) {
      const payload = decodePayload(body);
      if (typeof payload.replaces === 'string') {
        const problem = {
          type: replacesProblem.type,
          detail: replacesProblem.detail,
          status: replacesProblem.status,
        };
        orders.push({ payload, status: replacesProblem.status, response: problem });
        send(
          res,
          replacesProblem.status,
          { 'content-type': 'application/problem+json' },
          JSON.stringify(problem),
        );
        return;
      }
    }
    const up = await forward(req, body);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) {
      headers[k] = k === 'location' || k === 'link' ? (Array.isArray(v) ? v.map(rewrite) : rewrite(v)) : v;
    }
    let out = up.body;
    const json = /json/.test(String(up.headers['content-type'] ?? ''));
    if (json) {
      let text = rewrite(up.body.toString('utf8'));
      if (req.method === 'GET' && path === upstream.pathname && up.status === 200) {
        const dir = JSON.parse(text) as Record<string, unknown> & { meta?: Record<string, unknown> };
        if (ariEnabled) dir.renewalInfo = `${origin}${RENEWAL_INFO_PATH}`;
        if (profiles) dir.meta = { ...(dir.meta ?? {}), profiles };
        text = JSON.stringify(dir);
      }
      out = Buffer.from(text);
    }
    if (isNewOrder) {
      let response: unknown;
      try {
        response = JSON.parse(out.toString('utf8'));
      } catch {
        response = out.toString('utf8');
      }
      orders.push({ payload: decodePayload(body), status: up.status, response });
    }
    send(res, up.status, headers, out);
  }

  const server = https.createServer({ cert, key }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 502, { 'content-type': 'text/plain' }, `ari-proxy: ${(err as Error).message}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    directoryUrl: `${origin}${upstream.pathname}`,
    renewalInfoUrl: `${origin}${RENEWAL_INFO_PATH}`,
    setWindow(certId, window, retryAfterSeconds = DEFAULT_RETRY_AFTER_S, explanationURL) {
      if (window === null) windows.delete(certId);
      else windows.set(certId, { ...window, retryAfterSeconds, explanationURL });
    },
    setProfiles(p) {
      profiles = p;
    },
    setAriEnabled(enabled) {
      ariEnabled = enabled;
    },
    setReplacesProblem(problem) {
      replacesProblem = problem;
    },
    orders,
    counts,
    renewalInfoRequests: (certId) => perCert.get(certId) ?? 0,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
