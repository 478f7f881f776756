import { redactText } from './redact';

/**
 * Typed errors. Every error certpilot raises on purpose is a CertpilotError with a stable
 * `code` (for scripts and tests), a `retryable` hint (for the scheduler) and the original
 * `cause`. Messages start with the component that raised them ("rfc2136: ...").
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'DNS_ZONE_NOT_FOUND'
  | 'DNS_UPDATE_FAILED'
  | 'DNS_QUERY_FAILED'
  | 'DNS_PROPAGATION_TIMEOUT'
  | 'DNS_NO_PROVIDER'
  | 'ACME_PROBLEM'
  | 'ACME_NETWORK'
  | 'ACME_RATE_LIMITED'
  | 'ACME_CHALLENGE_FAILED'
  | 'ACME_ORDER_FAILED'
  | 'CAA_FORBIDDEN'
  | 'STORE_IO'
  | 'STORE_KEY_MISMATCH'
  | 'LOCKED'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'X509_PARSE'
  | 'HOOK_FAILED'
  | 'DEPLOY_FAILED'
  | 'VERIFY_FAILED'
  | 'NOTIFY_FAILED';

export interface CertpilotErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** Extra structured facts, safe to log (never secrets). */
  details?: Record<string, unknown>;
}

export class CertpilotError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CertpilotErrorOptions = {}) {
    // Messages often quote what a server or a program said, which can echo a credential:
    // registered secrets are masked before the message exists anywhere.
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CertpilotError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** One problem in user input, with the path of the offending field. */
export interface ConfigIssue {
  /** e.g. `certificates[2].dns.provider` */
  path: string;
  message: string;
}

/** A configuration that cannot be used. Lists every problem at once. */
export class ConfigError extends CertpilotError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], source?: string) {
    const head = source ? `config: ${source} is invalid` : 'config: invalid configuration';
    super('CONFIG_INVALID', `${head}\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Wrong command-line usage. */
export class UsageError extends CertpilotError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/** True for errors the user caused (config, usage): the CLI prints them without a stack. */
export function isUserError(err: unknown): boolean {
  return err instanceof ConfigError || err instanceof UsageError;
}

/**
 * A one-line description of any thrown value, including its cause chain, with registered
 * secrets masked (a cause may be a library's error quoting a request).
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      const msg = current.message || current.name;
      const prefix =
        typeof code === 'string' && !(current instanceof CertpilotError) && !msg.includes(code)
          ? `${code}: `
          : '';
      if (!parts.some((p) => p.includes(msg))) parts.push(prefix + msg);
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return redactText(parts.join(': caused by: '));
}

export function abortError(component: string, signal?: AbortSignal): CertpilotError {
  const reason = signal?.reason;
  if (reason instanceof CertpilotError) return reason;
  // AbortSignal.timeout() aborts with a DOMException, which is not `instanceof Error` in every
  // realm (jest's VM contexts): judge by name.
  const timedOut = (reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
  return new CertpilotError(
    timedOut ? 'TIMEOUT' : 'ABORTED',
    `${component}: ${timedOut ? 'deadline exceeded' : 'cancelled'}`,
    { cause: reason, retryable: timedOut },
  );
}
