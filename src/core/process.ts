import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { longestSecretLength } from './redact';

/**
 * The one way certpilot runs another program (deploy hooks, the command/nginx/systemd deployers,
 * the exec DNS provider). The policy, documented for operators in docs/hooks.md and
 * docs/providers/exec.md:
 *
 *  - argv only, executed directly (execve): no value can be read as shell syntax. A shell runs
 *    only when the caller passes one explicitly (`shellArgv()` for a command the operator wrote
 *    as a string and marked `shell: true`).
 *  - The environment is an allowlist (INHERITED_ENV: enough to find programs and format text)
 *    plus names the caller passes through explicitly plus the caller's own variables. Nothing
 *    else of certpilot's environment reaches the program: cloud credentials, TSIG secrets,
 *    API tokens and EAB keys given to certpilot through its environment stay with it.
 *  - Each program runs in its own process group; a timeout or an abort signals the whole group
 *    (SIGTERM, then SIGKILL after a grace period), so what it started dies with it.
 *  - stdout and stderr are captured, each bounded to its last `maxOutputBytes`; what was dropped
 *    is counted and said, never silently lost.
 */

/** Variables every program inherits from certpilot, when set. `LC_*` are inherited too. */
export const INHERITED_ENV: readonly string[] = ['PATH', 'HOME', 'LANG', 'TZ', 'USER', 'LOGNAME', 'TMPDIR'];
/** When certpilot itself runs without PATH (some service managers), programs still find the basics. */
export const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Per stream: enough for `nginx -t`'s diagnosis, small enough that a chatty program cannot flood memory or the log. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024;
/** After SIGTERM, a process group gets this long to exit before SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/**
 * After the main process exits, its pipes may stay open in a background child it left running
 * (a daemon started without closing stdio). Read what is there, then stop waiting.
 */
const PIPE_DRAIN_MS = 500;

/** Whether a variable of certpilot's environment is inherited without being asked for. */
export function isInheritedEnv(name: string): boolean {
  return INHERITED_ENV.includes(name) || /^LC_[A-Z]+$/.test(name);
}

export interface EnvPolicy {
  /** Names of certpilot's own variables to pass through as they are (when set). */
  pass?: readonly string[];
  /** Variables to set; they win over inherited and passed-through ones. */
  set?: Readonly<Record<string, string>>;
}

/** The environment of a child under the allowlist policy; `from` is certpilot's environment. */
export function buildChildEnv(
  policy: EnvPolicy = {},
  from: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) {
    if (v !== undefined && isInheritedEnv(k)) env[k] = v;
  }
  env.PATH ??= FALLBACK_PATH;
  for (const k of policy.pass ?? []) {
    const v = from[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...policy.set };
}

/** argv that runs `command` with /bin/sh: only for a command the operator wrote as a shell string. */
export function shellArgv(command: string): [string, string, string] {
  return ['/bin/sh', '-c', command];
}

export interface RunProcessOptions {
  /** argv[0] is the program (looked up in the child's PATH unless absolute). */
  argv: readonly string[];
  env?: EnvPolicy;
  cwd?: string;
  timeoutMs: number;
  killGraceMs?: number;
  maxOutputBytes?: number;
  /** Aborting stops the process group like a timeout; the result then has `aborted: true`. */
  signal?: AbortSignal;
  /** Called once the program is running (a test hook for crash points). */
  onSpawn?: () => void;
}

export interface ProcessResult {
  /** Exit status 0, not timed out, not aborted. */
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** Why the program could not be started (ENOENT, EACCES...). */
  spawnError?: NodeJS.ErrnoException;
  /** The end of each stream; `[N bytes dropped]...` in front when it was cut. */
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Keeps the last `max` bytes of a stream; what was dropped is counted, not silently lost. */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;
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
  /**
   * When the front was cut, the first retained line may be the end of a secret, which no longer
   * matches the registered value and would escape redaction: that partial line is dropped too
   * (up to its end when that is near, else as many characters as the longest registered secret:
   * a piece of a secret cannot be longer).
   */
  text(): string {
    const body = Buffer.concat(this.chunks).toString('utf8');
    if (this.dropped === 0) return body;
    const longest = longestSecretLength();
    const newline = body.indexOf('\n');
    const skip = newline >= 0 && newline < longest ? newline + 1 : Math.min(body.length, longest);
    const dropped = this.dropped + Buffer.byteLength(body.slice(0, skip));
    return `[${dropped} bytes dropped]...${body.slice(skip)}`;
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // The group is already gone.
  }
}

/**
 * Runs one program to completion, timeout or abort. Never rejects: the program's own failure
 * (non-zero exit, signal, timeout, cannot start) is in the result for the caller to judge.
 */
export function runProcess(opts: RunProcessOptions): Promise<ProcessResult> {
  const started = performance.now();
  const [file, ...args] = opts.argv;
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const out = new OutputTail(max);
  const err = new OutputTail(max);
  const grace = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;

  return new Promise<ProcessResult>((resolve) => {
    let stopped: 'timeout' | 'abort' | undefined;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const child = spawn(file ?? '', args, {
      cwd: opts.cwd,
      env: buildChildEnv(opts.env),
      // Its own process group, so a timeout can signal every process the program started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
    });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    if (opts.onSpawn) child.once('spawn', opts.onSpawn);

    const stop = (why: 'timeout' | 'abort'): void => {
      if (exit || stopped) return;
      stopped = why;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), grace);
    };
    const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);
    const onAbort = (): void => stop('abort');
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (spawnError?: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      // A stopped group gets its SIGKILL even if the leader left early: stragglers must go.
      if (stopped && killTimer) {
        clearTimeout(killTimer);
        killGroup(child.pid, 'SIGKILL');
      }
      opts.signal?.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        ok: !spawnError && !stopped && exit?.code === 0,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut: stopped === 'timeout',
        aborted: stopped === 'abort',
        ...(spawnError ? { spawnError } : {}),
        stdout: out.text(),
        stderr: err.text(),
        durationMs: Math.round(performance.now() - started),
      });
    };

    child.once('error', (e: NodeJS.ErrnoException) => finish(e));
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(() => finish(), PIPE_DRAIN_MS);
    });
    // 'close', not only 'exit': the output is complete only when the pipes have closed.
    child.once('close', () => finish());
  });
}
