import { describeError } from '../core/errors';
import { httpRequest } from '../core/http';
import { configuredHostLookup } from '../dns/host-lookup';
import type { Logger } from '../core/logger';
import { maskUrl } from '../core/redact';

/**
 * The dead man's switch of `certpilot run` (`daemon.heartbeat`): one GET after every successful
 * cycle, healthchecks.io style. The service on the other end alerts when the pings stop, which
 * catches what the daemon cannot report itself: it died, hangs, or the machine is gone.
 *
 * No retries: the next cycle pings again, and a ping late by minutes is worse than none. The
 * URL usually holds the check's token, so it is registered as a secret (src/config/daemon.ts)
 * and only its masked form is logged.
 */
export async function sendHeartbeat(
  heartbeat: { readonly url: string; readonly timeoutMs: number },
  log: Logger,
): Promise<boolean> {
  const where = maskUrl(heartbeat.url);
  try {
    // Redirects are not followed (a 3xx is a refusal); dns.resolvers, when set, resolve the host.
    const lookup = configuredHostLookup();
    const res = await httpRequest({
      url: heartbeat.url,
      method: 'GET',
      headers: { 'user-agent': 'certpilot' },
      timeoutMs: heartbeat.timeoutMs,
      ...(lookup ? { lookup } : {}),
    });
    if (res.status >= 200 && res.status < 300) {
      log.debug('heartbeat sent', { url: where, status: res.status });
      return true;
    }
    log.warn('heartbeat refused', { url: where, status: res.status });
  } catch (err) {
    log.warn('heartbeat failed', { url: where, error: describeError(err), timeoutMs: heartbeat.timeoutMs });
  }
  return false;
}
