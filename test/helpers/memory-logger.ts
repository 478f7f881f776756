import { redact, type LogLevel, type Logger } from '../../src/core/logger';

/** Collects log records in memory; tests use it to assert on logs and on secrets not leaking. */
export interface MemoryLogger extends Logger {
  readonly records: { level: LogLevel; message: string; meta: Record<string, unknown> }[];
}

/** Records are redacted as the real logger redacts them, so leak tests see what would be written. */
export function memoryLogger(
  base: Record<string, unknown> = {},
  sink?: MemoryLogger['records'],
): MemoryLogger {
  const records = sink ?? [];
  const push = (level: LogLevel) => (message: string, meta?: Record<string, unknown>) =>
    void records.push({
      level,
      message,
      meta: redact({ ...base, ...(meta ?? {}) }) as Record<string, unknown>,
    });
  return {
    records,
    debug: push('debug'),
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
    child: (meta) => memoryLogger({ ...base, ...meta }, records),
  };
}
