import { registerSecret } from '../core/redact';
import { isLoopbackHost } from './formats';
import type { IssueList } from './issues';
import type { LeafValues } from './schema';
import type { DaemonSettings } from './types';

/**
 * The `daemon:` section of `certpilot run`: schema leaves only. /metrics and /healthz have no
 * authentication, so listening beyond loopback (which exposes renewal state and certificate
 * names to the network) must be asked for with `daemon.allowRemote: true`.
 */
export function parseDaemon(values: LeafValues, issues: IssueList): DaemonSettings {
  const listen = values.get('daemon.listen');
  if (listen && !isLoopbackHost(listen.host) && values.get('daemon.allowRemote') !== true) {
    issues.add(
      'daemon.listen',
      `${listen.host} is not a loopback address and /metrics and /healthz have no authentication; ` +
        'set daemon.allowRemote: true to listen there anyway (behind a firewall or an authenticating proxy)',
    );
  }
  const heartbeat = values.get('daemon.heartbeat');
  // Healthchecks-style URLs carry their token in the path: the whole URL is a secret.
  registerSecret(heartbeat);
  return {
    checkIntervalMs: values.get('daemon.checkInterval') ?? 0,
    // "" disables the HTTP server.
    ...(listen ? { listen } : {}),
    ...(heartbeat
      ? { heartbeat: { url: heartbeat, timeoutMs: values.get('daemon.heartbeatTimeout') ?? 0 } }
      : {}),
    silentAfterMs: values.get('daemon.silentAfter') ?? 0,
    endpointIntervalMs: values.get('daemon.endpointInterval') ?? 0,
    readinessIntervalMs: values.get('daemon.readinessInterval') ?? 0,
    redeployBackoffMs: values.get('daemon.redeployBackoff') ?? 0,
  };
}
