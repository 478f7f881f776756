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
  return {
    checkIntervalMs: values.get('daemon.checkInterval') ?? 0,
    // "" disables the HTTP server.
    ...(listen ? { listen } : {}),
  };
}
