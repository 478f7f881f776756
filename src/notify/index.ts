import { promises as fs } from 'node:fs';
import os from 'node:os';
import { describeError } from '../core/errors';
import { redactStrings, redactText } from '../core/redact';
import type { Logger } from '../core/logger';
import { readSecret } from '../config/secrets';
import type { AlertKind, EmailAlert, NotifySettings, WebhookAlert } from '../config/types';
import { configuredHostLookup, resolveWith } from '../dns/host-lookup';

/**
 * Alerts: a generic JSON webhook, a Slack-compatible webhook and e-mail over SMTP. Since Let's
 * Encrypt stopped sending expiry mail (2025-06-04) nothing else warns an operator, so every
 * channel is tried independently and a failing channel is logged, never allowed to hide the
 * failure being reported (the run already exits non-zero for it). An alert leaves the machine:
 * its body goes through the redaction policy (registered secrets, private keys) like a log line,
 * since its message is usually an error that may quote a server or a program.
 */

export interface AlertEvent {
  kind: AlertKind;
  /** Certificate name, when the alert is about one. */
  cert?: string;
  domains?: readonly string[];
  message: string;
  serial?: string;
  /** Rollback: the serial that failed and was replaced by `serial`. */
  failedSerial?: string;
  notAfter?: Date;
}

export interface Notifier {
  /** Sends to every configured channel; resolves when all attempts are done, never rejects. */
  notify(event: AlertEvent): Promise<void>;
}

const SEVERITY: Record<AlertKind, 'critical' | 'error' | 'warning' | 'info'> = {
  'renewal-failed': 'error',
  'deploy-failed': 'error',
  'verify-failed': 'error',
  rollback: 'warning',
  // Neither the new nor the old version is known to be served.
  'rollback-failed': 'critical',
  critical: 'critical',
  // Expiry reminders of the daemon's inventory (src/daemon/reminders.ts), managed or not.
  'expiry-warning': 'warning',
  'expiry-critical': 'critical',
  'expiry-resolved': 'info',
  // The daemon's renewal-readiness canary (src/daemon/readiness-schedule.ts): the next renewal
  // would fail, usually weeks before it is attempted.
  'readiness-failed': 'error',
  'readiness-resolved': 'info',
  // A summary (src/daemon/digest.ts): each item in it was, or will be, alerted on its own.
  digest: 'warning',
  // The other nodes keep serving the previous version: nothing is down yet.
  'fleet-canary-failed': 'error',
  // Self-healing deploys of the daemon (src/daemon/self-heal.ts).
  'redeploy-failed': 'error',
  'redeploy-resolved': 'info',
  // An order went to a fallback CA: issuance worked, but the primary needs a look.
  'ca-failover': 'warning',
};

export const silentNotifier: Notifier = { notify: async () => undefined };

function subject(e: AlertEvent): string {
  return `certpilot ${e.kind}${e.cert ? `: ${e.cert}` : ''}`;
}

export function alertJson(e: AlertEvent, host = os.hostname()): Record<string, unknown> {
  return {
    source: 'certpilot',
    kind: e.kind,
    severity: SEVERITY[e.kind],
    host,
    time: new Date().toISOString(),
    certificate: e.cert ?? null,
    domains: e.domains ?? [],
    serial: e.serial ?? null,
    failedSerial: e.failedSerial ?? null,
    notAfter: e.notAfter?.toISOString() ?? null,
    message: e.message,
  };
}

function alertText(e: AlertEvent): string {
  const lines = [
    `${subject(e)} (${SEVERITY[e.kind]}) on ${os.hostname()}`,
    e.message,
    e.domains?.length ? `domains: ${e.domains.join(', ')}` : '',
    e.serial ? `serial: ${e.serial}` : '',
    e.failedSerial ? `failed serial: ${e.failedSerial}` : '',
    e.notAfter ? `expires: ${e.notAfter.toISOString()}` : '',
  ];
  return lines.filter(Boolean).join('\n');
}

async function sendWebhook(w: WebhookAlert, e: AlertEvent, log: Logger): Promise<void> {
  // Slack (and Mattermost, Rocket.Chat, Teams workflows) accept {"text": ...}.
  const body = redactStrings(w.format === 'slack' ? { text: alertText(e) } : alertJson(e));
  const lookup = configuredHostLookup();
  // The HTTP client loads with the first alert sent, not with every run that could send one.
  const { postJson } = await import('../core/http');
  await postJson({
    url: w.url,
    body,
    ...(w.secret ? { secret: await readSecret(w.secret) } : {}),
    signatureHeader: w.signatureHeader,
    headers: w.headers,
    retries: w.retries,
    timeoutMs: w.timeoutMs,
    component: 'notify',
    log,
    ...(lookup ? { lookup } : {}),
  });
}

async function sendEmail(m: EmailAlert, e: AlertEvent, log: Logger): Promise<void> {
  // Loaded on first use: most runs send no mail, and the CLI should start fast.
  const { createTransport } = await import('nodemailer');
  const password = m.password ? await readSecret(m.password) : undefined;
  // nodemailer resolves names itself (c-ares with the system's servers, then getaddrinfo) and
  // takes no lookup: with dns.resolvers set, connect to the address they give and keep the
  // name for SNI and certificate verification.
  const lookup = configuredHostLookup();
  const address = lookup ? await resolveWith(lookup, m.host) : m.host;
  const servername = address !== m.host ? { servername: m.host } : {};
  const transport = createTransport({
    host: address,
    ...servername,
    port: m.port,
    secure: m.tls === 'implicit',
    requireTLS: m.tls === 'starttls',
    ignoreTLS: m.tls === 'none',
    ...(m.username !== undefined && password !== undefined
      ? { auth: { user: m.username, pass: password } }
      : {}),
    tls: { ...servername, ...(m.caBundle ? { ca: await fs.readFile(m.caBundle, 'utf8') } : {}) },
    connectionTimeout: m.timeoutMs,
    greetingTimeout: m.timeoutMs,
    socketTimeout: m.timeoutMs,
    // nodemailer's own logger would print the SMTP dialogue, AUTH included: keep it off.
    logger: false,
    debug: false,
  });
  try {
    const info = await transport.sendMail({
      from: m.from,
      to: [...m.to],
      subject: redactText(subject(e)),
      text: redactText(alertText(e)),
    });
    log.info('alert mail sent', { to: m.to, messageId: info.messageId });
  } finally {
    transport.close();
  }
}

export function createNotifier(settings: NotifySettings, log: Logger): Notifier {
  const nlog = log.child({ component: 'notify' });
  return {
    async notify(e) {
      if (!settings.on.includes(e.kind)) return;
      nlog.warn('alert', { kind: e.kind, cert: e.cert, message: e.message });
      const jobs: Promise<void>[] = settings.webhooks.map((w) => sendWebhook(w, e, nlog));
      if (settings.email) jobs.push(sendEmail(settings.email, e, nlog));
      const results = await Promise.allSettled(jobs);
      for (const r of results) {
        if (r.status === 'rejected')
          nlog.error('alert not delivered', { kind: e.kind, error: describeError(r.reason) });
      }
    },
  };
}
