import dns from 'node:dns';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import type { NotifySettings } from '../../src/config/types';
import { useResolversForConnections } from '../../src/dns/host-lookup';
import { createNotifier } from '../../src/notify';
import { type BindServer, startBind } from '../helpers/bind';
import { makeCa, makeCertificate } from '../helpers/certs';
import { memoryLogger } from '../helpers/memory-logger';

/**
 * Alert mail with dns.resolvers set: nodemailer resolves names itself (c-ares with the system's
 * servers, then getaddrinfo) and takes no lookup, so certpilot resolves the SMTP host through
 * the configured resolvers and connects to the address with the name kept for TLS. The server's
 * certificate names only `mail.example.test` (no IP SAN): the mail arriving over verified TLS
 * proves the name, not the address, was checked.
 */

let bind: BindServer;
let smtp: SMTPServer;
let port: number;
let dir: string;
let caPath: string;
const mails: string[] = [];

beforeAll(async () => {
  bind = await startBind({ zones: [{ name: 'example.test', records: ['mail IN A 127.0.0.1'] }] });
  const ca = makeCa();
  const day = 86_400_000;
  const leaf = makeCertificate({
    names: ['mail.example.test'],
    issuer: ca,
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + day),
  });
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-smtp-lookup-'));
  caPath = path.join(dir, 'ca.pem');
  await writeFile(caPath, ca.certPem);
  smtp = new SMTPServer({
    secure: true,
    key: leaf.keyPem,
    cert: leaf.certPem,
    authOptional: true,
    logger: false,
    onData(stream, _session, cb) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (raw += c));
      stream.on('end', () => {
        mails.push(raw);
        cb();
      });
    },
  });
  port = await new Promise<number>((resolve) => {
    smtp.listen(0, '127.0.0.1', () => resolve((smtp.server.address() as net.AddressInfo).port));
  });
});
afterAll(async () => {
  await new Promise<void>((r) => smtp?.close(() => r()));
  await bind?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('the SMTP host is resolved through dns.resolvers; neither getaddrinfo nor c-ares is asked for a name', async () => {
  useResolversForConnections({
    resolvers: [`127.0.0.1:${bind.port}`],
    nameserverPort: bind.port,
    queryTimeoutMs: 2000,
  });
  const systemLookups = jest.spyOn(dns, 'lookup');
  const systemResolves = jest.spyOn(dns.Resolver.prototype, 'resolve4');
  try {
    const settings: NotifySettings = {
      on: ['critical'],
      criticalDays: 7,
      webhooks: [],
      email: {
        host: 'mail.example.test',
        port,
        tls: 'implicit',
        from: 'certpilot@example.test',
        to: ['ops@example.test'],
        timeoutMs: 5000,
        caBundle: caPath,
      },
    };
    const log = memoryLogger();
    await createNotifier(settings, log).notify({ kind: 'critical', message: 'www expires in 2 days' });
    expect(log.records.filter((r) => r.level === 'error')).toEqual([]);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toContain('www expires in 2 days');
    const names = systemLookups.mock.calls.map((c) => String(c[0])).filter((h) => net.isIP(h) === 0);
    expect(names).toEqual([]);
    expect(systemResolves).not.toHaveBeenCalled();
  } finally {
    systemLookups.mockRestore();
    systemResolves.mockRestore();
  }
});
