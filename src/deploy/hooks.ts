import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CommandSpec } from '../config/types';

/**
 * pre and post hooks. pre stops at the first failure (its job is usually to make renewal
 * possible, e.g. open a firewall; going on without it would fail anyway); post runs every hook
 * even after a failure (it usually cleans up). Either kind of failure makes the run exit
 * non-zero: certbot's "hook failed, exit 0" (certbot#8528) is exactly what operators hate.
 */
export async function runHookList(
  hooks: readonly CommandSpec[],
  base: string,
  vars: Readonly<Record<string, string>>,
  opts: { log: Logger; signal?: AbortSignal; stopOnFailure: boolean },
): Promise<string[]> {
  const errors: string[] = [];
  if (hooks.length === 0) return errors;
  // The command runner (child_process and its helpers) loads when a hook is to run.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runChecked } = require('./command') as typeof import('./command');
  for (const [i, hook] of hooks.entries()) {
    try {
      await runChecked(hook, {
        label: `${base}[${i}]`,
        vars,
        log: opts.log,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      errors.push(describeError(err));
      if (opts.stopOnFailure) break;
    }
  }
  return errors;
}
