import { checkpoint, type Checkpoint } from '../core/checkpoints';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CommandSpec } from '../config/types';
import { DEFAULT_MAX_OUTPUT_BYTES, runProcess, shellArgv } from '../core/process';
import { isSecretName, redactOutput, registerSecret } from '../core/redact';

/**
 * Runs hook and deployer commands through the shared process runner (src/core/process.ts). The
 * contract operators rely on (docs/hooks.md):
 *  - argv is executed directly (execve), never through a shell, so a domain, a path or any other
 *    value cannot be interpreted as shell syntax; `shell` commands exist but must be asked for,
 *    and even then certificate data reaches them only as environment variables;
 *  - the environment is the runner's allowlist plus the command's `env` plus CERTPILOT_*;
 *  - each command runs in its own process group and a timeout kills the whole group, so a
 *    `sleep` or a hung `ssh` started by a hook does not outlive it;
 *  - output is captured, bounded, redacted as hostile text (redactOutput: registered secrets,
 *    credential headers, `NAME=value` lines with a secret name) and written to the log; only a
 *    short excerpt of it (EXCERPT_MAX_CHARS) reaches errors, alerts and state files;
 *  - non-zero exit or timeout is a failure.
 */

/** Per stream, the end of a command's output kept for the log. */
export const MAX_OUTPUT_BYTES = DEFAULT_MAX_OUTPUT_BYTES;
/**
 * The end of a failed command's output quoted in its error, and so in alerts, the JSON report
 * and deploy state: enough for the last error line or two, not a log dump in a Slack message.
 */
export const EXCERPT_MAX_CHARS = 400;

export interface CommandResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunCommandOptions {
  /** Names the command in logs and errors, e.g. `hooks.deploy[0]` or `deploy[1] nginx test`. */
  label: string;
  /** CERTPILOT_* variables. */
  vars: Readonly<Record<string, string>>;
  /**
   * `{name}` style placeholders substituted inside argv elements. Each element stays one
   * argument whatever the value contains; shell commands get no substitution at all.
   */
  placeholders?: Readonly<Record<string, string>>;
  log: Logger;
  signal?: AbortSignal;
  /** Checkpoint reached once the command is running (src/core/checkpoints.ts). */
  checkpoint?: Checkpoint;
}

export function substitute(arg: string, placeholders: Readonly<Record<string, string>>): string {
  return arg.replace(/\{([a-z]+)\}/g, (whole, key: string) => placeholders[key] ?? whole);
}

/** Runs one command to completion or timeout. Never throws for the command's own failure. */
export async function runCommand(spec: CommandSpec, opts: RunCommandOptions): Promise<CommandResult> {
  // A hook's own credentials (`env: {API_TOKEN: ...}`) are secrets like any other: the hook may
  // well print them (`curl -v`, `set -x`), and its output is logged.
  for (const [k, v] of Object.entries(spec.env ?? {})) if (isSecretName(k)) registerSecret(v);
  const argv = spec.argv
    ? spec.argv.map((a) => substitute(a, opts.placeholders ?? {}))
    : shellArgv(spec.shell ?? 'false');
  const r = await runProcess({
    argv,
    // certpilot's own variables last: a hook's env cannot fake them (the parser refuses it too).
    env: { set: { ...spec.env, ...opts.vars } },
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    timeoutMs: spec.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.checkpoint ? { onSpawn: () => checkpoint(opts.checkpoint!) } : {}),
  });
  const result: CommandResult = {
    ok: r.ok,
    exitCode: r.exitCode,
    signal: r.signal,
    // An abort stops the group the same way; callers report both as "did not finish".
    timedOut: r.timedOut || r.aborted,
    stdout: redactOutput(r.stdout),
    stderr: redactOutput(r.spawnError ? `${r.stderr}${r.spawnError.message}` : r.stderr),
    durationMs: r.durationMs,
  };
  const meta = {
    command: opts.label,
    exitCode: result.exitCode,
    ...(result.signal ? { signal: result.signal } : {}),
    ...(result.timedOut ? { timedOut: true } : {}),
    durationMs: result.durationMs,
    ...(result.stdout ? { stdout: result.stdout } : {}),
    ...(result.stderr ? { stderr: result.stderr } : {}),
  };
  if (result.ok) opts.log.info('command finished', meta);
  else opts.log.warn('command failed', meta);
  return result;
}

/** One line for an error message: why the command failed and the end of what it said. */
export function describeFailure(label: string, spec: CommandSpec, r: CommandResult): string {
  const why = r.timedOut
    ? `timed out after ${spec.timeoutMs} ms (process group killed)`
    : r.exitCode !== null
      ? `exited with status ${r.exitCode}`
      : r.signal
        ? `killed by ${r.signal}`
        : 'could not be started';
  return `${label} ${why}${excerptOf(r)}`;
}

/** `: <the last lines of stderr (or stdout)>`, at most EXCERPT_MAX_CHARS of them, or nothing. */
function excerptOf(r: CommandResult): string {
  const lines = (r.stderr.trim() || r.stdout.trim())
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const said = lines.slice(-3).join(' | ');
  if (said === '') return '';
  // Output is already redacted, so cutting it cannot expose part of a secret.
  return said.length > EXCERPT_MAX_CHARS ? `: ...${said.slice(-EXCERPT_MAX_CHARS)}` : `: ${said}`;
}

/** Runs a command and throws HOOK_FAILED unless it succeeded. */
export async function runChecked(spec: CommandSpec, opts: RunCommandOptions): Promise<CommandResult> {
  const r = await runCommand(spec, opts);
  if (!r.ok) {
    throw new CertpilotError('HOOK_FAILED', `deploy: ${describeFailure(opts.label, spec, r)}`, {
      details: { command: opts.label, exitCode: r.exitCode, timedOut: r.timedOut },
    });
  }
  return r;
}
