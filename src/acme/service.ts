import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type * as AcmeClient from 'acme-client';
import { withDeadline } from '../core/abort';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AcmeSettings } from '../config/types';
import type { Dns01Challenge, Dns01Solver, PresentedRecord } from '../dns/solver';
import { generatePrivateKey, splitPemChain } from '../x509';
import { checkpoint } from '../core/checkpoints';
import type { ChallengeJournal } from '../store/journal';
import type { CertificateFiles } from '../store/cert-store';
import { readAccount, writeAccountKey, writeAccountMeta } from './account';
import { callAcme, installAcmeHttpPolicy, type AcmeRequestStats, type CallOptions } from './http';
import { parseDirectoryInfo, type DirectoryInfo } from './ari';
import { checkProfile } from './profiles';

type AcmeModule = typeof AcmeClient;
type Order = AcmeClient.Order;
type Authorization = AcmeClient.Authorization;

/** Removing TXT values gets its own deadline: the usual reason to clean up is that the main work was cancelled. */
export const CLEANUP_TIMEOUT_MS = 60_000;
/** Deactivating pending authorizations after a failure is best effort and short. */
export const DEACTIVATE_TIMEOUT_MS = 15_000;
/**
 * Status polling (challenge, authorization, order). acme-client's default starts at 5 s, which
 * alone would cost seconds per order against a fast CA; start small and back off to 4 s.
 */
const POLL = { backoffMin: 250, backoffMax: 4_000, backoffAttempts: 40 };
/** The CN is limited to 64 characters (RFC 5280 ub-common-name); longer first names go in the SAN only. */
const MAX_CN_LENGTH = 64;

export interface IssueRequest {
  /** Certificate name (for logs). */
  name: string;
  domains: readonly string[];
  /** PEM private key of the certificate (fresh or reused). */
  keyPem: string;
  /** DNS provider instance name for each domain (as configured, wildcards included). */
  providerFor(domain: string): string;
  solver: Dns01Solver;
  signal: AbortSignal;
  /**
   * ARI certificate id (src/acme/ari.ts ariCertId) of the certificate this order replaces
   * (RFC 9773 §5). Send it only when the directory has `renewalInfo`; Let's Encrypt exempts
   * such renewals from its rate limits.
   */
  replaces?: string;
  /** ACME profile to order (must be in the directory's meta.profiles; checked before ordering). */
  profile?: string;
  /** Crash journal of challenge records (written before each DNS write, cleared after cleanup). */
  journal?: ChallengeJournal;
}

/** RFC 9773 §5: the CA refuses `replaces` naming a certificate that was already replaced. */
const ALREADY_REPLACED = 'urn:ietf:params:acme:error:alreadyReplaced';

export interface IssueResult extends CertificateFiles {
  orderUrl: string;
}

/**
 * One ACME account on one directory, and the order flow driven step by step (never
 * acme-client's `auto()`, which solves all authorizations at once and loses values when apex
 * and wildcard share a name).
 */
export class AcmeService {
  readonly stats: AcmeRequestStats = { total: 0, byEndpoint: {} };
  private registering: Promise<string> | undefined;

  private constructor(
    private readonly acme: AcmeModule,
    private readonly client: AcmeClient.Client,
    private readonly settings: AcmeSettings,
    private readonly stateDir: string,
    private readonly agent: https.Agent | undefined,
    private readonly log: Logger,
    private accountUrl: string | undefined,
    private readonly keyPem: string,
  ) {}

  static async open(settings: AcmeSettings, stateDir: string, log: Logger): Promise<AcmeService> {
    // acme-client (and axios) load only when an order is really needed: `--help`, `config check`
    // and no-op renew runs stay fast.
    const acme = (await import('acme-client')) as AcmeModule;
    installAcmeHttpPolicy(acme.axios as never, settings.requestTimeoutMs);
    const agent = settings.caBundle
      ? new https.Agent({
          ca: [...(await readFile(settings.caBundle, 'utf8').then(splitPemChain))],
          keepAlive: true,
        })
      : new https.Agent({ keepAlive: true });

    let account = await readAccount(stateDir, settings.directoryUrl);
    if (!account) {
      const keyPem = await generatePrivateKey('ec-p256');
      // Persist the key before registering: if we crash after newAccount, the next run
      // re-registers with the same key and gets the same account back.
      await writeAccountKey(stateDir, settings.directoryUrl, keyPem);
      account = { directoryUrl: settings.directoryUrl, keyPem };
      log.info('acme account key created', { directory: settings.directoryUrl });
    }
    const client = new acme.Client({
      directoryUrl: settings.directoryUrl,
      accountKey: account.keyPem,
      accountUrl: account.url,
      externalAccountBinding: settings.eab
        ? { kid: settings.eab.keyId, hmacKey: settings.eab.hmacKey }
        : undefined,
      ...POLL,
    });
    return new AcmeService(acme, client, settings, stateDir, agent, log, account.url, account.keyPem);
  }

  private callOpts(signal: AbortSignal | undefined): CallOptions {
    return {
      signal,
      timeoutMs: this.settings.requestTimeoutMs,
      httpsAgent: this.agent,
      stats: this.stats,
      log: this.log,
    };
  }

  /** Registers the account once per directory; later runs reuse the stored URL. */
  async ensureAccount(signal: AbortSignal): Promise<string> {
    if (this.accountUrl) return this.accountUrl;
    // Orders run concurrently: register once and let the others wait for it.
    this.registering ??= this.register(signal).finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async register(signal: AbortSignal): Promise<string> {
    if (!this.settings.termsAgreed) {
      throw new CertpilotError(
        'ACME_PROBLEM',
        `acme: the CA's terms of service must be accepted before registering: set acme.termsAgreed: true`,
      );
    }
    await callAcme('register account', this.callOpts(signal), () =>
      this.client.createAccount({
        termsOfServiceAgreed: true,
        contact: this.settings.email ? [`mailto:${this.settings.email}`] : undefined,
      }),
    );
    this.accountUrl = this.client.getAccountUrl();
    await writeAccountMeta(this.stateDir, {
      directoryUrl: this.settings.directoryUrl,
      url: this.accountUrl,
      keyPem: this.keyPem,
      createdAt: new Date().toISOString(),
    });
    this.log.info('acme account registered', {
      directory: this.settings.directoryUrl,
      account: this.accountUrl,
    });
    return this.accountUrl;
  }

  async issue(req: IssueRequest): Promise<IssueResult> {
    const log = this.log.child({ cert: req.name });
    const { signal } = req;
    // Before contacting the CA at all: every name must be writable where the CA will look
    // (CNAME delegation followed, a provider allowed to write the target zone).
    await req.solver.preflight(
      req.domains.map((d) => ({ domain: d.replace(/^\*\./, ''), provider: req.providerFor(d) })),
      signal,
    );
    await this.ensureAccount(signal);
    const opts = this.callOpts(signal);

    const profile = req.profile
      ? checkProfile(req.profile, await this.directoryInfo(signal), this.settings.directoryUrl)
      : undefined;
    const newOrder = (replaces: string | undefined): Promise<Order> =>
      callAcme('new order', opts, () =>
        // acme-client passes the payload through unchanged; its types know neither field.
        this.client.createOrder({
          identifiers: req.domains.map((d) => ({ type: 'dns', value: d })),
          ...(replaces ? { replaces } : {}),
          ...(profile ? { profile } : {}),
        } as Parameters<AcmeClient.Client['createOrder']>[0]),
      );
    let order: Order;
    let replaced = req.replaces;
    try {
      order = await newOrder(req.replaces);
    } catch (err) {
      // The old certificate was already replaced (another client, or our own order whose result
      // was lost): order anyway, without the claim, rather than leave the certificate to expire.
      if (!req.replaces || (err as CertpilotError).details?.problemType !== ALREADY_REPLACED) throw err;
      log.warn('CA says the certificate was already replaced; ordering without replaces', {
        replaces: req.replaces,
      });
      replaced = undefined;
      order = await newOrder(undefined);
    }
    log.info('order created', {
      order: order.url,
      names: req.domains,
      ...(replaced ? { replaces: replaced } : {}),
      ...(profile ? { profile } : {}),
    });

    const presented: PresentedRecord[] = [];
    let authorizations: Authorization[] = [];
    let succeeded = false;
    try {
      authorizations = await callAcme('get authorizations', opts, () => this.client.getAuthorizations(order));
      const pending = authorizations.filter((a) => a.status !== 'valid');
      if (pending.length < authorizations.length) {
        log.info('authorizations already valid', { valid: authorizations.length - pending.length });
      }

      // Collect every value first, so values sharing `_acme-challenge.<name>` (apex + wildcard)
      // are written together and checked together.
      const work: {
        authz: Authorization;
        challenge: Authorization['challenges'][number];
        solve: Dns01Challenge;
      }[] = [];
      for (const authz of pending) {
        if (authz.status !== 'pending') {
          throw new CertpilotError(
            'ACME_CHALLENGE_FAILED',
            `acme: authorization for ${authz.identifier.value} is ${authz.status}, cannot solve it`,
          );
        }
        const challenge = authz.challenges.find((c) => c.type === 'dns-01');
        if (!challenge) {
          throw new CertpilotError(
            'ACME_CHALLENGE_FAILED',
            `acme: the CA offers no dns-01 challenge for ${authz.identifier.value}`,
          );
        }
        const value = await this.client.getChallengeKeyAuthorization(challenge);
        const configured = authz.wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
        work.push({
          authz,
          challenge,
          solve: { domain: authz.identifier.value, value, provider: req.providerFor(configured) },
        });
      }

      if (work.length > 0) {
        await req.solver.present(
          work.map((w) => w.solve),
          signal,
          (recs) => presented.push(...recs),
          req.journal ? (recs) => req.journal!.add(req.name, recs) : undefined,
        );
        checkpoint('after-txt-written');
        log.info('challenge records visible on every nameserver', { records: work.length });
        await Promise.all(
          work.map(async (w) => {
            await callAcme('answer challenge', opts, () => this.client.completeChallenge(w.challenge));
            checkpoint('after-challenge-answered');
            await callAcme('wait for authorization', opts, () =>
              this.client.waitForValidStatus(w.authz),
            ).catch(async (err: unknown) => {
              throw new CertpilotError(
                'ACME_CHALLENGE_FAILED',
                `acme: validation of ${w.authz.identifier.value} failed: ${await this.challengeError(w.authz, err)}`,
                { cause: err },
              );
            });
          }),
        );
      }

      const [commonName, ...rest] = req.domains;
      // createCsr mutates the arrays it is given: hand it copies.
      const csrInput =
        commonName && commonName.length <= MAX_CN_LENGTH
          ? { commonName, altNames: [...rest] }
          : { altNames: [...req.domains] };
      const [, csr] = await this.acme.crypto.createCsr(csrInput, req.keyPem);
      let finalized: Order = await callAcme('finalize', opts, () => this.client.finalizeOrder(order, csr));
      checkpoint('after-finalize');
      if (finalized.status !== 'valid') {
        finalized = await callAcme('wait for certificate', opts, () =>
          this.client.waitForValidStatus(finalized),
        );
      }
      const pem = await callAcme('download certificate', opts, () => this.client.getCertificate(finalized));
      const blocks = splitPemChain(pem);
      if (blocks.length === 0)
        throw new CertpilotError('ACME_ORDER_FAILED', 'acme: the CA returned no certificate');
      succeeded = true;
      log.info('certificate issued', { order: order.url });
      return {
        orderUrl: order.url,
        cert: blocks[0]!,
        chain: blocks.slice(1).join(''),
        fullchain: blocks.join(''),
        key: req.keyPem,
      };
    } finally {
      if (!succeeded) await this.deactivatePending(authorizations, log);
      if (presented.length > 0) {
        const cleanupSignal = withDeadline(undefined, CLEANUP_TIMEOUT_MS);
        await req.solver.cleanup(presented, cleanupSignal).then(
          // The solver logs what it removed.
          async () => await req.journal?.clear(req.name),
          (err: unknown) => log.error('challenge record cleanup failed', { error: describeError(err) }),
        );
      }
    }
  }

  /**
   * The CA's own words for a failed validation (the challenge's error object), rather than
   * acme-client's message, which is the whole authorization as JSON.
   */
  private async challengeError(authz: Authorization, err: unknown): Promise<string> {
    const signal = withDeadline(undefined, DEACTIVATE_TIMEOUT_MS);
    const [current] = await callAcme('read authorization', { ...this.callOpts(signal), maxAttempts: 1 }, () =>
      this.client.getAuthorizations({ authorizations: [authz.url] } as unknown as Order),
    ).catch(() => [undefined]);
    const failed = current?.challenges.find((c) => c.type === 'dns-01' && c.error);
    const problem = failed?.error as { type?: string; detail?: string } | undefined;
    if (!problem) return describeError(err);
    const type = problem.type?.replace('urn:ietf:params:acme:error:', '') ?? 'error';
    return `${type}: ${problem.detail ?? 'no detail'} (status ${current?.status ?? 'unknown'})`;
  }

  /** RFC 8555 §7.5.2: give up pending authorizations so they do not linger. Best effort. */
  private async deactivatePending(authorizations: readonly Authorization[], log: Logger): Promise<void> {
    const signal = withDeadline(undefined, DEACTIVATE_TIMEOUT_MS);
    const opts = { ...this.callOpts(signal), maxAttempts: 1 };
    await Promise.all(
      authorizations.map(async (authz) => {
        const current = await callAcme('read authorization', opts, () =>
          this.client.getAuthorizations({ authorizations: [authz.url] } as unknown as Order),
        ).catch(() => [authz]);
        if (current[0]?.status !== 'pending') return;
        await callAcme('deactivate authorization', opts, () =>
          this.client.deactivateAuthorization(authz),
        ).then(
          () => log.info('authorization deactivated', { name: authz.identifier.value }),
          (err: unknown) =>
            log.warn('could not deactivate authorization', {
              name: authz.identifier.value,
              error: describeError(err),
            }),
        );
      }),
    );
  }

  /**
   * `renewalInfo` and `meta.profiles` of the directory, from acme-client's cached copy (read
   * through our HTTP policy: deadline, CA bundle, typed errors). acme-client exposes no accessor,
   * so its internal `api.http.getDirectory()` is used; if a future version moves it, the
   * directory is fetched with a plain GET instead.
   */
  async directoryInfo(signal?: AbortSignal): Promise<DirectoryInfo> {
    const internal = (
      this.client as unknown as { api?: { http?: { getDirectory?: () => Promise<unknown> } } }
    ).api?.http;
    const dir = await callAcme('read directory', this.callOpts(signal), async () =>
      internal?.getDirectory
        ? internal.getDirectory()
        : (await this.acme.axios.get(this.settings.directoryUrl)).data,
    );
    return parseDirectoryInfo(dir);
  }

  close(): void {
    this.agent?.destroy();
  }
}
