import dgram from 'node:dgram';
import net from 'node:net';
import { freePort } from './ports';

/**
 * A scripted DNS server on loopback speaking the real wire protocol (UDP datagrams and
 * length-prefixed TCP, RFC 1035 section 4.2): for the answers a real server never gives
 * (unsigned, another zone, two TSIG records) and for retransmission tests. Every request is
 * recorded; `handler` decides what goes back (nothing, one message, or several in order).
 */

export type Transport = 'udp' | 'tcp';

export interface ReceivedRequest {
  readonly protocol: Transport;
  readonly message: Buffer;
  /** Header ID. */
  readonly id: number;
}

export type ResponderHandler = (
  request: ReceivedRequest,
  index: number,
) => Buffer | readonly Buffer[] | undefined | Promise<Buffer | readonly Buffer[] | undefined>;

export interface DnsResponder {
  readonly address: '127.0.0.1';
  readonly port: number;
  readonly requests: readonly ReceivedRequest[];
  /** Replaces the handler (between tests). */
  handle(handler: ResponderHandler): void;
  /** Resolves when `count` requests have arrived in total. */
  waitForRequests(count: number): Promise<void>;
  stop(): Promise<void>;
}

function asList(out: Buffer | readonly Buffer[] | undefined): readonly Buffer[] {
  if (out === undefined) return [];
  return Buffer.isBuffer(out) ? [out] : out;
}

export async function startDnsResponder(initial: ResponderHandler): Promise<DnsResponder> {
  let handler = initial;
  const requests: ReceivedRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const record = (protocol: Transport, message: Buffer): { req: ReceivedRequest; index: number } => {
    const req = { protocol, message: Buffer.from(message), id: message.readUInt16BE(0) };
    requests.push(req);
    for (const w of waiters.filter((x) => requests.length >= x.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    return { req, index: requests.length - 1 };
  };

  const port = await freePort();
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const { req, index } = record('udp', msg);
    void Promise.resolve(handler(req, index)).then((out) => {
      for (const m of asList(out)) udp.send(m, rinfo.port, rinfo.address);
    });
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, '127.0.0.1', () => resolve());
  });

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        const { req, index } = record('tcp', msg);
        void Promise.resolve(handler(req, index)).then((out) => {
          for (const m of asList(out)) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(m.length, 0);
            if (!sock.destroyed) sock.write(Buffer.concat([len, m]));
          }
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    address: '127.0.0.1',
    port,
    requests,
    handle(h) {
      handler = h;
    },
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => udp.close(() => resolve())),
      ]);
    },
  };
}
