import { spawn } from 'node:child_process';
import path from 'node:path';
import { abortError, CertpilotError } from '../../../core/errors';
import { throwIfAborted } from '../../../core/abort';
import type { Logger } from '../../../core/logger';
import type { DnsProvider, ProviderContext, TxtRecord } from '../../provider';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, parseExecArgs } from './definition';

const COMPONENT = 'exec';
/** Enough stderr to say what went wrong; a chatty program must not fill memory or the error. */
const STDERR_LIMIT_BYTES = 4096;

export interface ExecTuning {
  /** Between SIGTERM and SIGKILL when a run is stopped. */
  readonly killGraceMs: number;
}

export const DEFAULT_EXEC_TUNING: ExecTuning = { killGraceMs: 2_000 };

export type ExecAction = 'present' | 'cleanup';

function toFqdn(name: string, zone: string): string {
  const z = zone.replace(/\.$/, '').toLowerCase();
  const n = name.replace(/\.$/, '').toLowerCase();
  return n === '@' || n === '' ? z : `${n}.${z}`;
}

/** Keeps the last `limit` bytes: the end of stderr is where programs say why they failed. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const excess = this.size - this.limit;
      const head = this.chunks[0];
      this.truncated = true;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
      }
    }
  }
  text(): string {
    const t = Buffer.concat(this.chunks).toString('utf8').trim();
    return this.truncated ? '...' + t : t;
  }
}

/**
 * Runs the operator's program once per record. The provider contract is zone-relative; the
 * program gets FQDNs (dot-terminated, as lego's exec provider passes them) because that is
 * what every DNS tool expects. Calls for one name are serialised in this process, so a
 * read-modify-write program cannot race itself on apex + wildcard.
 */
export class ExecProvider implements DnsProvider {
  private readonly command: string;
  private readonly args: readonly string[];
  private readonly timeoutMs: number;
  private readonly tuning: ExecTuning;
  private readonly log: Logger;
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    options: Readonly<Record<string, unknown>>,
    ctx: ProviderContext,
    tuning: Partial<ExecTuning> = {},
  ) {
    const command = options.command;
    if (typeof command !== 'string' || !path.isAbsolute(command)) {
      throw new CertpilotError('CONFIG_INVALID', 'exec: command must be an absolute path');
    }
    const args = parseExecArgs(options.args);
    if (typeof args === 'string') throw new CertpilotError('CONFIG_INVALID', `exec: args ${args}`);
    this.command = command;
    this.args = args;
    const seconds =
      typeof options.timeout === 'number' && options.timeout > 0
        ? options.timeout
        : EXEC_DEFAULT_TIMEOUT_SECONDS;
    this.timeoutMs = seconds * 1000;
    this.tuning = { ...DEFAULT_EXEC_TUNING, ...tuning };
    this.log = ctx.log.child({ provider: COMPONENT, instance: ctx.instance });
  }

  async appendRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    throwIfAborted(signal, COMPONENT);
    for (const r of records) await this.serialised(zone, r, 'present', signal);
    return records;
  }

  async deleteRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    throwIfAborted(signal, COMPONENT);
    for (const r of records) await this.serialised(zone, r, 'cleanup', signal);
    return records;
  }

  private async serialised(
    zone: string,
    record: TxtRecord,
    action: ExecAction,
    signal: AbortSignal,
  ): Promise<void> {
    const fqdn = toFqdn(record.name, zone);
    const prev = this.queues.get(fqdn) ?? Promise.resolve();
    const mine = prev.then(
      () => this.run(zone, record, fqdn, action, signal),
      () => this.run(zone, record, fqdn, action, signal),
    );
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(fqdn, tail);
    void tail.then(() => {
      if (this.queues.get(fqdn) === tail) this.queues.delete(fqdn);
    });
    return mine;
  }

  private run(
    zone: string,
    record: TxtRecord,
    fqdn: string,
    action: ExecAction,
    signal: AbortSignal,
  ): Promise<void> {
    throwIfAborted(signal, COMPONENT);
    const target = fqdn + '.';
    const argv = [...this.args, action, target, record.value];
    const what = `${this.command} ${action} ${target}`;
    return new Promise<void>((resolve, reject) => {
      const child = spawn(this.command, argv, {
        // Inherited environment (PATH, the program's own credentials) plus what describes the call.
        env: {
          ...process.env,
          CERTPILOT_DNS_ACTION: action,
          CERTPILOT_DNS_ZONE: zone,
          CERTPILOT_DNS_NAME: record.name,
          CERTPILOT_DNS_FQDN: target,
          CERTPILOT_DNS_VALUE: record.value,
          CERTPILOT_DNS_TTL: String(record.ttl),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group, so a timeout also stops what the program started (nsupdate, curl, ...).
        detached: true,
        shell: false,
      });
      const stderr = new TailBuffer(STDERR_LIMIT_BYTES);
      child.stderr?.on('data', (c: Buffer) => stderr.push(c));
      // stdout is the program's business (and may echo secrets): read so it cannot block, then drop.
      child.stdout?.resume();

      let stopped: 'timeout' | 'abort' | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      const stop = (why: 'timeout' | 'abort'): void => {
        if (stopped) return;
        stopped = why;
        this.killGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => this.killGroup(child.pid, 'SIGKILL'), this.tuning.killGraceMs);
      };
      const timer = setTimeout(() => stop('timeout'), this.timeoutMs);
      const onAbort = (): void => stop('abort');
      signal.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        signal.removeEventListener('abort', onAbort);
      };

      child.once('error', (err: NodeJS.ErrnoException) => {
        cleanup();
        reject(
          new CertpilotError(
            'DNS_UPDATE_FAILED',
            `exec: cannot run ${this.command}: ${err.code ?? err.message}`,
            {
              cause: err,
              details: { command: this.command, action },
            },
          ),
        );
      });
      // 'close', not 'exit': stderr is complete only when its pipe has closed.
      child.once('close', (code, sig) => {
        cleanup();
        if (stopped === 'abort') return reject(abortError(COMPONENT, signal));
        const err = stderr.text();
        const tailOf = err ? `: ${err}` : '';
        if (stopped === 'timeout') {
          return reject(
            new CertpilotError(
              'TIMEOUT',
              `exec: ${what} did not finish within ${this.timeoutMs / 1000} s and was killed${tailOf}`,
              {
                retryable: true,
                details: { command: this.command, action, stderr: err },
              },
            ),
          );
        }
        if (code === 0) {
          this.log.debug('hook done', { action, fqdn: target });
          return resolve();
        }
        const status = code === null ? `signal ${sig ?? '?'}` : `status ${code}`;
        reject(
          new CertpilotError('DNS_UPDATE_FAILED', `exec: ${what} exited with ${status}${tailOf}`, {
            details: { command: this.command, action, exitCode: code, signal: sig, stderr: err },
          }),
        );
      });
    });
  }

  private killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // Already gone.
    }
  }
}
