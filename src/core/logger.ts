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

export function createLogger(options: LoggerOptions = {}): Logger {
  const winston = loadWinston();
  const format =
    options.format === 'json'
      ? winston.format.combine(redactFormat(winston), winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          redactFormat(winston),
          winston.format.timestamp(),
          winston.format.printf(textLine),
        );
  const w = winston.createLogger({
    level: options.level ?? 'info',
    format,
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
  });
  return wrap(w);
}

function wrap(w: winston.Logger): Logger {
  return {
    debug: (m, meta) => void w.debug(m, meta ?? {}),
    info: (m, meta) => void w.info(m, meta ?? {}),
    warn: (m, meta) => void w.warn(m, meta ?? {}),
    error: (m, meta) => void w.error(m, meta ?? {}),
    child: (meta) => wrap(w.child(meta)),
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
