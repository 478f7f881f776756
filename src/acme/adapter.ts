import type * as AcmeClient from 'acme-client';
import { sleep } from '../core/abort';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AcmeSettings } from '../config/types';
import { parseDirectoryInfo, type DirectoryInfo } from './ari';
import { classifyAcmeError, toProblem, type AcmeProblem } from './errors';
import { NoncePool } from './nonce-pool';
import { retryAcmeOperation } from './retry-policy';
import { AcmeTransport, type AcmeHttpResponse } from './transport';
import { loadAcmeClient, type AcmeModule } from './acme-client-loader';

/**
 * Every acme-client workaround in one place, as an instance.
 *
 * acme-client 5.4 sends all HTTP through one process-wide axios instance whose interceptors
 * retry silently for ~75 s, hide network and TLS errors behind a TypeError, resend a used nonce
 * after a 429, and cannot be cancelled. Each acme-client `Client` has its own `http` object
 * (the JWS signer, directory and nonce logic) whose `request(url, method, opts)` method is the
 * one call into that axios instance. The adapter replaces that method on the clients it creates
 * and nowhere else: requests then go through this adapter's transport (its own agent, CA bundle,
 * deadline), nonce pool and directory cache, with the AbortSignal of the operation that made
 * the client. acme-client's module-level axios is never touched, so another user of acme-client
 * in the same process (or another adapter, with another CA) is unaffected.
 *
 * A Client is made per attempt of an operation (cheap: two small objects; the directory comes
 * from the adapter's cache), which is how the caller's signal reaches every request explicitly.
 * `http` is not part of acme-client's typings; `clientFor` checks it is there and fails loudly
 * if a future version moves it, and test/acme/adapter-pebble.test.ts proves nothing reaches the
 * module-level axios.
 */

export type AcmeClientInstance = AcmeClient.Client;

export interface AcmeRequestStats {
  total: number;
  /** Keyed by "METHOD /path". */
  byEndpoint: Record<string, number>;
}

export interface AcmeAccountKey {
  keyPem: string;
  /** The account URL (kid), once registered. */
  url?: string;
}

export interface AcmeAdapterOptions {
  directoryUrl: string;
  account: AcmeAccountKey;
  eab?: AcmeSettings['eab'];
  transport: AcmeTransport;
  log: Logger;
  /** acme-client itself, loaded by the caller (lazily: runs that order nothing never load it). */
  acme: AcmeModule;
  /** Attempts per operation (default MAX_ATTEMPTS of the retry policy). */
  maxAttempts?: number;
}

/**
 * Status polling (challenge, authorization, order). acme-client's default starts at 5 s, which
 * alone would cost seconds per order against a fast CA; start small and back off to 4 s.
 */
export const POLL = { minMs: 250, maxMs: 4_000, attempts: 40 };
/** acme-client keeps a directory for a day; so does the adapter. */
const DIRECTORY_MAX_AGE_MS = 86_400_000;
const BAD_NONCE = 'urn:ietf:params:acme:error:badNonce';

/** One attempt of one operation: its signal, and the last problem document the CA sent in it. */
interface Attempt {
  signal?: AbortSignal;
  problem?: AcmeProblem;
}

/** The method of acme-client's per-client HttpClient that calls its process-wide axios. */
type RequestFn = (
  url: string,
  method: string,
  opts?: { data?: unknown; headers?: Record<string, string> },
) => Promise<AcmeHttpResponse>;

export class AcmeAdapter {
  readonly stats: AcmeRequestStats = { total: 0, byEndpoint: {} };
  private readonly nonces = new NoncePool();
  private directory: { data: unknown; at: number } | undefined;
  private accountUrl: string | undefined;

  constructor(private opts: AcmeAdapterOptions) {
    this.accountUrl = opts.account.url;
  }

  /** Loads acme-client and reads the CA bundle (once, for this adapter's lifetime). */
  static async open(settings: AcmeSettings, account: AcmeAccountKey, log: Logger): Promise<AcmeAdapter> {
    const acme = loadAcmeClient();
    const transport = await AcmeTransport.create(settings);
    return new AcmeAdapter({
      directoryUrl: settings.directoryUrl,
      account,
      eab: settings.eab,
      transport,
      log,
      acme,
    });
  }

  /** The account URL, once known (stored, or returned by `register`). */
  get account(): string | undefined {
    return this.accountUrl;
  }

  /**
   * Runs one ACME operation: `fn` gets an acme-client Client whose every request carries
   * `signal` and this adapter's deadline, CA trust and nonce pool. Transient failures are
   * retried as whole operations; what finally fails is a typed CertpilotError with the CA's
   * problem type and the real cause.
   */
  run<T>(
    op: string,
    signal: AbortSignal | undefined,
    fn: (client: AcmeClientInstance) => Promise<T>,
    opts: { maxAttempts?: number } = {},
  ): Promise<T> {
    return this.withRetries(op, signal, opts.maxAttempts, (attempt) => fn(this.clientFor(attempt)));
  }

  /** newAccount (RFC 8555 §7.3); remembers and returns the account URL. */
  async register(
    signal: AbortSignal | undefined,
    data: { termsOfServiceAgreed: boolean; contact?: string[] },
  ): Promise<string> {
    this.accountUrl = await this.run('register account', signal, async (client) => {
      await client.createAccount(data);
      return client.getAccountUrl();
    });
    return this.accountUrl;
  }

  /** The DNS-01 TXT value of a challenge (a local computation with the account key). */
  keyAuthorization(challenge: AcmeClient.Authorization['challenges'][number]): Promise<string> {
    return this.clientFor({}).getChallengeKeyAuthorization(challenge);
  }

  createCsr(
    ...args: Parameters<AcmeModule['crypto']['createCsr']>
  ): ReturnType<AcmeModule['crypto']['createCsr']> {
    return this.opts.acme.crypto.createCsr(...args);
  }

  /**
   * Polls `read` until the object is `valid` (acme-client's waitForValidStatus, but its sleeps
   * end when `signal` aborts and each read is one retried operation). Any status other than
   * pending/processing/valid fails with ACME_ORDER_FAILED; callers add the CA's words.
   */
  async waitForValid<T extends { status: string; error?: unknown }>(
    op: string,
    signal: AbortSignal | undefined,
    read: (client: AcmeClientInstance) => Promise<T>,
  ): Promise<T> {
    let delay = POLL.minMs;
    for (let n = 1; ; n++) {
      const item = await this.run(op, signal, read);
      if (item.status === 'valid') return item;
      if (item.status !== 'pending' && item.status !== 'processing') {
        const detail = (item.error as { detail?: unknown } | undefined)?.detail;
        throw new CertpilotError(
          'ACME_ORDER_FAILED',
          `acme: ${op}: status ${item.status}${typeof detail === 'string' ? `: ${detail}` : ''}`,
          { details: { status: item.status } },
        );
      }
      if (n >= POLL.attempts) {
        throw new CertpilotError('ACME_ORDER_FAILED', `acme: ${op}: still ${item.status} after ${n} polls`, {
          retryable: true,
        });
      }
      await sleep(delay, signal, `acme: ${op}`);
      delay = Math.min(delay * 2, POLL.maxMs);
    }
  }

  /** `renewalInfo` and `meta.profiles` of the directory (cached, read through this adapter). */
  async directoryInfo(signal?: AbortSignal): Promise<DirectoryInfo> {
    const doc = await this.withRetries('read directory', signal, undefined, async (attempt) => {
      const res = await this.request(this.opts.directoryUrl, 'get', {}, attempt);
      if (res.status !== 200) throw new Error(`the directory answered HTTP ${res.status}`);
      return res.data;
    });
    return parseDirectoryInfo(doc);
  }

  /** The account object (RFC 8555 §7.3.2: an update with no change returns it). */
  async fetchAccount(signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    return (await this.run('read account', signal, (c) => c.updateAccount({}))) as unknown as Record<
      string,
      unknown
    >;
  }

  /**
   * Whether the CA knows an account for `keyPem` (newAccount with onlyReturnExisting, RFC 8555
   * §7.3.1): its URL, or undefined on accountDoesNotExist. Used to learn which key is live after
   * a key change was interrupted.
   */
  async findAccount(keyPem: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    try {
      return await this.withRetries('find account', signal, undefined, async (attempt) => {
        const client = this.clientFor(attempt, { keyPem });
        await client.createAccount({ onlyReturnExisting: true });
        return client.getAccountUrl();
      });
    } catch (err) {
      if (
        err instanceof CertpilotError &&
        String(err.details.problemType ?? '').endsWith(':accountDoesNotExist')
      )
        return undefined;
      throw err;
    }
  }

  /**
   * RFC 8555 §7.3.5 key change. acme-client's updateAccountKey builds a second HTTP client that
   * would send through its process-wide axios (no CA bundle, no deadline); here the inner JWS is
   * signed by a second client whose request method is this adapter's too, and the outer request
   * goes through the account's client. On success this adapter signs with the new key.
   */
  async changeKey(newKeyPem: string, signal: AbortSignal | undefined): Promise<void> {
    const accountUrl = this.accountUrl;
    if (!accountUrl)
      throw new CertpilotError('ACME_PROBLEM', 'acme: key change: the account is not registered');
    await this.run('change account key', signal, async (client) => {
      const inner = this.clientFor({ signal }, { keyPem: newKeyPem, url: accountUrl }) as unknown as {
        http: {
          getResourceUrl(r: string): Promise<string>;
          createSignedBody(u: string, p: unknown): unknown;
        };
      };
      const outer = client as unknown as {
        http: { getJwk(): unknown };
        api: { updateAccountKey(body: unknown): Promise<unknown> };
      };
      const url = await inner.http.getResourceUrl('keyChange');
      const body = inner.http.createSignedBody(url, { account: accountUrl, oldKey: outer.http.getJwk() });
      await outer.api.updateAccountKey(body);
    });
    this.opts.account = { keyPem: newKeyPem, url: accountUrl };
  }

  /** Deactivates the account (RFC 8555 §7.3.6); it can never order again. */
  async deactivate(signal: AbortSignal | undefined): Promise<void> {
    await this.run('deactivate account', signal, (c) => c.updateAccount({ status: 'deactivated' }));
  }

  /**
   * Revokes a certificate (RFC 8555 §7.6), signed by the account, or by the certificate's own
   * key (`certKeyPem`: a JWK in the header, no account needed).
   */
  async revoke(
    certPem: string,
    reason: number,
    signal: AbortSignal | undefined,
    certKeyPem?: string,
  ): Promise<void> {
    await this.withRetries('revoke certificate', signal, undefined, async (attempt) => {
      const client = certKeyPem ? this.clientFor(attempt, { keyPem: certKeyPem }) : this.clientFor(attempt);
      if (certKeyPem) {
        // Without an account URL acme-client would refuse to sign: sign with a JWK instead.
        type Api = {
          apiResourceRequest(
            r: string,
            d: unknown,
            ok: number[],
            o: { includeJwsKid: boolean },
          ): Promise<unknown>;
          revokeCert(d: unknown): Promise<unknown>;
        };
        const api = (client as unknown as { api: Api }).api;
        api.revokeCert = (data) =>
          api.apiResourceRequest('revokeCert', data, [200], { includeJwsKid: false });
      }
      await client.revokeCertificate(certPem, { reason });
    });
  }

  close(): void {
    this.opts.transport.close();
  }

  // Seam for the shared retry helper: one call, the decision lives in retry-policy.ts.
  private withRetries<T>(
    op: string,
    signal: AbortSignal | undefined,
    maxAttempts: number | undefined,
    fn: (attempt: Attempt) => Promise<T>,
  ): Promise<T> {
    let attempt: Attempt = {};
    return retryAcmeOperation(
      op,
      {
        signal,
        log: this.opts.log,
        maxAttempts: maxAttempts ?? this.opts.maxAttempts,
        classify: (err) => classifyAcmeError(op, err, attempt.problem, this.opts.directoryUrl),
      },
      () => {
        attempt = { signal };
        return fn(attempt);
      },
    );
  }

  /** A client signing with this adapter's account key, or with `as` (another key, its kid if any). */
  private clientFor(attempt: Attempt, as?: AcmeAccountKey): AcmeClientInstance {
    const { eab } = this.opts;
    const client = new this.opts.acme.Client({
      directoryUrl: this.opts.directoryUrl,
      accountKey: as ? as.keyPem : this.opts.account.keyPem,
      accountUrl: as ? as.url : this.accountUrl,
      externalAccountBinding: eab ? { kid: eab.keyId, hmacKey: eab.hmacKey } : undefined,
    });
    const http = (client as unknown as { http?: { request?: RequestFn } }).http;
    if (typeof http?.request !== 'function') {
      throw new CertpilotError(
        'ACME_ORDER_FAILED',
        'acme: this acme-client version has no per-client http.request; certpilot is built for acme-client 5.x',
      );
    }
    http.request = (url, method, o = {}) => this.request(url, method, o, attempt);
    return client;
  }

  private async request(
    url: string,
    method: string,
    o: { data?: unknown; headers?: Record<string, string> },
    attempt: Attempt,
  ): Promise<AcmeHttpResponse> {
    const m = method.toLowerCase();
    // acme-client uses HEAD only for newNonce: answer it from the pool without a round trip.
    const pooled = m === 'head' ? this.nonces.take(url) : undefined;
    if (pooled) return { status: 200, headers: { 'replay-nonce': pooled }, data: '' };
    const isDirectory = m === 'get' && url === this.opts.directoryUrl;
    if (isDirectory && this.directory && Date.now() - this.directory.at < DIRECTORY_MAX_AGE_MS) {
      return { status: 200, headers: {}, data: this.directory.data };
    }
    this.count(m, url);
    // What acme-client's own request() added before handing over to axios (RFC 8555 §6.2).
    const headers =
      o.data === undefined ? o.headers : { ...o.headers, 'content-type': 'application/jose+json' };
    const res = await this.opts.transport.send({ url, method: m, headers, body: o.data }, attempt.signal);
    if (res.status >= 400) attempt.problem = toProblem(res, url);
    // Keep the nonce for a later request, unless acme-client itself is about to use it: the
    // HEAD's own nonce and a badNonce error's nonce are consumed by the caller.
    const badNonce = (res.data as { type?: unknown } | null)?.type === BAD_NONCE;
    if (m !== 'head' && !badNonce) this.nonces.keep(url, res.headers['replay-nonce']);
    if (isDirectory && res.status === 200 && typeof res.data === 'object') {
      this.directory = { data: res.data, at: Date.now() };
    }
    return res;
  }

  private count(method: string, url: string): void {
    this.stats.total++;
    const key = `${method.toUpperCase()} ${endpointPath(url)}`;
    this.stats.byEndpoint[key] = (this.stats.byEndpoint[key] ?? 0) + 1;
  }
}

/** The path with ids collapsed, so stats group by endpoint kind. */
function endpointPath(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/[A-Za-z0-9_-]{12,}/g, '/:id');
  } catch {
    return url;
  }
}
