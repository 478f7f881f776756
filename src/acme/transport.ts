import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { CertpilotError } from '../core/errors';
import { configuredHostLookup, type HostLookup } from '../dns/host-lookup';
import type { AcmeSettings } from '../config/types';
import { secureContextTrusting } from './trust';

/**
 * The HTTPS client of one ACME adapter: its own keep-alive agent (trusting the default roots
 * plus `acme.caBundle` when set, read once), a deadline on every request and the caller's AbortSignal.
 * Nothing here is shared with another instance or with acme-client's process-wide axios.
 */

/** Largest response read: directory, orders, authorizations and a certificate chain are a few KB. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface AcmeHttpRequest {
  url: string;
  method: string;
  headers?: Readonly<Record<string, string>>;
  /** Sent as JSON (acme-client passes the JWS object). */
  body?: unknown;
}

/** The response shape acme-client reads: `status`, lower-case `headers`, `data` (JSON parsed when it is JSON). */
export interface AcmeHttpResponse {
  status: number;
  headers: Record<string, string | undefined>;
  data: unknown;
}

export interface AcmeTransportOptions {
  agent: https.Agent;
  /** Deadline of one request, connection to last body byte (acme.requestTimeout). */
  timeoutMs: number;
  userAgent?: string;
  /** Host name resolution (dns.resolvers); absent = the system resolver. */
  lookup?: HostLookup;
}

export class AcmeTransport {
  readonly agent: https.Agent;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly lookup: HostLookup | undefined;

  constructor(opts: AcmeTransportOptions) {
    this.agent = opts.agent;
    this.timeoutMs = opts.timeoutMs;
    this.userAgent = opts.userAgent ?? 'certpilot';
    this.lookup = opts.lookup;
  }

  /** A transport for `settings`: the CA bundle, when there is one, is read here and only here. */
  static async create(settings: Pick<AcmeSettings, 'caBundle' | 'requestTimeoutMs'>): Promise<AcmeTransport> {
    return new AcmeTransport({
      agent: await createAcmeAgent(settings),
      timeoutMs: settings.requestTimeoutMs,
      // dns.resolvers, when set, resolve the CA's host name too (never getaddrinfo).
      lookup: configuredHostLookup(),
    });
  }

  send(req: AcmeHttpRequest, signal?: AbortSignal): Promise<AcmeHttpResponse> {
    const url = new URL(req.url);
    if (url.protocol !== 'https:') {
      // RFC 8555 §6.1: ACME is HTTPS only; a directory naming http: URLs is a CA (or proxy) error.
      return Promise.reject(
        new CertpilotError('ACME_PROBLEM', `acme: refusing a non-HTTPS URL from the CA: ${url.origin}`),
      );
    }
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const lookup = this.lookup;
    return new Promise<AcmeHttpResponse>((resolve, reject) => {
      const request = https.request(url, {
        method: req.method.toUpperCase(),
        agent: this.agent,
        ...(lookup ? { lookup } : {}),
        headers: {
          ...req.headers,
          'user-agent': this.userAgent,
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        ...(signal ? { signal } : {}),
      });
      // Same words (and code) as axios, which carried these requests before: operators' alerts
      // and the fault tests match on them.
      const timer = setTimeout(
        () =>
          request.destroy(
            Object.assign(new Error(`timeout of ${this.timeoutMs}ms exceeded`), { code: 'ECONNABORTED' }),
          ),
        this.timeoutMs,
      );
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      request.on('error', fail);
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) res.destroy(new Error(`response larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          const headers = flattenHeaders(res.headers);
          resolve({
            status: res.statusCode ?? 0,
            headers,
            data: parseBody(Buffer.concat(chunks).toString('utf8'), headers['content-type']),
          });
        });
      });
      request.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A keep-alive agent trusting the default roots, plus `caBundle` when set (read now, once). */
export async function createAcmeAgent(settings: Pick<AcmeSettings, 'caBundle'>): Promise<https.Agent> {
  if (!settings.caBundle) return new https.Agent({ keepAlive: true });
  let pem: string;
  try {
    pem = await readFile(settings.caBundle, 'utf8');
  } catch (err) {
    throw new CertpilotError('STORE_IO', `acme: cannot read acme.caBundle ${settings.caBundle}`, {
      cause: err,
    });
  }
  // The bundle adds to the default roots (as documented): a CA behind a private root and a
  // redirect or proxy with a public certificate both work. One shared secure context, so the
  // roots are parsed once per process, not per connection.
  return new https.Agent({ secureContext: secureContextTrusting(pem), keepAlive: true });
}

function flattenHeaders(
  raw: Record<string, string | string[] | undefined>,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** JSON (application/json, application/problem+json) parsed; anything else (a PEM chain) as text. */
function parseBody(text: string, contentType: string | undefined): unknown {
  if (!contentType?.includes('json') || text === '') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
