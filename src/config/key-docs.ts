/**
 * Documentation of a key that a section parser (not the convict schema) reads. Each parser
 * file keeps the docs of its keys next to the list of keys it accepts; the configuration
 * reference (docs/configuration.md) is generated from both, so a key accepted without a doc
 * shows up as undocumented and fails the drift test.
 */
export interface KeyDoc {
  /** What the value is: "duration", "absolute path", "list of commands". */
  readonly type: string;
  /** The default as a user would write it, or "required"; absent = not set. */
  readonly default?: string;
  /** One line: what it does. */
  readonly doc: string;
}

export type KeyDocs = Readonly<Record<string, KeyDoc>>;
