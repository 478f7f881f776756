import path from 'node:path';
import { abortError, CertpilotError } from '../../../core/errors';
import { throwIfAborted } from '../../../core/abort';
import type { Logger } from '../../../core/logger';
import { runProcess } from '../../../core/process';
import type { DnsProvider, ProviderContext, TxtRecord } from '../../provider';
import { EXEC_DEFAULT_TIMEOUT_SECONDS, parseEnvNames, parseExecArgs } from './options';

const COMPONENT = 'exec';
/** Enough stderr to say what went wrong (its end is kept); a chatty program must not fill memory or the error. */
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

/**
 * Runs the operator's program once per record. The provider contract is zone-relative; the
 * program gets FQDNs (dot-terminated, as lego's exec provider passes them) because that is
 * what every DNS tool expects. Calls for one name are serialised in this process, so a
 * read-modify-write program cannot race itself on apex + wildcard.
 */
export class ExecProvider implements DnsProvider {
  private readonly command: string;
  private readonly args: readonly string[];
  private readonly passEnv: readonly string[];
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
    const passEnv = parseEnvNames(options.passEnv);
    if (typeof passEnv === 'string') throw new CertpilotError('CONFIG_INVALID', `exec: passEnv ${passEnv}`);
    this.command = command;
    this.args = args;
    this.passEnv = passEnv;
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

  private async run(
    zone: string,
    record: TxtRecord,
    fqdn: string,
    action: ExecAction,
    signal: AbortSignal,
  ): Promise<void> {
    throwIfAborted(signal, COMPONENT);
    const target = fqdn + '.';
    const what = `${this.command} ${action} ${target}`;
    const r = await runProcess({
      argv: [this.command, ...this.args, action, target, record.value],
      // The allowlist (PATH, HOME, locale) plus what the operator passes through (the program's
      // own credentials) plus what describes the call: never certpilot's other secrets.
      env: {
        pass: this.passEnv,
        set: {
          CERTPILOT_DNS_ACTION: action,
          CERTPILOT_DNS_ZONE: zone,
          CERTPILOT_DNS_NAME: record.name,
          CERTPILOT_DNS_FQDN: target,
          CERTPILOT_DNS_VALUE: record.value,
          CERTPILOT_DNS_TTL: String(record.ttl),
        },
      },
      timeoutMs: this.timeoutMs,
      killGraceMs: this.tuning.killGraceMs,
      // stdout is the program's business (and may echo secrets): captured, bounded, dropped.
      maxOutputBytes: STDERR_LIMIT_BYTES,
      signal,
    });
    if (r.aborted) throw abortError(COMPONENT, signal);
    if (r.spawnError) {
      throw new CertpilotError(
        'DNS_UPDATE_FAILED',
        `exec: cannot run ${this.command}: ${r.spawnError.code ?? r.spawnError.message}`,
        { cause: r.spawnError, details: { command: this.command, action } },
      );
    }
    const err = r.stderr.trim();
    const tailOf = err ? `: ${err}` : '';
    if (r.timedOut) {
      throw new CertpilotError(
        'TIMEOUT',
        `exec: ${what} did not finish within ${this.timeoutMs / 1000} s and was killed${tailOf}`,
        { retryable: true, details: { command: this.command, action, stderr: err } },
      );
    }
    if (r.ok) {
      this.log.debug('hook done', { action, fqdn: target });
      return;
    }
    const status = r.exitCode === null ? `signal ${r.signal ?? '?'}` : `status ${r.exitCode}`;
    throw new CertpilotError('DNS_UPDATE_FAILED', `exec: ${what} exited with ${status}${tailOf}`, {
      details: { command: this.command, action, exitCode: r.exitCode, signal: r.signal, stderr: err },
    });
  }
}
