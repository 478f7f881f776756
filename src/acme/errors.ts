import { CertpilotError } from '../core/errors';
import { parseRetryAfter } from '../core/retry';

/**
 * What the CA said, and what certpilot makes of it: RFC 8555 §6.7 problem documents captured
 * from responses (acme-client's errors keep only the detail text), RFC 9110 Retry-After, and
 * the mapping of any failure to a typed CertpilotError that keeps the real cause.
 */

export interface AcmeProblem {
  status: number;
  type?: string;
  detail?: string;
  retryAfterMs?: number;
  url: string;
}

/** The parts of an HTTP response a problem is read from. */
export interface ProblemSource {
  status: number;
  headers: Readonly<Record<string, string | undefined>>;
  data: unknown;
}

/** Reads an error response as an RFC 8555 §6.7 problem document (type and detail when it is one). */
export function toProblem(response: ProblemSource, url: string, now = Date.now()): AcmeProblem {
  const data = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as {
    type?: unknown;
    detail?: unknown;
  };
  return {
    status: response.status,
    type: typeof data.type === 'string' ? data.type : undefined,
    detail: typeof data.detail === 'string' ? data.detail : undefined,
    retryAfterMs: parseRetryAfter(response.headers['retry-after'], now),
    url,
  };
}

/** RFC 9110 §10.2.3, the one parser (src/core/retry.ts); re-exported for ACME's importers. */
export { parseRetryAfter };

const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

/** Node/OpenSSL codes of a certificate the client refused (chain, expiry, name). */
export function isTlsTrustCode(code: string): boolean {
  return (
    code.includes('CERT') ||
    code.startsWith('ERR_TLS') ||
    code.includes('SELF_SIGNED') ||
    // UNABLE_TO_VERIFY_LEAF_SIGNATURE: the server's chain does not lead to a trusted CA.
    code.startsWith('UNABLE_TO_VERIFY')
  );
}

/**
 * What to do about a refused CA certificate. A chain to an unknown root is what a private CA
 * (an internal one, Pebble) gives: acme.caBundle is the fix. A name mismatch or an expired
 * certificate is not fixed by trusting more roots, so it is not suggested there.
 */
export function tlsTrustHint(code: string, directoryUrl: string | undefined): string {
  const ca = directoryUrl ? `the CA at ${directoryUrl}` : 'the CA';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the TLS certificate of ${ca} does not name its host (check the directory URL)`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return `the TLS certificate of ${ca} is not valid now (check this host's clock)`;
  return `the TLS certificate of ${ca} is not trusted by this host; if that CA uses a private root, set acme.caBundle to its PEM file (added to the system roots)`;
}

const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';

/** Turns whatever acme-client or the transport threw into a typed error that keeps the real cause. */
export function classifyAcmeError(
  op: string,
  err: unknown,
  problem: AcmeProblem | undefined,
  /** The CA named in a TLS trust error (the operator knows it by its directory URL). */
  directoryUrl?: string,
): CertpilotError {
  if (err instanceof CertpilotError) return err;
  const code = (err as { code?: unknown })?.code;
  // Not `instanceof Error`: errors from Node's own modules may come from another realm (a vm
  // context, as under jest), and String() would then prefix "Error: ".
  const raw = (err as { message?: unknown } | null)?.message;
  const message = typeof raw === 'string' ? raw : String(err);
  if (problem) {
    const type = problem.type?.startsWith(PROBLEM_PREFIX)
      ? problem.type.slice(PROBLEM_PREFIX.length)
      : problem.type;
    const detail = problem.detail ?? message;
    const text = `acme: ${op}: ${detail} (${type ?? 'no problem type'}, HTTP ${problem.status})`;
    const details = {
      status: problem.status,
      problemType: problem.type,
      retryAfterMs: problem.retryAfterMs,
      url: problem.url,
    };
    if (type === 'rateLimited' || problem.status === 429) {
      // In the message too, not only in details: the report (cron mail, CI log) is where an
      // operator learns when the CA will take orders again.
      const when =
        problem.retryAfterMs === undefined
          ? ''
          : ` (retry after ${Math.ceil(problem.retryAfterMs / 1000)} s)`;
      return new CertpilotError('ACME_RATE_LIMITED', text + when, { cause: err, retryable: true, details });
    }
    const transient = problem.status >= 500 || type === 'badNonce';
    return new CertpilotError('ACME_PROBLEM', text, { cause: err, retryable: transient, details });
  }
  if (typeof code === 'string' && RETRYABLE_NETWORK.has(code)) {
    return new CertpilotError('ACME_NETWORK', `acme: ${op}: ${code}: ${message}`, {
      cause: err,
      retryable: true,
    });
  }
  if (typeof code === 'string' && isTlsTrustCode(code)) {
    return new CertpilotError(
      'ACME_NETWORK',
      `acme: ${op}: TLS error: ${code}: ${message}; ${tlsTrustHint(code, directoryUrl)}`,
      { cause: err, retryable: false },
    );
  }
  if (typeof code === 'string') {
    return new CertpilotError('ACME_NETWORK', `acme: ${op}: ${code}: ${message}`, {
      cause: err,
      retryable: false,
    });
  }
  return new CertpilotError('ACME_ORDER_FAILED', `acme: ${op}: ${message}`, { cause: err });
}
