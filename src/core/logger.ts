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
 * The records and lines are exactly what the winston setup this replaced wrote (npm levels,
 * `logger.log(level, message, meta)` merging, `child()` metadata first, a redact step, an ISO
 * timestamp, then the text line or winston's JSON: safe-stable-stringify with sorted keys), so
 * logs read the same. winston and its 80 modules were a third of the CPU time of a `renew`
 * that has nothing to do (bench/README.md); this is one small module and writes synchronously.
 */
type Fields = Record<string, unknown>;

/** os.EOL's own definition, without loading node:os into `--version` and `--help`. */
const EOL = process.platform === 'win32' ? '\r\n' : '\n';

/** npm's levels, as winston numbers them: a record is written when its level is at most the logger's. */
const SEVERITY: Readonly<Record<string, number>> = {
  error: 0,
  warn: 1,
  info: 2,
  http: 3,
  verbose: 4,
  debug: 5,
  silly: 6,
};

/**
 * winston leaves the metadata out when the message holds a printf placeholder (it expects a
 * `splat` format, which this setup never had); kept so that such lines do not change.
 */
const PLACEHOLDER = /%[scdjifoO%]/;

/** The keys object-mode streams find the level and the line under (winston's triple-beam symbols). */
const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

function recordOf(level: string, message: string, meta: unknown): Fields {
  if (typeof meta !== 'object' || meta === null || (typeof message === 'string' && PLACEHOLDER.test(message)))
    return { level, message };
  const record: Fields = Object.assign({}, meta, { level, message });
  const extra = (meta as Fields).message;
  if (extra) record.message = `${message} ${String(extra)}`;
  return record;
}

function textLine(info: Fields): string {
  const { level, message, timestamp, ...rest } = info;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(timestamp)} ${String(level).padEnd(5)} ${String(message)}${fields ? ' ' + fields : ''}`;
}

function isTypedArrayWithEntries(value: object): boolean {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) && (value as Uint8Array).length !== 0;
}

/**
 * JSON with object keys sorted, `"[Circular]"` for a cycle and BigInts as strings: what
 * winston's json format (safe-stable-stringify, default options) printed.
 */
function stableJson(parent: Fields, key: string, stack: object[]): string | undefined {
  let value = parent[key];
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  )
    value = (value as { toJSON(k: string): unknown }).toJSON(key);
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (value === null) return 'null';
      if (stack.includes(value)) return '"[Circular]"';
      stack.push(value);
      let out: string;
      if (Array.isArray(value)) {
        out = `[${value.map((_, i) => stableJson(value as unknown as Fields, String(i), stack) ?? 'null').join(',')}]`;
      } else {
        const keys = Object.keys(value);
        if (!isTypedArrayWithEntries(value)) keys.sort();
        const parts: string[] = [];
        for (const k of keys) {
          const v = stableJson(value as Fields, k, stack);
          if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
        }
        out = `{${parts.join(',')}}`;
      }
      stack.pop();
      return out;
    }
    default:
      return undefined;
  }
}

function jsonLine(info: Fields): string {
  return stableJson({ '': info }, '', []) ?? '';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const threshold = SEVERITY[options.level ?? 'info'] ?? -1;
  const render = options.format === 'json' ? jsonLine : textLine;
  const objectMode =
    (stream as { _writableState?: { objectMode?: boolean } })._writableState?.objectMode === true;
  const write = (record: Fields): void => {
    const level = String(record.level);
    if (!((SEVERITY[level] ?? Infinity) <= threshold)) return;
    const info = redact(record) as Fields;
    // A `timestamp` field of the caller's is kept (winston's timestamp format did the same).
    if (!info.timestamp) info.timestamp = new Date().toISOString();
    const line = render(info);
    if (objectMode) stream.write(Object.assign(info, { [LEVEL]: level, [MESSAGE]: line }) as never);
    else stream.write(`${line}${EOL}`);
  };
  return loggerOver(write);
}

/** `child(meta)` puts its fields before the record's, as winston's did; the record wins a clash. */
function loggerOver(write: (record: Fields) => void): Logger {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: Fields): void =>
      write(recordOf(level, message, meta ?? {}));
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (meta) => loggerOver((record) => write(Object.assign({}, meta, record))),
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
