import { checkpoint, type Checkpoint } from '../core/checkpoints';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { CertpilotError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { CommandSpec } from './config';

/**
 * Runs hook and deployer commands. The contract operators rely on (docs/hooks.md):
 *  - argv is executed directly (execve), never through a shell, so a domain, a path or any other
 *    value cannot be interpreted as shell syntax; `shell` commands exist but must be asked for,
 *    and even then certificate data reaches them only as environment variables;
 *  - each command runs in its own process group and a timeout kills the whole group, so a
 *    `sleep` or a hung `ssh` started by a hook does not outlive it;
 *  - output is captured, bounded, and written to the log; non-zero exit or timeout is a failure.
 */

/** Per stream: enough for `nginx -t`'s diagnosis, small enough that a chatty hook cannot flood the log. */
export const MAX_OUTPUT_BYTES = 16 * 1024;
/** After SIGTERM, a process group gets this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/**
 * After the main process exits, its pipes may stay open in a background child it left running
 * (a daemon started without closing stdio). Read what is there, then stop waiting.
 */
const PIPE_DRAIN_MS = 500;

/**
 * The environment a command inherits from certpilot: enough to find programs and format text.
 * Everything else (cloud credentials, CERTPILOT_* secrets of the agent itself) stays out unless
 * a hook's `env` adds it.
 */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'USER', 'LOGNAME', 'TMPDIR'];
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

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

/** Keeps the last `max` bytes of a stream; what was dropped is counted, not silently lost. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }
  text(): string {
    const body = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `[${this.dropped} bytes dropped]...${body}` : body;
  }
}

export function substitute(arg: string, placeholders: Readonly<Record<string, string>>): string {
  return arg.replace(/\{([a-z]+)\}/g, (whole, key: string) => placeholders[key] ?? whole);
}

export function commandEnv(
  spec: CommandSpec,
  vars: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  env.PATH ??= FALLBACK_PATH;
  // certpilot's own variables last: a hook's env cannot fake them (the parser refuses it too).
  return { ...env, ...spec.env, ...vars };
}

/** Runs one command to completion or timeout. Never throws for the command's own failure. */
export function runCommand(spec: CommandSpec, opts: RunCommandOptions): Promise<CommandResult> {
  const started = performance.now();
  const argv = spec.argv
    ? spec.argv.map((a) => substitute(a, opts.placeholders ?? {}))
    : ['/bin/sh', '-c', spec.shell ?? 'false'];
  const [file, ...args] = argv as [string, ...string[]];
  const out = new Tail(MAX_OUTPUT_BYTES);
  const err = new Tail(MAX_OUTPUT_BYTES);

  return new Promise<CommandResult>((resolve) => {
    let timedOut = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const child = spawn(file, args, {
      cwd: spec.cwd,
      env: commandEnv(spec, opts.vars),
      // Its own process group, so a timeout can signal every process the command started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
    });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    if (opts.checkpoint) child.once('spawn', () => checkpoint(opts.checkpoint!));

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    const stop = (): void => {
      if (exit || timedOut) return;
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(stop, spec.timeoutMs);
    const onAbort = (): void => stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      // A timed-out group gets its SIGKILL even if the leader left early: stragglers must go.
      if (timedOut && killTimer) {
        clearTimeout(killTimer);
        killGroup('SIGKILL');
      }
      opts.signal?.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      const stderr = spawnError ? `${err.text()}${spawnError.message}` : err.text();
      const result: CommandResult = {
        ok: !spawnError && !timedOut && exit?.code === 0,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        stdout: out.text(),
        stderr,
        durationMs: Math.round(performance.now() - started),
      };
      const meta = {
        command: opts.label,
        exitCode: result.exitCode,
        ...(result.signal ? { signal: result.signal } : {}),
        ...(timedOut ? { timedOut } : {}),
        durationMs: result.durationMs,
        ...(result.stdout ? { stdout: result.stdout } : {}),
        ...(result.stderr ? { stderr: result.stderr } : {}),
      };
      if (result.ok) opts.log.info('command finished', meta);
      else opts.log.warn('command failed', meta);
      resolve(result);
    };

    child.once('error', (e) => finish(e));
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(() => finish(), PIPE_DRAIN_MS);
    });
    child.once('close', () => finish());
  });
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
  const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `${label} ${why}${said ? `: ${said}` : ''}`;
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
