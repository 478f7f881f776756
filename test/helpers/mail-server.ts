import { EventEmitter } from 'node:events';
import { SMTPServer } from 'smtp-server';
import { LOOPBACK } from './tls-servers';

/**
 * A real SMTP receiver (the smtp-server package) on loopback that requires AUTH and keeps every
 * message, for alert tests. Plaintext on loopback only: the test checks what certpilot sends,
 * not TLS (the probe tests cover STARTTLS).
 */
export interface ReceivedMail {
  from: string;
  to: string[];
  user: string;
  raw: string;
}

export interface MailServer {
  readonly host: string;
  readonly port: number;
  readonly messages: ReceivedMail[];
  waitFor(pred: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export async function startMailServer(opts: { username: string; password: string }): Promise<MailServer> {
  const messages: ReceivedMail[] = [];
  const events = new EventEmitter();
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === opts.username && auth.password === opts.password)
        cb(null, { user: auth.username });
      else cb(new Error('invalid credentials'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (raw += c));
      stream.on('end', () => {
        const mail: ReceivedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: String(session.user ?? ''),
          raw,
        };
        messages.push(mail);
        events.emit('mail', mail);
        cb();
      });
    },
  });
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve, reject) => {
    server.listen(0, LOOPBACK, () => {
      const addr = server.server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : 0);
    });
    server.server.once('error', reject);
  });
  return {
    host: LOOPBACK,
    port,
    messages,
    waitFor(pred, timeoutMs = 15_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('mail', on);
          reject(new Error(`no matching mail within ${timeoutMs} ms (got ${messages.length})`));
        }, timeoutMs);
        const on = (m: ReceivedMail): void => {
          if (!pred(m)) return;
          clearTimeout(timer);
          events.off('mail', on);
          resolve(m);
        };
        events.on('mail', on);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
