import type { LogFormat, LogLevel, Logger } from '../core/logger';

/** What every command gets, and the exit codes it returns (only main.ts exits). */

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface GlobalOptions {
  config?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  json: boolean;
  /** --staging: this run uses the CA's staging directory (see staging.ts). */
  staging: boolean;
}

export interface CommandContext {
  /** Positional arguments after the command name. */
  args: string[];
  /** Parsed flags (command-specific ones included, e.g. force, dry-run). */
  flags: Readonly<Record<string, string | boolean | undefined>>;
  global: GlobalOptions;
  log: Logger;
  stdout: NodeJS.WritableStream;
  signal: AbortSignal;
}
