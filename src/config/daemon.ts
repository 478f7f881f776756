import net from 'node:net';
import type { IssueList } from './issues';
import type { LeafValues } from './schema';
import type { DaemonSettings } from './types';

/** 127.0.0.0/8, ::1 and localhost: only processes on this host can connect. */
function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/**
 * The `daemon:` section of `certpilot run`: schema leaves only. /metrics and /healthz have no
 * authentication, so listening beyond loopback (which exposes renewal state and certificate
 * names to the network) must be asked for with `daemon.allowRemote: true`.
 */
export function parseDaemon(values: LeafValues, issues: IssueList): DaemonSettings {
  const listen = values.get('daemon.listen');
  if (listen && !isLoopback(listen.host) && values.get('daemon.allowRemote') !== true) {
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
