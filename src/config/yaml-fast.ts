import { load, Schema, Type } from 'js-yaml';

/**
 * A fast reading of the configuration YAML, for the documents whose meaning it can give
 * exactly; `undefined` for every other document, which then goes to the `yaml` package (the
 * reference reading: its errors, alias bound and octal modes are what users see, see file.ts).
 *
 * Why two parsers: `yaml` builds a full document model (every token, range and comment) before
 * the plain value. For a 1,000-certificate configuration that took about 200 ms of a no-op
 * renew's 1 s, and as much of a 1,000-endpoint `check`; js-yaml builds the value directly, in
 * about a sixth of the time. Speed must not change a single value, so this path takes only
 * what both parsers read alike and hands everything else on:
 *
 * - Plain scalars resolve by the YAML 1.2 core schema rules exactly as `yaml` applies them
 *   (the same patterns, in the same order, with the same conversions), not js-yaml's own
 *   variants (it also reads 0b binary and signed hex).
 * - Any tag is refused: a `!` where a node can start sends the text on, and the schema has no
 *   type a document could name anyway (its tags contain a space, which no YAML tag can).
 * - A line starting with `---` or `...` other than the marker alone sends the text on (`yaml`
 *   refuses some content after `---`; js-yaml reads `------` as a marker).
 * - An alias is refused before parsing: `yaml` bounds how far aliases expand and js-yaml does
 *   not. A `*` where a node can start (after a space, a line start or a flow indicator) sends
 *   the text on; a `*` inside a word or a path (`/etc/ssl/*.pem`) does not.
 * - A key that may be a collection (after `?`, or a flow collection before `:`) is refused
 *   before parsing: the two parsers print such a key differently.
 * - A quoted scalar or flow collection that continues on another line, a line longer than
 *   1,024 characters, a directive (`%YAML 1.1` changes the schema), a carriage return, an
 *   anchor, a block scalar with an indentation indicator or at the start of a line, a tab in
 *   indentation, an indented first line, or a comment glued to a quote or bracket sends the
 *   text on: in each the two parsers were seen to disagree (js-yaml accepts some continuation
 *   lines, implicit keys, anchors and indentation `yaml` refuses, and reads a lone CR as a
 *   line break).
 * - A null key is the empty string to `yaml` and "null" to js-yaml: a key of either spelling
 *   sends the document on.
 * - Every js-yaml error (syntax, duplicate key, stack overflow) sends the document on, so
 *   messages, positions and the list of problems come from `yaml` as before.
 *
 * test/config/yaml-fast.test.ts checks the two readings against each other on the shipped
 * examples, on scalars of every kind, on each difference fuzzing found and on thousands of
 * mutated documents (docs/decisions.md §10 says how the rules were found).
 */

/** Keys whose plain numbers stay source text (file modes: `0644` is octal to the operator). */
export const MODE_KEYS: ReadonlySet<string> = new Set(['mode', 'keyMode']);

/**
 * A plain number with its source text, while the document is read: a mode key's value becomes
 * the text (as file.ts does for `yaml`), every other the number. Printable as its number,
 * because js-yaml turns a key into a string before this module sees it.
 */
class PlainNumber {
  constructor(
    readonly source: string,
    readonly value: number,
  ) {}
  get [Symbol.toStringTag](): string {
    return 'PlainNumber';
  }
  toString(): string {
    return String(this.value);
  }
}

/** A resolver for plain scalars only; its tag cannot be written in a document. */
function plain(name: string, pattern: RegExp, construct: (text: string) => unknown): Type {
  return new Type(`certpilot core ${name}`, {
    kind: 'scalar',
    resolve: (data: unknown) => typeof data === 'string' && pattern.test(data),
    construct,
  });
}

const number = (text: string, value: number): PlainNumber => new PlainNumber(text, value);

/** The `yaml` package's core schema (YAML 1.2.2 §10.3.2), in its order. */
const CORE = new Schema({
  implicit: [
    plain('null', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    plain('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T'),
    plain('int-oct', /^0o[0-7]+$/, (s) => number(s, parseInt(s.substring(2), 8))),
    plain('int', /^[-+]?[0-9]+$/, (s) => number(s, parseInt(s, 10))),
    plain('int-hex', /^0x[0-9a-fA-F]+$/, (s) => number(s, parseInt(s.substring(2), 16))),
    plain('float-nan', /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, (s) =>
      number(s, s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity),
    ),
    plain('float-exp', /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, (s) =>
      number(s, parseFloat(s)),
    ),
    plain('float', /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/, (s) => number(s, parseFloat(s))),
  ],
});

/**
 * Texts only `yaml` reads. A `*` where a node can begin: an alias (or a plain scalar `yaml`
 * refuses). A `?` key indicator, or a flow collection followed by `:`: a key that may be a
 * collection, which the two parsers turn into different strings. And the two below.
 */
const HAND_ON = [
  /(?:^|[\s[{,:])\*/,
  /(?:^|[\s[{,])\?(?:\s|$)/,
  /[\]}]\s*:(?:\s|$)/,
  // A tag, the non-specific `!` included (`yaml` reads `k: !` as "", js-yaml as null).
  /(?:^|[\s[{,:])!/,
  // An anchor: harmless alone, but `yaml` refuses two on one node and js-yaml does not.
  /(?:^|[\s[{,:])&/,
  // A block scalar with an explicit indentation indicator, or one that starts a line (the
  // root node, or a value below its key): the two disagree on where some of those end.
  /[|>][-+]?[1-9]|[|>][1-9]/,
  /^[ \t]*[|>]/m,
  // A line that starts with `---` or `...` and is not that marker alone (with a comment at
  // most): `yaml` refuses a block collection after `---`, and js-yaml reads `------` as a
  // marker and `---`.
  /^(?:---|\.\.\.)(?![ \t]*$|[ \t]+#.*$)/m,
  // A document whose first line of content is indented: js-yaml accepts later lines that are
  // indented less, `yaml` does not.
  /^(?:[ \t]*(?:#.*)?(?:\n|$)|---[ \t]*(?:[ \t]#.*)?\n)*[ \t]+[^\s#]/,
  // A comment right after a quote or a bracket: `yaml` wants white space before it.
  /["'\]}]#/,
  // A tab in a line's leading white space: `yaml` refuses tabs as indentation, js-yaml reads
  // some of them as separation.
  /^ *\t/m,
];

/**
 * Whether every line stands alone: no quoted scalar or flow collection continues on the next
 * line, and no line is longer than an implicit key may be (1,024 characters). js-yaml accepts
 * a continuation line that is not indented past its parent block, where `yaml` reports an
 * error; the quotes and brackets of each line are counted (an apostrophe in a plain value or
 * a bracket in a comment only sends the document on, to be read as before).
 */
function linesStandAlone(content: string): boolean {
  let double = 0;
  let single = 0;
  let open = 0;
  let length = 0;
  let comment = false;
  for (let i = 0; i <= content.length; i++) {
    const c = i < content.length ? content.charCodeAt(i) : 10;
    if (c === 10) {
      if ((double & 1) !== 0 || (single & 1) !== 0 || open !== 0 || length > 1024) return false;
      double = single = open = length = 0;
      comment = false;
      continue;
    }
    length++;
    if (comment) continue;
    if (
      c === 35 &&
      (double & 1) === 0 &&
      (single & 1) === 0 &&
      (i === 0 || isBlank(content.charCodeAt(i - 1)))
    ) {
      // ` #` outside quotes: the rest of the line is a comment (its apostrophes do not count).
      comment = true;
    } else if (c === 34) {
      // An escaped quote inside a double-quoted scalar would upset the count.
      if (i > 0 && content.charCodeAt(i - 1) === 92) return false;
      double++;
    } else if (c === 39) single++;
    else if (c === 91 || c === 123) open++;
    else if (c === 93 || c === 125) open--;
  }
  return true;
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 10;

class HandOn extends Error {}

/**
 * The value with every PlainNumber replaced; throws HandOn for a shared collection (an alias
 * that slipped past HAND_ON) or a null key.
 */
function finish(value: unknown, seen: Set<object>, key?: string): unknown {
  if (value instanceof PlainNumber)
    return key !== undefined && MODE_KEYS.has(key) ? value.source : value.value;
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) throw new HandOn();
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = finish(value[i], seen);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const k of Object.keys(record)) {
    if (k === '' || k === 'null') throw new HandOn();
    const before = record[k];
    const after = finish(before, seen, k);
    // Defined, not assigned: an own `__proto__` key must stay a key, not become the prototype.
    if (after !== before)
      Object.defineProperty(record, k, {
        value: after,
        writable: true,
        enumerable: true,
        configurable: true,
      });
  }
  return value;
}

/** The document's value, or undefined when only the `yaml` package may read it. */
export function readYamlFast(text: string): unknown {
  // Whole-line comments say nothing to either parser (a `*` in one is not an alias).
  const content = text.replace(/^[ \t]*#.*$/gm, '');
  if (
    HAND_ON.some((re) => re.test(content)) ||
    /^%/m.test(content) ||
    // A carriage return: js-yaml reads a lone one as a line break, `yaml` as text in places,
    // and the two differ on CRLF in some block scalars.
    text.includes('\r') ||
    !linesStandAlone(content)
  )
    return undefined;
  try {
    const value = load(text, { schema: CORE });
    // An empty document: `yaml` reads it as null.
    return finish(value === undefined ? null : value, new Set());
  } catch {
    return undefined;
  }
}
