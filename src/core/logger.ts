import type winston from 'winston';
import { redact } from './redact';

/**
 * Structured logging. Call sites log a short message and a metadata object:
 * `log.info('order ready', { cert, names })`. Nothing secret may be passed in; as a second
 * line of defence every record (message included) goes through redact() before anything is
 * written: registered secret values, PEM private keys and fields with secret names are masked.
 */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
  child(meta: Record<string, unknown>): Logger;
}

export type LogFormat = 'text' | 'json';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; default stderr so stdout stays for command output. */
  stream?: NodeJS.WritableStream;
}

/** The one redaction policy (src/core/redact.ts); re-exported for existing importers. */
export { redact };

type Winston = typeof winston;
let loaded: Winston | undefined;

/**
 * winston (with its colour, stream and diagnostics modules) costs more start-up time than the
 * rest of the CLI together, so it loads on the first logger, not on import: `--version`,
 * `--help` and usage errors never pay for it.
 */
function loadWinston(): Winston {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('winston') as Winston;
  return loaded;
}

function redactFormat(w: Winston): winston.Logform.Format {
  return w.format((info) => {
    const cleaned = redact({ ...info }) as winston.Logform.TransformableInfo;
    for (const key of Object.keys(cleaned)) (info as Record<string, unknown>)[key] = cleaned[key];
    return info;
  })();
}

function textLine(info: winston.Logform.TransformableInfo): string {
  const { level, message, timestamp, ...rest } = info as Record<string, unknown>;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp)} ${String(level).padEnd(5)} ${String(message)}${fields ? ' ' + fields : ''}`;
}

const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * The logger call sites get. winston is loaded and its logger built on the first record the
 * configured level lets through, not before: a quiet run (a timer's `renew --log-level warn`
 * with nothing due, `check` with its error-level logger) never loads it, and what is written
 * is exactly what winston writes. Children keep their fields and build their winston child on
 * their own first record; nested fields merge as winston's nested children do (inner wins,
 * outer keys first).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  let root: winston.Logger | undefined;
  const build = (): winston.Logger => (root ??= buildWinston(options, level));
  return lazyLogger(RANK[level] ?? RANK.info, build, undefined);
}

function buildWinston(options: LoggerOptions, level: LogLevel): winston.Logger {
  const winston = loadWinston();
  const format =
    options.format === 'json'
      ? winston.format.combine(redactFormat(winston), winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          redactFormat(winston),
          winston.format.timestamp(),
          winston.format.printf(textLine),
        );
  return winston.createLogger({
    level,
    format,
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
  });
}

function lazyLogger(
  max: number,
  root: () => winston.Logger,
  fields: Record<string, unknown> | undefined,
): Logger {
  let own: winston.Logger | undefined;
  const target = (): winston.Logger => (own ??= fields ? root().child(fields) : root());
  const at =
    (lvl: LogLevel) =>
    (m: string, meta?: Record<string, unknown>): void => {
      if (RANK[lvl] <= max) void target()[lvl](m, meta ?? {});
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (meta) => lazyLogger(max, root, fields ? { ...fields, ...meta } : meta),
  };
}

/** A logger that drops everything (library use, tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
