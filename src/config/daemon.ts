import type { LeafValues } from './schema';
import type { DaemonSettings } from './types';

/** The `daemon:` section of `certpilot run`: schema leaves only. */
export function parseDaemon(values: LeafValues): DaemonSettings {
  const listen = values.get('daemon.listen');
  return {
    checkIntervalMs: values.get('daemon.checkInterval') ?? 0,
    // "" disables the HTTP server.
    ...(listen ? { listen } : {}),
  };
}
