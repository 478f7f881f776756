import { duration, mapping, optional } from './combinators';
import { DEFAULT_VERIFY } from './defaults';
import { childPath, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import type { VerifySettings } from './types';

/** `verify:`: how long and how often deploy verification asks an endpoint for the new certificate. */

export const VERIFY_KEYS = ['timeout', 'interval', 'maxInterval', 'connectTimeout', 'handshakeTimeout'];

export const VERIFY_KEY_DOCS: KeyDocs = {
  timeout: {
    type: 'duration',
    default: '`2m`',
    doc: 'How long every endpoint has to serve the new certificate.',
  },
  interval: { type: 'duration', default: '`1s`', doc: 'First wait between two probes; it doubles.' },
  maxInterval: { type: 'duration', default: '`15s`', doc: 'Longest wait between two probes.' },
  connectTimeout: { type: 'duration', default: '`5s`', doc: 'TCP connect timeout of one probe.' },
  handshakeTimeout: { type: 'duration', default: '`10s`', doc: 'TLS handshake timeout of one probe.' },
};

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
