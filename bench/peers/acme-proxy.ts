import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A counting HTTPS reverse proxy in front of Pebble, used by the peers benchmark as the one ACME
 * directory that certpilot, lego and certbot all talk to. It listens on 127.0.0.1 only, with
 * Pebble's own TLS certificate (SAN 127.0.0.1 and localhost), so every client trusts it with the
 * same CA file as Pebble.
 *
 * - Requests are forwarded unchanged; the Host header stays the proxy's. Pebble checks the JWS
 *   `url` against Host and builds its URLs from Host, so its answers already point at the proxy.
 *   Any URL that still names Pebble's own address (header or text body) is rewritten anyway,
 *   so no client can bypass the count.
 * - Every request is recorded with a label (the client being measured), its kind
 *   ("POST /chalZ", ...) and its time.
 * - Authorization objects in answers are read to map challenge URLs to names, so the benchmark
 *   knows when each name's challenge was answered (a POST to the challenge URL with a non-empty
 *   payload), to compare with the DNS queries BIND logged before it.
 */

export interface ProxiedRequest {
  label: string;
  kind: string;
  method: string;
  path: string;
  status: number;
  at: number;
}

export interface ChallengeAnswer {
  label: string;
  /** DNS name of the authorization, lower case. */
  name: string;
  /** Date.now() when the answering POST reached the proxy (before Pebble saw it). */
  at: number;
}

export interface AcmeProxy {
  readonly directoryUrl: string;
  /** Requests after this call are attributed to `label`. */
  setLabel(label: string): void;
  readonly requests: readonly ProxiedRequest[];
  readonly answers: readonly ChallengeAnswer[];
  stop(): Promise<void>;
}

export interface AcmeProxyOptions {
  /** Pebble's directory URL (https://127.0.0.1:PORT/dir). */
  upstreamDirectoryUrl: string;
  tlsCaPath: string;
  tlsCertPath: string;
  tlsKeyPath: string;
  /** Per-request deadline towards Pebble. */
  timeoutMs?: number;
}

/** "/chalZ/abc" -> "/chalZ", "/dir" -> "/dir"; keeps the kinds readable and few. */
function kindOf(method: string, pathname: string): string {
  const first = pathname.split('/').filter(Boolean)[0] ?? '';
  return `${method} /${first}`;
}

function decodePayload(body: Buffer): string | undefined {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload?: string };
    return typeof jws.payload === 'string'
      ? Buffer.from(jws.payload, 'base64url').toString('utf8')
      : undefined;
  } catch {
    return undefined;
  }
}

export async function startAcmeProxy(opts: AcmeProxyOptions): Promise<AcmeProxy> {
  const upstream = new URL(opts.upstreamDirectoryUrl);
  const ca = await readFile(opts.tlsCaPath);
  const agent = new https.Agent({ ca, keepAlive: true });
  const requests: ProxiedRequest[] = [];
  const answers: ChallengeAnswer[] = [];
  /** challenge URL path -> name */
  const challengeNames = new Map<string, string>();
  let label = 'none';
  let proxyHost = '';

  const rewrite = (s: string): string => s.split(upstream.host).join(proxyHost);

  const learnAuthz = (text: string): void => {
    try {
      const obj = JSON.parse(text) as {
        identifier?: { value?: string };
        challenges?: { url?: string }[];
      };
      const name = obj.identifier?.value;
      if (!name || !Array.isArray(obj.challenges)) return;
      for (const c of obj.challenges) {
        if (typeof c.url === 'string') challengeNames.set(new URL(c.url).pathname, name.toLowerCase());
      }
    } catch {
      /* not JSON: nothing to learn */
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const pathname = new URL(req.url ?? '/', `https://${proxyHost}`).pathname;
      const method = req.method ?? 'GET';
      const entry: ProxiedRequest = {
        label,
        kind: kindOf(method, pathname),
        method,
        path: pathname,
        status: 0,
        at,
      };
      requests.push(entry);
      if (method === 'POST' && challengeNames.has(pathname)) {
        const payload = decodePayload(body);
        // POST-as-GET has an empty payload; answering the challenge sends "{}".
        if (payload !== undefined && payload !== '') {
          answers.push({ label, name: challengeNames.get(pathname)!, at });
        }
      }
      const headers = { ...req.headers };
      delete headers['content-length'];
      const up = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method,
          path: req.url,
          agent,
          headers: { ...headers, 'content-length': String(body.length) },
          timeout: opts.timeoutMs ?? 30_000,
        },
        (upRes) => {
          const out: Buffer[] = [];
          upRes.on('data', (c: Buffer) => out.push(c));
          upRes.on('end', () => {
            entry.status = upRes.statusCode ?? 0;
            let payload = Buffer.concat(out);
            const type = String(upRes.headers['content-type'] ?? '');
            if (/json|text/.test(type) && !/pem-certificate-chain/.test(type)) {
              const text = rewrite(payload.toString('utf8'));
              learnAuthz(text);
              payload = Buffer.from(text, 'utf8');
            }
            const outHeaders: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(upRes.headers)) {
              if (
                v === undefined ||
                k === 'content-length' ||
                k === 'transfer-encoding' ||
                k === 'connection'
              )
                continue;
              outHeaders[k] = Array.isArray(v) ? v.map(rewrite) : rewrite(v);
            }
            outHeaders['content-length'] = String(payload.length);
            res.writeHead(upRes.statusCode ?? 502, outHeaders);
            res.end(payload);
          });
          upRes.on('error', () => res.destroy());
        },
      );
      up.on('timeout', () => up.destroy(new Error('upstream timeout')));
      up.on('error', (err) => {
        entry.status = 502;
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`acme-proxy: ${err.message}\n`);
      });
      up.end(body);
    });
  };

  const server = https.createServer(
    { cert: await readFile(opts.tlsCertPath), key: await readFile(opts.tlsKeyPath) },
    handle,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  proxyHost = `127.0.0.1:${port}`;
  return {
    directoryUrl: `https://${proxyHost}${upstream.pathname}`,
    setLabel(l) {
      label = l;
    },
    requests,
    answers,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
