import { promises as fs } from 'node:fs';
import { endpointKey } from '../config/access';
import { sleep } from '../core/abort';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import { probeEndpoint, type ProbeResult } from '../inspect/remote';
import type { Endpoint, VerifySettings } from '../config/types';
import type { EndpointState } from '../state/deploy-state';

/**
 * Served-certificate verification: after a deploy, each endpoint is probed until it serves the
 * expected leaf (by SHA-256 fingerprint, so a re-issued certificate with the same names does not
 * pass for the new one). Waits are bounded and back off; on a timeout the error names each
 * lagging endpoint and what it serves instead, which is the information an operator needs
 * (the most common complaint about ACME clients: "renewed, but the old one is still served").
 */

export interface Expected {
  fingerprint256: string;
  serial: string;
}

export interface EndpointOutcome {
  key: string;
  state: EndpointState;
}

/** Fresh connections in a row that must all get the new certificate before it counts as served. */
export const CONSECUTIVE_PROBES = 3;

function describeServed(p: ProbeResult): string {
  if (!p.ok) return p.error?.message ?? 'nothing';
  const leaf = p.chain[0]!;
  return `serial ${leaf.serial} (fingerprint ${leaf.fingerprint256.slice(0, 16)}…, expires ${leaf.notAfter.toISOString()})`;
}

async function verifyOne(
  e: Endpoint,
  expected: Expected,
  settings: VerifySettings,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<EndpointOutcome> {
  const key = endpointKey(e);
  const caBundle = e.caBundle ? await fs.readFile(e.caBundle, 'utf8') : undefined;
  const deadline = Date.now() + settings.timeoutMs;
  let delay = settings.intervalMs;
  let last: ProbeResult | undefined;
  const probe = (): Promise<ProbeResult> =>
    probeEndpoint({
      host: e.host,
      port: e.port,
      ...(e.servername ? { servername: e.servername } : {}),
      ...(e.connectAddress ? { connectAddress: e.connectAddress } : {}),
      ...(e.starttls ? { starttls: e.starttls } : {}),
      ...(caBundle ? { caBundle } : {}),
      connectTimeoutMs: settings.connectTimeoutMs,
      handshakeTimeoutMs: settings.handshakeTimeoutMs,
      ...(signal ? { signal } : {}),
    });
  const serves = (p: ProbeResult): boolean => p.ok && p.chain[0]?.fingerprint256 === expected.fingerprint256;
  for (let attempt = 1; ; attempt++) {
    // Each probe keeps its own full timeouts (a probe cut to the last millisecond of the wait
    // would only ever report a timeout); the wait bounds when the next probe may start.
    last = await probe();
    // One good answer is not enough: during nginx's graceful reload an old worker can still take
    // a new connection and serve the old certificate. Verified means several fresh connections
    // in a row all get the new one.
    for (let confirmed = 1; serves(last) && confirmed < CONSECUTIVE_PROBES; confirmed++) last = await probe();
    const leaf = serves(last) ? last.chain[0] : undefined;
    if (leaf) {
      log.info('endpoint serves the expected certificate', { endpoint: key, serial: leaf.serial, attempt });
      return {
        key,
        state: {
          status: 'verified',
          served: leaf.fingerprint256,
          servedSerial: leaf.serial,
          checkedAt: new Date().toISOString(),
        },
      };
    }
    log.debug('endpoint not serving the expected certificate yet', {
      endpoint: key,
      attempt,
      served: describeServed(last),
    });
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await sleep(Math.min(delay, remaining), signal, 'verify');
    delay = Math.min(delay * 2, settings.maxIntervalMs);
  }
  const leaf = last.ok ? last.chain[0] : undefined;
  return {
    key,
    state: {
      status: leaf ? 'stale' : 'unreachable',
      ...(leaf ? { served: leaf.fingerprint256, servedSerial: leaf.serial } : {}),
      checkedAt: new Date().toISOString(),
      error: `${key} serves ${describeServed(last)} instead of serial ${expected.serial}`,
    },
  };
}

/**
 * Verifies every endpoint in parallel. Resolves with per-endpoint outcomes; throws
 * VERIFY_FAILED (with the outcomes in details) when any endpoint did not get there in time.
 */
export async function verifyEndpoints(
  endpoints: readonly Endpoint[],
  expected: Expected,
  settings: VerifySettings,
  log: Logger,
  signal?: AbortSignal,
): Promise<EndpointOutcome[]> {
  const outcomes = await Promise.all(endpoints.map((e) => verifyOne(e, expected, settings, log, signal)));
  const failed = outcomes.filter((o) => o.state.status !== 'verified');
  if (failed.length > 0) {
    throw new CertpilotError(
      'VERIFY_FAILED',
      `verify: not served within ${settings.timeoutMs} ms: ${failed.map((f) => f.state.error).join('; ')}`,
      { details: { endpoints: Object.fromEntries(outcomes.map((o) => [o.key, o.state])) } },
    );
  }
  return outcomes;
}
