import dgram from 'node:dgram';
import net from 'node:net';

/**
 * A DNS forwarder on 127.0.0.1:53 (UDP and TCP) that relays every message, byte for byte, to the
 * test BIND on its high port, sending from a second loopback address (127.0.0.2 by default).
 * Only used inside the benchmark's private network namespace, where port 53 is free and nothing
 * else exists. TSIG-signed updates pass unchanged (the signature covers the message, not the
 * addresses).
 *
 * Why:
 * - lego 4.x asks each authoritative nameserver of the zone on port 53 (the port is fixed in its
 *   propagation check) and resolves the nameserver's host name with the system resolver. The
 *   benchmark points the namespace's /etc/resolv.conf at 127.0.0.1, so both reach BIND.
 * - Every client is configured to use 127.0.0.1:53, so in named's query log the clients' queries
 *   come from 127.0.0.2 and Pebble's validation queries (sent straight to BIND) from 127.0.0.1.
 *   named's log timestamps lag by a few milliseconds (it stamps with its event loop's cached
 *   time), too coarse to tell the two apart by time alone.
 */
export interface DnsForwarder {
  /** Messages relayed so far. */
  readonly relayed: number;
  stop(): Promise<void>;
}

export async function startDnsForwarder(
  upstreamPort: number,
  opts: { listenPort?: number; sourceAddress?: string } = {},
): Promise<DnsForwarder> {
  const listenPort = opts.listenPort ?? 53;
  const sourceAddress = opts.sourceAddress ?? '127.0.0.2';
  let relayed = 0;
  const udp = dgram.createSocket('udp4');
  const pending = new Set<dgram.Socket>();
  udp.on('message', (msg, rinfo) => {
    relayed++;
    const out = dgram.createSocket('udp4');
    pending.add(out);
    const done = (): void => {
      clearTimeout(timer);
      pending.delete(out);
      out.close();
    };
    const timer = setTimeout(done, 5_000);
    out.on('message', (answer) => {
      udp.send(answer, rinfo.port, rinfo.address);
      done();
    });
    out.on('error', done);
    out.bind({ address: sourceAddress, port: 0 }, () => out.send(msg, upstreamPort, '127.0.0.1'));
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(listenPort, '127.0.0.1', () => resolve());
  });

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((client) => {
    relayed++;
    const server = net.connect({ port: upstreamPort, host: '127.0.0.1', localAddress: sourceAddress });
    sockets.add(client);
    sockets.add(server);
    const close = (): void => {
      client.destroy();
      server.destroy();
      sockets.delete(client);
      sockets.delete(server);
    };
    client.setTimeout(10_000, close);
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
    client.pipe(server).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(listenPort, '127.0.0.1', () => resolve());
  });

  return {
    get relayed() {
      return relayed;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      for (const s of pending) s.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
