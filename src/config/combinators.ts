import { childPath, describeType, isPlainObject, type IssueList } from './issues';
import { registerSecret } from '../core/redact';
import { parseAbsolutePath, parseBoolean, parseDuration, parseInteger } from './formats';
import type { SecretRef } from './types';

/**
 * The small combinators every section parser is built from: a mapping with known keys, a
 * list, one of several shapes, an optional or required field, a secret given inline or as a
 * file, and a few value parsers (one of a set of strings, integers, durations, paths). Each takes the raw value, its path and the one IssueList of the load: a problem is
 * recorded at its path and parsing goes on, so the user sees every problem in one run. A
 * combinator returns undefined (or an empty list) for a value it could not use; the caller
 * decides whether that makes the enclosing entry unusable (usually: `issues.hasAt(base)`).
 *
 * Value parsers (`ValueParser`, mostly in formats.ts) throw an Error whose message is shown
 * after the path; `valueAt` turns that into an issue. They never quote a secret.
 */

export type ValueParser<T> = (value: unknown) => T;

/** YAML `key:` with nothing after it is null: both null and absent mean "not set". */
export function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** Runs a value parser; a thrown message becomes an issue at `path`. */
export function valueAt<T>(
  raw: unknown,
  path: string,
  issues: IssueList,
  parse: ValueParser<T>,
): T | undefined {
  try {
    return parse(raw);
  } catch (e) {
    issues.add(path, (e as Error).message);
    return undefined;
  }
}

/** `m[key]` through `parse` when it is set; undefined when it is not (or is invalid). */
export function optional<T>(
  m: Record<string, unknown>,
  key: string,
  base: string,
  issues: IssueList,
  parse: ValueParser<T>,
): T | undefined {
  return isSet(m[key]) ? valueAt(m[key], childPath(base, key), issues, parse) : undefined;
}

/** Like `optional`, but a key that is not set is an issue: `missing` says what belongs there. */
export function required<T>(
  m: Record<string, unknown>,
  key: string,
  base: string,
  issues: IssueList,
  parse: ValueParser<T>,
  missing: string,
): T | undefined {
  if (!isSet(m[key])) {
    issues.add(childPath(base, key), missing);
    return undefined;
  }
  return valueAt(m[key], childPath(base, key), issues, parse);
}

/** Strict mappings: every key not in `allowed` is a problem at its own path. */
export function knownKeys(
  raw: Record<string, unknown>,
  allowed: readonly string[],
  base: string,
  issues: IssueList,
): void {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key))
      issues.add(childPath(base, key), `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

export interface MappingOptions {
  /** The allowed keys; others are issues. Absent = any key (an open map). */
  readonly keys?: readonly string[];
  /** What belongs here, for "must be <what>, not a list" (default "a mapping"). */
  readonly what?: string;
  /**
   * Not set is a problem too: with this message, or with true the same "must be <what>, not
   * null" as any other wrong value (default: not set = undefined, no issue).
   */
  readonly missing?: string | true;
}

/** A mapping (YAML object) with known keys; not set = undefined. */
export function mapping(
  raw: unknown,
  path: string,
  issues: IssueList,
  opts: MappingOptions = {},
): Record<string, unknown> | undefined {
  if (!isSet(raw) && opts.missing !== true) {
    if (opts.missing !== undefined) issues.add(path, opts.missing);
    return undefined;
  }
  if (!isPlainObject(raw)) {
    issues.add(path, `must be ${opts.what ?? 'a mapping'}, not ${describeType(raw)}`);
    return undefined;
  }
  if (opts.keys) knownKeys(raw, opts.keys, path, issues);
  return raw;
}

/** Parsers for the shapes a value may take; a shape without one is a problem. */
export interface Shapes<T> {
  readonly string?: (raw: string) => T | undefined;
  readonly list?: (raw: unknown[]) => T | undefined;
  readonly mapping?: (raw: Record<string, unknown>) => T | undefined;
}

/**
 * One of several shapes: a shorthand string or a mapping ("host:port" or {host, port}), an argv
 * list or a mapping. Anything else is "must be <what>, not <type>"; not set is the same
 * problem, or `missing` when given.
 */
export function oneOfShapes<T>(
  raw: unknown,
  path: string,
  issues: IssueList,
  what: string,
  shapes: Shapes<T>,
  missing?: string,
): T | undefined {
  if (typeof raw === 'string' && shapes.string) return shapes.string(raw);
  if (Array.isArray(raw) && shapes.list) return shapes.list(raw);
  if (isPlainObject(raw) && shapes.mapping) return shapes.mapping(raw);
  issues.add(
    path,
    !isSet(raw) && missing !== undefined ? missing : `must be ${what}, not ${describeType(raw)}`,
  );
  return undefined;
}

/** A list; not set = empty. */
export function list(raw: unknown, path: string, issues: IssueList, what = 'a list'): unknown[] {
  if (!isSet(raw)) return [];
  if (!Array.isArray(raw)) {
    issues.add(path, `must be ${what}, not ${describeType(raw)}`);
    return [];
  }
  return raw;
}

/** A list whose elements are parsed by `item` at `path[i]`; elements it rejects are left out. */
export function listOf<T>(
  raw: unknown,
  path: string,
  issues: IssueList,
  item: (raw: unknown, path: string, index: number) => T | undefined,
  what = 'a list',
): T[] {
  const out: T[] = [];
  list(raw, path, issues, what).forEach((v, i) => {
    const parsed = item(v, childPath(path, i), i);
    if (parsed !== undefined) out.push(parsed);
  });
  return out;
}

/** A list of values, each through a value parser at `path[i]`. */
export function listOfValues<T>(
  raw: unknown,
  path: string,
  issues: IssueList,
  parse: ValueParser<T>,
  what?: string,
): T[] {
  return listOf(raw, path, issues, (v, p) => valueAt(v, p, issues, parse), what);
}

// ---- value parsers shared by the sections -------------------------------------------------------

/** A non-empty string without NUL (it would truncate an argv or a path at the C boundary). */
export const text: ValueParser<string> = (v) => {
  if (typeof v !== 'string') throw new Error(`must be a string, not ${describeType(v)}`);
  if (v.trim() === '') throw new Error('must not be empty');
  if (v.includes('\0')) throw new Error('must not contain NUL characters');
  return v;
};

/** A display name (rows of `check`, metric labels): one line, trimmed. */
export const label: ValueParser<string> = (v) => {
  if (typeof v !== 'string' || v.trim() === '')
    throw new Error(`must be a non-empty string, not ${describeType(v)}`);
  if (/[\0\r\n]/.test(v)) throw new Error('must not contain line breaks or NUL characters');
  return v.trim();
};

export const bool: ValueParser<boolean> = parseBoolean;
export const duration: ValueParser<number> = parseDuration;
export const absolutePath: ValueParser<string> = parseAbsolutePath;

/** An integer in [min, max]; `message`, when given, replaces both of parseInteger's wordings. */
export function integer(min: number, max: number, message?: string): ValueParser<number> {
  return (v) => {
    if (message === undefined) return parseInteger(v, min, max);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(message);
    return v;
  };
}

/** A finite number in (min, max]; `what` names it in the message ("a number of days"). */
export function numberIn(min: number, max: number, message: (v: unknown) => string): ValueParser<number> {
  return (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= min || v > max) throw new Error(message(v));
    return v;
  };
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(values: readonly T[], message?: string): ValueParser<T> {
  return (v) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      throw new Error(message ?? `must be one of ${values.join(', ')}`);
    return v as T;
  };
}

// ---- secrets ----------------------------------------------------------------------------------

/** Suffix that turns a secret option into "read it from this file". */
export const FILE_SUFFIX = '_file';

/**
 * A secret `key` given inline or as `key_file` (an absolute path, read at use time so the
 * secret can rotate), not both. The message never echoes the value: it is a secret even when
 * it is malformed.
 */
export function secretRef(
  m: Record<string, unknown>,
  key: string,
  base: string,
  issues: IssueList,
): SecretRef | undefined {
  const inline = m[key];
  const file = m[key + FILE_SUFFIX];
  if (inline !== undefined && file !== undefined) {
    issues.add(childPath(base, key), `set ${key} or ${key}${FILE_SUFFIX}, not both`);
    return undefined;
  }
  if (file !== undefined) {
    const f = valueAt(file, childPath(base, key + FILE_SUFFIX), issues, parseAbsolutePath);
    return f === undefined ? undefined : { file: f };
  }
  if (inline === undefined) return undefined;
  if (typeof inline !== 'string' || inline === '') {
    issues.add(childPath(base, key), 'must be a non-empty string');
    return undefined;
  }
  registerSecret(inline);
  return { value: inline };
}
