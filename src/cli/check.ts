import path from 'node:path';
import { systemClock } from '../core/clock';
import { createLogger } from '../core/logger';
import { CertpilotError, ConfigError, UsageError, describeError, isUserError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import { MAX_DURATION_MS, parseInteger } from '../config/formats';
import { MAX_CHECK_CONCURRENCY } from '../config/check';
import type { AgentConfig } from '../config/types';
import {
  EXIT_CODE_OF_STATUS,
  runCheck,
  worstStatus,
  type CheckOptions,
  type CheckReport,
  type CheckResult,
} from '../inspect/check';
import type { CheckStatus, Finding } from '../inspect/findings';
import type { CommandContext } from './context';

/**
 * `certpilot check [NAME...] [--json] [--only-problems] [--prometheus FILE]`: a monitoring
 * plugin as Nagios and Icinga expect one. The first line of stdout is the status line
 * ("CERTPILOT WARNING - ..." with performance data after "|"), the table follows as long
 * output, and the exit code is the status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * Unlike the other commands, everything that keeps the check from running (invalid
 * configuration, an unknown NAME, a bad option value, a metrics file that cannot be written,
 * even a bug) exits 3 UNKNOWN: the plugin guidelines reserve 2 for "the service is critical",
 * and a monitoring system must not page anyone about certificates because of a typo.
 */

export const JSON_SCHEMA_VERSION = 1;

const STATUS_WORD: Readonly<Record<CheckStatus, string>> = {
  ok: 'OK',
  warning: 'WARNING',
  critical: 'CRITICAL',
  unknown: 'UNKNOWN',
};

/** The order of the status precedence (CRITICAL > WARNING > UNKNOWN > OK). */
const SEVERITY_RANK: Readonly<Record<Finding['severity'], number>> = {
  info: 0,
  unknown: 1,
  warning: 2,
  critical: 3,
};

interface ParsedFlags {
  options: CheckOptions;
  onlyProblems: boolean;
  prometheus?: string;
  /** `--readiness`: add the renewal-readiness rows (src/inspect/readiness.ts). */
  readiness: boolean;
}

function flagString(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

const CLI_DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const CLI_DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/**
 * A duration on the command line: "500ms", "30s", "5m", "1h30m", "14d", or a bare number of
 * seconds (what monitoring plugins take: check_http -t 10). Configuration files read a bare
 * number as milliseconds; a plugin's command line follows plugin conventions instead.
 */
export function parseCliDuration(text: string): number {
  const t = text.trim();
  let ms: number;
  if (/^\d+(?:\.\d+)?$/.test(t)) ms = Number(t) * 1_000;
  else if (CLI_DURATION.test(t)) {
    ms = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g))
      ms += Number(m[1]) * CLI_DURATION_UNIT_MS[m[2] as string]!;
  } else
    throw new Error(`must be a duration like 500ms, 30s, 5m or 14d, or a number of seconds (got "${t}")`);
  ms = Math.round(ms);
  if (ms <= 0) throw new Error('must be greater than 0');
  if (ms > MAX_DURATION_MS) throw new Error('must be at most 24 days (timers cannot wait longer)');
  return ms;
}

function parseFlags(ctx: CommandContext): ParsedFlags {
  const duration = (name: string): number | undefined => {
    const v = flagString(ctx, name);
    if (v === undefined) return undefined;
    try {
      return parseCliDuration(v);
    } catch (e) {
      throw new UsageError(`check: --${name} ${(e as Error).message}`);
    }
  };
  const concurrencyText = flagString(ctx, 'concurrency');
  let concurrency: number | undefined;
  if (concurrencyText !== undefined) {
    try {
      concurrency = parseInteger(
        /^\d+$/.test(concurrencyText) ? Number(concurrencyText) : concurrencyText,
        1,
        MAX_CHECK_CONCURRENCY,
      );
    } catch (e) {
      throw new UsageError(`check: --concurrency ${(e as Error).message}`);
    }
  }
  const connectTimeoutMs = duration('connect-timeout');
  const handshakeTimeoutMs = duration('handshake-timeout');
  const prometheus = flagString(ctx, 'prometheus');
  if (prometheus === '') throw new UsageError('check: --prometheus needs a file name');
  return {
    options: {
      names: ctx.args,
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      ...(handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
    },
    onlyProblems: ctx.flags['only-problems'] === true,
    readiness: ctx.flags.readiness === true,
    ...(prometheus !== undefined ? { prometheus: path.resolve(prometheus) } : {}),
  };
}

type FullReport = CheckReport & {
  lastSuccessfulRun?: Date;
  readiness?: { name: string; check: string; ok: boolean }[];
};

export async function checkCommand(ctx: CommandContext): Promise<number> {
  let report: FullReport;
  let flags: ParsedFlags;
  try {
    flags = parseFlags(ctx);
    const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
    // A one-shot run: nothing else waits on the event loop while files are read, and many
    // endpoints may be probed from worker threads.
    report = await runCheck(
      config,
      { ...flags.options, syncFileReads: true, probeThreads: true },
      {
        now: systemClock.now(),
        signal: ctx.signal,
        log: ctx.log,
      },
    );
    if (config.certificates.length > 0 && (flags.options.names ?? []).length === 0) {
      report = await withLivenessRow(report, config);
    }
    if (flags.readiness) report = await withReadinessRows(report, config, flags.options.names ?? [], ctx);
    if (config.fleet) report = await withFleetRows(report, config, ctx);
  } catch (err) {
    return unknownExit(ctx, err);
  }

  let status = report.status;
  let metricsError: string | undefined;
  if (flags.prometheus !== undefined) {
    try {
      const { buildMetricsRegistry, checkResultMetrics, writeTextfile } = await import('../metrics/registry');
      const registry = await buildMetricsRegistry(report.results.map(checkResultMetrics), {
        checkedAt: report.checkedAt,
        ...(report.lastSuccessfulRun ? { lastSuccessfulRun: report.lastSuccessfulRun } : {}),
        ...(report.readiness ? { readiness: report.readiness } : {}),
      });
      await writeTextfile(registry, flags.prometheus);
    } catch (err) {
      metricsError = `check: cannot write metrics to ${flags.prometheus}: ${describeError(err)}`;
      ctx.log.error(metricsError);
      // The plugin's own output failed: UNKNOWN (3) whatever the rows say, as README states, so a
      // broken metrics pipeline is not mistaken for (or hidden behind) a certificate's state.
      // The rows' own status stays in the status line, the table and the JSON summary.
      status = 'unknown';
    }
  }

  ctx.stdout.write(
    ctx.global.json
      ? JSON.stringify(reportJson(report, status, flags.onlyProblems, metricsError), null, 2) + '\n'
      : formatCheck(report, {
          onlyProblems: flags.onlyProblems,
          status,
          ...(metricsError ? { metricsError } : {}),
        }),
  );
  return EXIT_CODE_OF_STATUS[status];
}

/** The `renewer` row (src/inspect/liveness.ts): is something still renewing these certificates? */
async function withLivenessRow(
  report: CheckReport,
  config: AgentConfig,
): Promise<CheckReport & { lastSuccessfulRun?: Date }> {
  const { assessLiveness } = await import('../inspect/liveness');
  const { lastRunPath, readLastRun } = await import('../daemon/last-run');
  const stateDir = config.storage.stateDir;
  const read = await readLastRun(stateDir).then(
    (lastRun) => ({ lastRun }),
    (err: unknown) => ({ lastRun: undefined, error: describeError(err) }),
  );
  const row = assessLiveness({
    ...read,
    path: lastRunPath(stateDir),
    now: report.checkedAt,
    silentAfterMs: config.daemon.silentAfterMs,
  });
  const results = row ? [...report.results, row] : report.results;
  return {
    ...report,
    results,
    status: worstStatus(results.map((r) => r.status)),
    ...(read.lastRun ? { lastSuccessfulRun: read.lastRun.at } : {}),
  };
}

/** Fleet mode: one row per node, fleet-node-stale for what it does not serve (src/fleet/check.ts). */
async function withFleetRows(
  report: FullReport,
  config: AgentConfig,
  ctx: CommandContext,
): Promise<FullReport> {
  const { fleetCheckRows } = await import('../fleet');
  const rows = await fleetCheckRows(config, report.results, { log: ctx.log, signal: ctx.signal });
  const results = [...report.results, ...rows];
  return { ...report, results, status: worstStatus(results.map((r) => r.status)) };
}

/** `--readiness`: one row per selected managed certificate, each failed check a finding. */
async function withReadinessRows(
  report: FullReport,
  config: AgentConfig,
  names: readonly string[],
  ctx: CommandContext,
): Promise<FullReport> {
  const { runReadiness, readinessRows, withWatchedAri } = await import('../inspect/readiness');
  const readiness = await runReadiness(config, {
    now: report.checkedAt,
    signal: ctx.signal,
    log: ctx.log,
    ...(names.length > 0 ? { names } : {}),
  });
  const watched = await withWatchedAri(config, report.results, {
    now: report.checkedAt,
    signal: ctx.signal,
    log: ctx.log,
  });
  const results = [...watched, ...readinessRows(readiness)];
  return {
    ...report,
    results,
    status: worstStatus(results.map((r) => r.status)),
    readiness: readiness.results.flatMap((r) =>
      r.checks.map((c) => ({ name: r.name, check: c.check, ok: c.ok })),
    ),
  };
}

/** Everything that kept the check from running: UNKNOWN, with the reason on stdout (the status line) and in the log. */
function unknownExit(ctx: CommandContext, err: unknown): number {
  const cancelled = err instanceof CertpilotError && (err.code === 'ABORTED' || err.code === 'TIMEOUT');
  if (isUserError(err) || cancelled) {
    ctx.log.error(describeError(err).split('\n')[0] ?? 'check failed');
  } else {
    ctx.log.error('check: unexpected error (a bug; please report it)', {
      error: describeError(err),
      stack: (err as Error)?.stack,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (ctx.global.json) {
    ctx.stdout.write(
      JSON.stringify(
        {
          schemaVersion: JSON_SCHEMA_VERSION,
          status: 'unknown',
          exitCode: EXIT_CODE_OF_STATUS.unknown,
          checkedAt: systemClock.now().toISOString(),
          summary: { total: 0, ok: 0, warning: 0, critical: 0, unknown: 0 },
          results: [],
          error: {
            message: message.split('\n')[0],
            issues: err instanceof ConfigError ? err.issues.map((i) => ({ ...i })) : [],
          },
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    const [first, ...rest] = message.split('\n');
    ctx.stdout.write(`CERTPILOT UNKNOWN - ${first}\n${rest.map((l) => `${l}\n`).join('')}`);
  }
  return EXIT_CODE_OF_STATUS.unknown;
}

/**
 * The command line itself was refused (an unknown flag, a bad --log-level) before `check` ran:
 * the same UNKNOWN status line (or JSON document, when --json is on the line) and exit 3.
 */
export function checkCommandLineExit(
  err: unknown,
  argv: readonly string[],
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
): number {
  const json = argv.includes('--json');
  return unknownExit(
    {
      args: [],
      flags: {},
      global: { logLevel: 'error', logFormat: 'text', json, staging: false },
      log: createLogger({ level: 'error', format: 'text', stream: stderr }),
      stdout,
      signal: new AbortController().signal,
    },
    err,
  );
}

// ---- output ----------------------------------------------------------------------------------

function summary(results: readonly CheckResult[]): Record<CheckStatus | 'total', number> {
  const s = { total: results.length, ok: 0, warning: 0, critical: 0, unknown: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

/** The finding that decided the row's status (worst severity first, then the order reported). */
function mainFinding(r: CheckResult): Finding | undefined {
  let best: Finding | undefined;
  for (const f of r.findings) if (!best || SEVERITY_RANK[f.severity] > SEVERITY_RANK[best.severity]) best = f;
  return best;
}

function formatLeft(days: number | undefined): string {
  if (days === undefined) return '-';
  const sign = days < 0 ? '-' : '';
  const abs = Math.abs(days);
  if (abs >= 1) return `${sign}${Math.floor(abs)}d${Math.floor((abs % 1) * 24)}h`;
  return `${sign}${Math.floor(abs * 24)}h${Math.floor((abs * 24 * 60) % 60)}m`;
}

function formatExpires(d: Date | undefined): string {
  return d ? `${d.toISOString().slice(0, 16).replace('T', ' ')}Z` : '-';
}

function isProblem(r: CheckResult): boolean {
  return r.status !== 'ok';
}

/** Nagios status line, then a table of the rows (all, or only those not OK). */
export function formatCheck(
  report: CheckReport,
  opts: { onlyProblems?: boolean; status?: CheckStatus; metricsError?: string } = {},
): string {
  const status = opts.status ?? report.status;
  const s = summary(report.results);
  const worst = report.results.find((r) => r.status === report.status && r.status !== 'ok');
  const head =
    report.results.length === 0
      ? 'nothing to check: no certificates or watch entries configured (or selected)'
      : `${s.total} checked: ${s.critical} critical, ${s.warning} warning, ${s.unknown} unknown, ${s.ok} ok`;
  const where = worst && worst.name !== worst.target ? `${worst.name} (${worst.target})` : worst?.name;
  const why = worst ? `; ${where}: ${mainFinding(worst)?.message ?? worst.status}` : '';
  const metrics = opts.metricsError ? `; ${opts.metricsError}` : '';
  // Performance data after "|" (plugin guidelines): counts a grapher can plot over time.
  const perf = `| critical=${s.critical} warning=${s.warning} unknown=${s.unknown} ok=${s.ok}`;
  const lines = [`CERTPILOT ${STATUS_WORD[status]} - ${head}${why}${metrics} ${perf}`];

  const rows = opts.onlyProblems ? report.results.filter(isProblem) : report.results;
  if (rows.length > 0) {
    const table = [
      ['NAME', 'SOURCE', 'EXPIRES', 'LEFT', 'STATUS', 'FINDING'],
      ...rows.map((r) => {
        const f = mainFinding(r);
        const more = r.findings.length > 1 ? ` (+${r.findings.length - 1} more)` : '';
        return [
          r.name,
          `${r.source} ${r.target}`,
          formatExpires(r.certificate?.notAfter),
          formatLeft(r.daysLeft),
          STATUS_WORD[r.status],
          f ? `${f.code}: ${f.message}${more}` : '-',
        ];
      }),
    ];
    const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
    for (const row of table) {
      lines.push(
        row
          .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!)))
          .join('  ')
          .trimEnd(),
      );
    }
  }
  return lines.join('\n') + '\n';
}

function certificateJson(r: CheckResult): unknown {
  const c = r.certificate;
  if (!c) return null;
  return {
    subject: c.subject,
    issuer: c.issuer,
    serial: c.serial,
    names: [...c.names],
    keyType: c.keyType,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    fingerprint256: c.fingerprint256,
    selfSigned: c.selfSigned,
  };
}

/** The `--json` document; its schema is documented in README.md ("certpilot check"). */
export function reportJson(
  report: CheckReport,
  status: CheckStatus = report.status,
  onlyProblems = false,
  metricsError?: string,
): unknown {
  const rows = onlyProblems ? report.results.filter(isProblem) : report.results;
  return {
    schemaVersion: JSON_SCHEMA_VERSION,
    status,
    exitCode: EXIT_CODE_OF_STATUS[status],
    checkedAt: report.checkedAt.toISOString(),
    summary: summary(report.results),
    results: rows.map((r) => ({
      name: r.name,
      managed: r.managed,
      source: r.source,
      target: r.target,
      status: r.status,
      certificate: certificateJson(r),
      daysLeft: r.daysLeft ?? null,
      lifetimeLeftRatio: r.lifetimeLeftRatio ?? null,
      probe:
        r.source === 'endpoint'
          ? {
              success: r.probeSuccess ?? false,
              trusted: r.trusted ?? null,
              trustError: r.trustError ?? null,
              elapsedMs: r.elapsedMs ?? null,
            }
          : null,
      served: r.served ?? null,
      findings: r.findings.map((f) => ({ code: f.code, severity: f.severity, message: f.message })),
    })),
    error: metricsError ? { message: metricsError, issues: [] } : null,
  };
}
