import net from 'node:net';
import tls from 'node:tls';
import {
  LOOPBACK,
  listen,
  secureContextOptions,
  type RunningServer,
  type ServedIdentity,
} from './tls-servers';

/**
 * The smallest SMTP server a STARTTLS probe needs (RFC 5321 + RFC 3207): a 220 greeting,
 * EHLO with a multi-line 250 reply, STARTTLS answered with 220 and then a real TLS handshake
 * on the same connection. Everything else gets 502. It delivers no mail.
 */

export interface SmtpServerOptions extends ServedIdentity {
  /** Leave STARTTLS out of the EHLO reply (a server without TLS). Default false. */
  withoutStarttls?: boolean;
  /** Greeting code; 554 is how a server refuses service (RFC 5321 §3.1). Default 220. */
  greetingCode?: number;
}

export async function startSmtpServer(opts: SmtpServerOptions): Promise<RunningServer> {
  const context = tls.createSecureContext(secureContextOptions(opts));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('latin1');
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'EHLO') {
          const ext = opts.withoutStarttls
            ? ['PIPELINING', '8BITMIME']
            : ['PIPELINING', 'STARTTLS', '8BITMIME'];
          socket.write(
            ['mail.test greets you', ...ext]
              .map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`)
              .join(''),
          );
        } else if (verb === 'STARTTLS' && !opts.withoutStarttls) {
          // Stop reading lines before the client's ClientHello arrives; the TLS layer takes
          // over the connection's handle from here.
          socket.off('data', onData);
          socket.write('220 2.0.0 Ready to start TLS\r\n');
          const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
          secure.on('error', () => undefined);
          return;
        } else if (verb === 'QUIT') {
          socket.end('221 2.0.0 Bye\r\n');
          return;
        } else {
          socket.write('502 5.5.2 Command not implemented\r\n');
        }
      }
    };
    socket.on('data', onData);
    socket.write(`${opts.greetingCode ?? 220} mail.test ESMTP certpilot-test\r\n`);
  });
  const port = await listen(server);
  return {
    host: LOOPBACK,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const s of sockets) s.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
