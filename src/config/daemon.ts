import type { LeafValues } from './schema';
import type { DaemonSettings } from './types';

/** The `daemon:` section of `certpilot run`: schema leaves only. */
export function parseDaemon(values: LeafValues): DaemonSettings {
  const listen = values.get('daemon.listen') as DaemonSettings['listen'];
  return {
    checkIntervalMs: (values.get('daemon.checkInterval') as number | undefined) ?? 0,
    // "" disables the HTTP server.
    ...(listen ? { listen } : {}),
  };
}
