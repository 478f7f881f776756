import { duration, mapping, optional } from './combinators';
import { DEFAULT_VERIFY } from './defaults';
import { childPath, type IssueList } from './issues';
import type { VerifySettings } from './types';

/** `verify:`: how long and how often deploy verification asks an endpoint for the new certificate. */

const VERIFY_KEYS = ['timeout', 'interval', 'maxInterval', 'connectTimeout', 'handshakeTimeout'];

export function parseVerify(raw: unknown, path: string, issues: IssueList): VerifySettings {
  const m = mapping(raw, path, issues, { keys: VERIFY_KEYS });
  if (!m) return DEFAULT_VERIFY;
  const d = (k: string, fallback: number): number => optional(m, k, path, issues, duration) ?? fallback;
  const v = {
    timeoutMs: d('timeout', DEFAULT_VERIFY.timeoutMs),
    intervalMs: d('interval', DEFAULT_VERIFY.intervalMs),
    maxIntervalMs: d('maxInterval', DEFAULT_VERIFY.maxIntervalMs),
    connectTimeoutMs: d('connectTimeout', DEFAULT_VERIFY.connectTimeoutMs),
    handshakeTimeoutMs: d('handshakeTimeout', DEFAULT_VERIFY.handshakeTimeoutMs),
  };
  if (v.maxIntervalMs < v.intervalMs)
    issues.add(childPath(path, 'maxInterval'), 'must not be less than interval');
  return v;
}
