import type * as AcmeClient from 'acme-client';
import { withDeadline } from '../core/abort';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { AcmeSettings, ProfileMode } from '../config/types';
import type { Dns01Challenge, Dns01Solver, PresentedRecord } from '../dns/solver';
import { generatePrivateKey, parseCertificate, splitPemChain } from '../x509';
import { checkpoint } from '../core/checkpoints';
import type { ChallengeJournal } from '../store/journal';
import type { CertificateFiles } from '../store/cert-store';
import {
  discardNextAccountKey,
  promoteNextAccountKey,
  readAccount,
  readNextAccountKey,
  retireAccount,
  writeAccountKey,
  writeAccountMeta,
  writeNextAccountKey,
} from './account';
import { AcmeAdapter, type AcmeRequestStats } from './adapter';
import type { DirectoryInfo } from './ari';
import { chooseProfile, type ProfileChoice } from './profiles';

type Order = AcmeClient.Order;
type Authorization = AcmeClient.Authorization;

/** Removing TXT values gets its own deadline: the usual reason to clean up is that the main work was cancelled. */
export const CLEANUP_TIMEOUT_MS = 60_000;
/** Deactivating pending authorizations after a failure is best effort and short. */
export const DEACTIVATE_TIMEOUT_MS = 15_000;
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
  /** ACME profile to order (checked against the directory's meta.profiles before ordering). */
  profile?: string;
  /** `required` (default): fail when the CA does not offer `profile`; `preferred`: order without it. */
  profileMode?: ProfileMode;
  /** Crash journal of challenge records (written before each DNS write, cleared after cleanup). */
  journal?: ChallengeJournal;
}

/** RFC 9773 §5: the CA refuses `replaces` naming a certificate that was already replaced. */
const ALREADY_REPLACED = 'urn:ietf:params:acme:error:alreadyReplaced';

export interface IssueResult extends CertificateFiles, ProfileChoice {
  orderUrl: string;
}

/** One DNS-01 challenge to solve: its authorization, the challenge, and the TXT value. */
interface ChallengeWork {
  authz: Authorization;
  challenge: Authorization['challenges'][number];
  solve: Dns01Challenge;
}

/**
 * One ACME account on one directory, and the order flow driven step by step (never
 * acme-client's `auto()`, which solves all authorizations at once and loses values when apex
 * and wildcard share a name). Every request goes through the service's own AcmeAdapter.
 */
export class AcmeService {
  private registering: Promise<string> | undefined;
  /** Preferred profiles this CA lacked, already warned about: one warning per run, not per order. */
  private readonly profilesWarned = new Set<string>();

  private constructor(
    private readonly adapter: AcmeAdapter,
    private readonly settings: AcmeSettings,
    private readonly stateDir: string,
    private readonly log: Logger,
    private readonly accountKeyPem: string,
  ) {}

  static async open(settings: AcmeSettings, stateDir: string, log: Logger): Promise<AcmeService> {
    let account = await readAccount(stateDir, settings.directoryUrl);
    if (!account) {
      const keyPem = await generatePrivateKey('ec-p256');
      // Persist the key before registering: if we crash after newAccount, the next run
      // re-registers with the same key and gets the same account back.
      await writeAccountKey(stateDir, settings.directoryUrl, keyPem);
      account = { directoryUrl: settings.directoryUrl, keyPem };
      log.info('acme account key created', { directory: settings.directoryUrl });
    }
    // acme-client loads here, only when an order is really needed: `--help`, `config check`
    // and no-op renew runs stay fast.
    const adapter = await AcmeAdapter.open(settings, account, log);
    const service = new AcmeService(adapter, settings, stateDir, log, account.keyPem);
    const next = await readNextAccountKey(stateDir, settings.directoryUrl);
    return next === null ? service : service.settleKeyChange(next);
  }

  /**
   * A key change was interrupted (account.key.next is on disk): the CA knows exactly one of the
   * two keys. Ask it about the new one; keep whichever it knows.
   */
  private async settleKeyChange(nextKeyPem: string): Promise<AcmeService> {
    const url = await this.adapter.findAccount(nextKeyPem, undefined);
    if (url === undefined) {
      await discardNextAccountKey(this.stateDir, this.settings.directoryUrl);
      this.log.warn('an interrupted account key change never reached the CA; the old key stays', {
        directory: this.settings.directoryUrl,
      });
      return this;
    }
    await promoteNextAccountKey(this.stateDir, this.settings.directoryUrl);
    this.log.warn('an interrupted account key change had reached the CA; the new key is now in use', {
      directory: this.settings.directoryUrl,
    });
    this.adapter.close();
    return AcmeService.open(this.settings, this.stateDir, this.log);
  }

  /** The account as the CA has it (status, contact, URL), registering nothing. */
  async accountDetails(signal: AbortSignal): Promise<{ url: string; account: Record<string, unknown> }> {
    const url = this.adapter.account;
    if (!url) {
      throw new CertpilotError(
        'ACME_PROBLEM',
        `acme: no account registered for ${this.settings.directoryUrl} yet`,
      );
    }
    return { url, account: await this.adapter.fetchAccount(signal) };
  }

  /** RFC 8555 §7.3.5 key change, crash-safe (see writeNextAccountKey). */
  async rolloverKey(signal: AbortSignal): Promise<void> {
    if (!this.adapter.account) {
      throw new CertpilotError(
        'ACME_PROBLEM',
        `acme: no account registered for ${this.settings.directoryUrl} yet`,
      );
    }
    const keyPem = await generatePrivateKey('ec-p256');
    await writeNextAccountKey(this.stateDir, this.settings.directoryUrl, keyPem);
    checkpoint('account-key-written');
    await this.adapter.changeKey(keyPem, signal);
    checkpoint('account-key-changed');
    await promoteNextAccountKey(this.stateDir, this.settings.directoryUrl);
    this.log.info('account key changed', {
      directory: this.settings.directoryUrl,
      account: this.adapter.account,
    });
  }

  /** Deactivates the account at the CA and moves its directory aside; returns where. */
  async deactivateAccount(signal: AbortSignal, now: Date): Promise<string> {
    if (!this.adapter.account) {
      throw new CertpilotError(
        'ACME_PROBLEM',
        `acme: no account registered for ${this.settings.directoryUrl} yet`,
      );
    }
    await this.adapter.deactivate(signal);
    return retireAccount(this.stateDir, this.settings.directoryUrl, now);
  }

  /** Revokes `certPem` with the account key, or with the certificate's own key. */
  async revoke(certPem: string, reason: number, signal: AbortSignal, certKeyPem?: string): Promise<void> {
    await this.adapter.revoke(certPem, reason, signal, certKeyPem);
  }

  /** Requests this service sent to the CA, total and by endpoint. */
  get stats(): AcmeRequestStats {
    return this.adapter.stats;
  }

  /** Registers the account once per directory; later runs reuse the stored URL. */
  async ensureAccount(signal: AbortSignal): Promise<string> {
    if (this.adapter.account) return this.adapter.account;
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
    const url = await this.adapter
      .register(signal, {
        termsOfServiceAgreed: true,
        contact: this.settings.email ? [`mailto:${this.settings.email}`] : undefined,
      })
      .catch((err: unknown) => {
        throw withEabHint(err, this.settings.eab !== undefined);
      });
    await writeAccountMeta(this.stateDir, {
      directoryUrl: this.settings.directoryUrl,
      url,
      keyPem: this.accountKeyPem,
      createdAt: new Date().toISOString(),
    });
    this.log.info('acme account registered', { directory: this.settings.directoryUrl, account: url });
    return url;
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
    const { order, choice } = await this.placeOrder(req, log);

    const presented: PresentedRecord[] = [];
    let authorizations: Authorization[] = [];
    let succeeded = false;
    try {
      authorizations = await this.adapter.run('get authorizations', signal, (c) =>
        c.getAuthorizations(order),
      );
      await this.solve(req, authorizations, presented, log);
      const result = { ...(await this.finalize(req, order)), ...choice };
      succeeded = true;
      log.info('certificate issued', { order: order.url });
      return result;
    } finally {
      if (!succeeded) await this.deactivatePending(authorizations, log);
      if (presented.length > 0) await this.cleanup(req, presented, log);
    }
  }

  /** newOrder, with `replaces` and `profile` when asked for (RFC 9773 §5, ACME profiles). */
  private async placeOrder(req: IssueRequest, log: Logger): Promise<{ order: Order; choice: ProfileChoice }> {
    const choice = req.profile ? await this.chooseProfile(req) : {};
    const profile = choice.profile;
    const newOrder = (replaces: string | undefined): Promise<Order> =>
      this.adapter.run('new order', req.signal, (c) =>
        // acme-client passes the payload through unchanged; its types know neither field.
        c.createOrder({
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
    return { order, choice };
  }

  /** The profile for newOrder (throws for a required one the CA lacks; see chooseProfile). */
  private async chooseProfile(req: IssueRequest): Promise<ProfileChoice> {
    const url = this.settings.directoryUrl;
    const choice = chooseProfile(req.profile, req.profileMode, await this.directoryInfo(req.signal), url);
    if (choice.unavailable !== undefined && !this.profilesWarned.has(choice.unavailable)) {
      this.profilesWarned.add(choice.unavailable);
      this.log.warn('preferred ACME profile not offered by the CA; ordering without a profile', {
        profile: choice.unavailable,
        directory: url,
      });
    }
    return choice;
  }

  /** Writes every TXT value, waits until visible, answers the challenges, waits for validation. */
  private async solve(
    req: IssueRequest,
    authorizations: readonly Authorization[],
    presented: PresentedRecord[],
    log: Logger,
  ): Promise<void> {
    const pending = authorizations.filter((a) => a.status !== 'valid');
    if (pending.length < authorizations.length) {
      log.info('authorizations already valid', { valid: authorizations.length - pending.length });
    }
    // Collect every value first, so values sharing `_acme-challenge.<name>` (apex + wildcard)
    // are written together and checked together.
    const work: ChallengeWork[] = [];
    for (const authz of pending) work.push(await this.challengeWork(req, authz));
    if (work.length === 0) return;

    let journaled = false;
    await req.solver
      .present(
        work.map((w) => w.solve),
        req.signal,
        (recs) => presented.push(...recs),
        req.journal
          ? async (recs) => {
              journaled = true;
              await req.journal!.add(req.name, recs);
            }
          : undefined,
      )
      .catch(async (err: unknown) => {
        // Every write was refused by the server: nothing is in DNS, so the intent the journal
        // holds is void (else the next run would "recover" records nobody wrote).
        if (journaled && presented.length === 0) await req.journal?.clear(req.name);
        throw err;
      });
    checkpoint('after-txt-written');
    log.info('challenge records visible on every nameserver', { records: work.length });
    await Promise.all(work.map((w) => this.answer(w, req.signal)));
  }

  private async challengeWork(req: IssueRequest, authz: Authorization): Promise<ChallengeWork> {
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
    const value = await this.adapter.keyAuthorization(challenge);
    const configured = authz.wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
    return {
      authz,
      challenge,
      solve: { domain: authz.identifier.value, value, provider: req.providerFor(configured) },
    };
  }

  private async answer(w: ChallengeWork, signal: AbortSignal): Promise<void> {
    await this.adapter.run('answer challenge', signal, (c) => c.completeChallenge(w.challenge));
    checkpoint('after-challenge-answered');
    await this.adapter
      .waitForValid(
        'wait for authorization',
        signal,
        async (c) => (await c.getAuthorizations(byUrl(w.authz)))[0]!,
      )
      .catch(async (err: unknown) => {
        if ((err as CertpilotError).code === 'ABORTED' || (err as CertpilotError).code === 'TIMEOUT')
          throw err;
        throw new CertpilotError(
          'ACME_CHALLENGE_FAILED',
          `acme: validation of ${w.authz.identifier.value} failed: ${await this.challengeError(w.authz, err)}`,
          { cause: err },
        );
      });
  }

  /** CSR, finalize, wait for the certificate, download it. */
  private async finalize(req: IssueRequest, order: Order): Promise<IssueResult> {
    const { signal } = req;
    const [commonName, ...rest] = req.domains;
    // createCsr mutates the arrays it is given: hand it copies.
    const csrInput =
      commonName && commonName.length <= MAX_CN_LENGTH
        ? { commonName, altNames: [...rest] }
        : { altNames: [...req.domains] };
    const [, csr] = await this.adapter.createCsr(csrInput, req.keyPem);
    let finalized: Order = await this.adapter.run('finalize', signal, (c) => c.finalizeOrder(order, csr));
    checkpoint('after-finalize');
    if (finalized.status !== 'valid') {
      const processing = finalized;
      finalized = await this.adapter.waitForValid('wait for certificate', signal, (c) =>
        c.getOrder(processing),
      );
    }
    const done = finalized;
    const preferred = this.settings.preferredChain;
    const pem = await this.adapter.run('download certificate', signal, (c) =>
      c.getCertificate(done, preferred),
    );
    const blocks = splitPemChain(pem);
    if (preferred && !chainHasIssuer(blocks, preferred)) {
      // acme-client falls back to the default chain: say so, or the operator believes the
      // preference took effect.
      this.log.warn('no chain from the CA has the preferred issuer; using its default chain', {
        cert: req.name,
        preferredChain: preferred,
      });
    }
    if (blocks.length === 0)
      throw new CertpilotError('ACME_ORDER_FAILED', 'acme: the CA returned no certificate');
    return {
      orderUrl: order.url,
      cert: blocks[0]!,
      chain: blocks.slice(1).join(''),
      fullchain: blocks.join(''),
      key: req.keyPem,
    };
  }

  private async cleanup(req: IssueRequest, presented: PresentedRecord[], log: Logger): Promise<void> {
    const cleanupSignal = withDeadline(undefined, CLEANUP_TIMEOUT_MS);
    await req.solver.cleanup(presented, cleanupSignal).then(
      // The solver logs what it removed.
      async () => await req.journal?.clear(req.name),
      (err: unknown) => log.error('challenge record cleanup failed', { error: describeError(err) }),
    );
  }

  /**
   * The CA's own words for a failed validation (the challenge's error object), rather than
   * acme-client's message, which is the whole authorization as JSON.
   */
  private async challengeError(authz: Authorization, err: unknown): Promise<string> {
    const signal = withDeadline(undefined, DEACTIVATE_TIMEOUT_MS);
    const [current] = await this.adapter
      .run('read authorization', signal, (c) => c.getAuthorizations(byUrl(authz)), { maxAttempts: 1 })
      .catch(() => [undefined]);
    const failed = current?.challenges.find((c) => c.type === 'dns-01' && c.error);
    const problem = failed?.error as { type?: string; detail?: string } | undefined;
    if (!problem) return describeError(err);
    const type = problem.type?.replace('urn:ietf:params:acme:error:', '') ?? 'error';
    return `${type}: ${problem.detail ?? 'no detail'} (status ${current?.status ?? 'unknown'})`;
  }

  /** RFC 8555 §7.5.2: give up pending authorizations so they do not linger. Best effort. */
  private async deactivatePending(authorizations: readonly Authorization[], log: Logger): Promise<void> {
    const signal = withDeadline(undefined, DEACTIVATE_TIMEOUT_MS);
    const once = { maxAttempts: 1 };
    await Promise.all(
      authorizations.map(async (authz) => {
        const current = await this.adapter
          .run('read authorization', signal, (c) => c.getAuthorizations(byUrl(authz)), once)
          .catch(() => [authz]);
        if (current[0]?.status !== 'pending') return;
        await this.adapter
          .run('deactivate authorization', signal, (c) => c.deactivateAuthorization(authz), once)
          .then(
            () => log.info('authorization deactivated', { name: authzName(authz) }),
            (err: unknown) =>
              log.warn('could not deactivate authorization', {
                name: authzName(authz),
                error: describeError(err),
              }),
          );
      }),
    );
  }

  /** `renewalInfo` and `meta.profiles` of the directory, through the adapter (cached, CA bundle, deadline). */
  directoryInfo(signal?: AbortSignal): Promise<DirectoryInfo> {
    return this.adapter.directoryInfo(signal);
  }

  close(): void {
    this.adapter.close();
  }
}

/** The name as configured: a wildcard's authorization is for the base name with `wildcard: true`. */
function authzName(authz: Authorization): string {
  return authz.wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
}

/** acme-client reads one authorization through getAuthorizations of an order-shaped object. */
function byUrl(authz: Authorization): Order {
  return { authorizations: [authz.url] } as unknown as Order;
}

/**
 * A refused newAccount at a CA that binds accounts to an external one (ZeroSSL, Google, most
 * commercial CAs) says "externalAccountRequired" or, with a wrong key, "unauthorized" or
 * "malformed": the error names the setting to fix, since the CA's text does not.
 */
function withEabHint(err: unknown, eabGiven: boolean): unknown {
  if (!(err instanceof CertpilotError) || err.code !== 'ACME_PROBLEM') return err;
  const type = String(err.details.problemType ?? '');
  const hint = type.endsWith(':externalAccountRequired')
    ? 'this CA requires External Account Binding: set acme.eab.keyId and acme.eab.hmacKey (or hmacKey_file) from your account at the CA'
    : eabGiven && /:(unauthorized|malformed|badSignatureAlgorithm)$/.test(type)
      ? "the CA refused the External Account Binding: check acme.eab.keyId and acme.eab.hmacKey (the CA's key id and its base64url HMAC key, not yet used for another account)"
      : undefined;
  if (!hint) return err;
  return new CertpilotError(err.code, `${err.message}; ${hint}`, {
    ...(err.cause === undefined ? {} : { cause: err.cause }),
    retryable: false,
    details: err.details,
  });
}

/** True when some certificate of the chain was issued by a CA whose common name is `cn`. */
function chainHasIssuer(blocks: readonly string[], cn: string): boolean {
  return blocks.some((pem) => {
    const issuer = parseCertificate(pem).issuer;
    return issuer.split(', ').some((rdn) => rdn === `CN=${cn}`);
  });
}
