import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { freePort } from './ports';

/**
 * Loopback servers for probing tests: real Node TLS servers (so the probe runs the real
 * handshake), a server that accepts TCP and never answers, and a plain HTTP service. Each
 * listens on 127.0.0.1 on a port the OS picks (no race with freePort) and `close()` destroys
 * open connections, so a test never waits for a client to hang up.
 */

export const LOOPBACK = '127.0.0.1';

export interface ServedIdentity {
  certPem: string;
  keyPem: string;
  /** Intermediates sent after the leaf, in this order (root normally left out). */
  chainPems?: string[];
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface TlsServerOptions extends ServedIdentity {
  /** Identities chosen by SNI name (exact, lower-case); unknown names get the default. */
  sni?: Record<string, ServedIdentity>;
}

/** Tracks sockets so close() can destroy them: server.close() alone waits for clients. */
function tracked(server: net.Server): { close: () => Promise<void> } {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const s of sockets) s.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : 0);
    });
  });
}

/** Node's `cert` option takes the leaf followed by the intermediates, in the order to send them. */
export function secureContextOptions(id: ServedIdentity): tls.SecureContextOptions {
  return { key: id.keyPem, cert: [id.certPem, ...(id.chainPems ?? [])].join('') };
}

export async function startTlsServer(opts: TlsServerOptions): Promise<RunningServer> {
  const contexts = new Map(
    Object.entries(opts.sni ?? {}).map(([name, id]) => [
      name.toLowerCase(),
      tls.createSecureContext(secureContextOptions(id)),
    ]),
  );
  const server = tls.createServer({
    ...secureContextOptions(opts),
    SNICallback: (servername, cb) => cb(null, contexts.get(servername.toLowerCase())),
  });
  // Probes hang up right after the handshake and some tests send non-TLS bytes: expected noise.
  server.on('tlsClientError', () => undefined);
  server.on('secureConnection', (s) => s.on('error', () => undefined));
  const t = tracked(server);
  const port = await listen(server);
  return { host: LOOPBACK, port, close: t.close };
}

/**
 * Accepts TCP connections and never sends a byte: a TLS handshake to it can only time out.
 * `onConnection` lets a test act at the moment a client is connected (cancel it, watch it close).
 */
export async function startSilentServer(onConnection?: (socket: net.Socket) => void): Promise<RunningServer> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    // Read and drop what arrives: an unread ClientHello keeps the socket from ever seeing the
    // client's FIN, and the connection would hang in CLOSE-WAIT until the server closes.
    s.resume();
    onConnection?.(s);
  });
  const t = tracked(server);
  const port = await listen(server);
  return { host: LOOPBACK, port, close: t.close };
}

/** A plain HTTP/1.1 service; it answers a TLS ClientHello with "400 Bad Request". */
export async function startHttpServer(): Promise<RunningServer> {
  const server = http.createServer((_req, res) => res.end('hello\n'));
  const t = tracked(server);
  const port = await listen(server);
  return { host: LOOPBACK, port, close: t.close };
}

/** A loopback port on which nothing listens (bound, then released), so connecting is refused. */
export function closedPort(): Promise<number> {
  return freePort(LOOPBACK);
}

/**
 * The servers a test file starts. `serve` keeps each one; `closeAll`, run from afterEach (or
 * afterAll), closes them, so no port or socket outlives a test that failed or timed out and
 * Jest is not kept from exiting.
 */
export function serverTracker(): {
  serve(start: Promise<RunningServer>): Promise<RunningServer>;
  keep(server: RunningServer): void;
  closeAll(): Promise<void>;
} {
  const running: RunningServer[] = [];
  return {
    async serve(start) {
      const server = await start;
      running.push(server);
      return server;
    },
    keep: (server) => void running.push(server),
    closeAll: async () => {
      await Promise.all(running.splice(0).map((s) => s.close()));
    },
  };
}
