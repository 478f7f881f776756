import { EOL } from 'node:os';
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

/**
 * The lines are written here, not by winston: winston and its ~80 modules (streams, colours,
 * diagnostics) cost a long-running daemon about 10 MB of resident memory for what is two line
 * formats. The output is the one winston 3 produced with the formats certpilot used (redact,
 * timestamp, then `json` or the text line below), byte for byte: `{...child meta, ...meta,
 * level, message}` (a `message` field in the metadata is appended to the message, as winston
 * did), `timestamp` added last, JSON with keys sorted at every level (logform's
 * safe-stable-stringify), one line per record ending in os.EOL.
 */
const LEVEL_RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

function textLine(info: Record<string, unknown>): string {
  const { level, message, timestamp, ...rest } = info;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp)} ${String(level).padEnd(5)} ${String(message)}${fields ? ' ' + fields : ''}`;
}

/**
 * JSON with object keys sorted, `toJSON` honoured, bigints as strings and cycles as
 * "[Circular]": what logform's json format (safe-stable-stringify) wrote.
 */
function stableJson(value: unknown, ancestors: object[] = []): string | undefined {
  let v = value;
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function')
    v = (v as { toJSON(): unknown }).toJSON();
  if (typeof v === 'bigint') return JSON.stringify(v.toString());
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (ancestors.includes(v)) return '"[Circular]"';
  ancestors.push(v);
  let out: string;
  if (Array.isArray(v)) {
    out = `[${v.map((item) => stableJson(item, ancestors) ?? 'null').join(',')}]`;
  } else {
    const parts: string[] = [];
    for (const key of Object.keys(v).sort()) {
      const item = stableJson((v as Record<string, unknown>)[key], ancestors);
      if (item !== undefined) parts.push(`${JSON.stringify(key)}:${item}`);
    }
    out = `{${parts.join(',')}}`;
  }
  ancestors.pop();
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LEVEL_RANK[options.level ?? 'info'];
  const stream = options.stream ?? process.stderr;
  const format = options.format === 'json' ? (i: Record<string, unknown>) => stableJson(i)! : textLine;
  const write = (level: LogLevel, message: string, context: Record<string, unknown>, meta = {}): void => {
    if (LEVEL_RANK[level] > threshold) return;
    const m = meta as Record<string, unknown>;
    const info: Record<string, unknown> = { ...context, ...m, level, message };
    if (m.message) info.message = `${message} ${String(m.message)}`;
    if (m.stack) info.stack = m.stack;
    if (m.cause) info.cause = m.cause;
    const cleaned = redact(info) as Record<string, unknown>;
    // As logform's timestamp format: a `timestamp` field in the metadata is kept.
    if (!cleaned.timestamp) cleaned.timestamp = new Date().toISOString();
    stream.write(format(cleaned) + EOL);
  };
  const make = (context: Record<string, unknown>): Logger => ({
    debug: (m, meta) => write('debug', m, context, meta),
    info: (m, meta) => write('info', m, context, meta),
    warn: (m, meta) => write('warn', m, context, meta),
    error: (m, meta) => write('error', m, context, meta),
    child: (meta) => make({ ...context, ...meta }),
  });
  return make({});
}

/** A logger that drops everything (library use, tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
