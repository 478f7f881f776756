import {
  absolutePath,
  bool,
  isSet,
  knownKeys,
  label,
  listOf,
  listOfValues,
  mapping,
  oneOfShapes,
  optional,
  required,
  valueAt,
} from './combinators';
import { parseEntryThresholds, THRESHOLD_KEY_DOCS, THRESHOLD_KEYS } from './check';
import type { KeyDocs } from './key-docs';
import { parseEndpoint } from './endpoints';
import { parseCertificateDomain } from './formats';
import { childPath, describeType, isPlainObject, type IssueList } from './issues';
import type { ThresholdSettings, WatchedEndpoint, WatchedFile, WatchSettings } from './types';

/**
 * The `watch:` section: PEM files and TLS endpoints certpilot does not manage but reports on
 * in `certpilot check`. A file holding only `watch` is a valid configuration: nothing here
 * requires an ACME account or a DNS provider, and `certpilot check` never opens either.
 */

export const WATCH_KEYS = ['files', 'endpoints'];
export const FILE_KEYS = ['path', 'name', 'key', 'checkChain', 'names', ...THRESHOLD_KEYS];
/** Keys a watched endpoint has beyond those of any endpoint (src/config/endpoints.ts). */
export const WATCH_ENDPOINT_EXTRA_KEYS = ['name', 'names', ...THRESHOLD_KEYS];

export const WATCH_KEY_DOCS: KeyDocs = {
  files: {
    type: 'list',
    default: '`[]`',
    doc: 'PEM files certpilot does not manage: a path or glob, or a mapping.',
  },
  endpoints: {
    type: 'list',
    default: '`[]`',
    doc: 'TLS endpoints, whatever they serve: `"host:port"` or a mapping.',
  },
};

const NAMES_DOC = { type: 'list of DNS names', doc: 'Names the certificate must cover (`names-differ`).' };

export const FILE_KEY_DOCS: KeyDocs = {
  path: {
    type: 'absolute path or glob',
    default: 'required',
    doc: 'PEM file(s): the leaf first, then the chain; a pattern matching nothing is UNKNOWN.',
  },
  name: { type: 'string', default: 'the path', doc: 'Row name in `check` output and metrics.' },
  key: { type: 'absolute path', doc: 'Private key to check against the certificate (`key-mismatch`).' },
  checkChain: {
    type: 'boolean',
    default: '`true`',
    doc: 'Report a missing or out-of-order chain; `false` for a leaf-only file.',
  },
  names: NAMES_DOC,
  ...THRESHOLD_KEY_DOCS,
};

export const WATCH_ENDPOINT_KEY_DOCS: KeyDocs = {
  name: { type: 'string', default: '`host:port`', doc: 'Row name; `certpilot check NAME` selects it.' },
  names: NAMES_DOC,
  ...THRESHOLD_KEY_DOCS,
};
/** The chain is checked unless the entry says the file holds the leaf alone on purpose. */
const DEFAULT_CHECK_CHAIN = true;

/** `names:` of an entry: the DNS names its certificate must cover; unset = not checked. */
function parseNames(m: Record<string, unknown>, base: string, issues: IssueList): string[] | undefined {
  const raw = m.names;
  if (!isSet(raw)) return undefined;
  const p = childPath(base, 'names');
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.add(p, `must be a non-empty list of DNS names, not ${describeType(raw)}`);
    return undefined;
  }
  const out = listOfValues(raw, p, issues, parseCertificateDomain);
  return out.length === raw.length ? out : undefined;
}

function parseWatchedFileMapping(
  m: Record<string, unknown>,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): WatchedFile | undefined {
  knownKeys(m, FILE_KEYS, base, issues);
  const file = required(m, 'path', base, issues, absolutePath, 'required: an absolute path or glob pattern');
  const name = optional(m, 'name', base, issues, label);
  const key = optional(m, 'key', base, issues, absolutePath);
  const checkChain = optional(m, 'checkChain', base, issues, bool) ?? DEFAULT_CHECK_CHAIN;
  const names = parseNames(m, base, issues);
  const thresholds = parseEntryThresholds(m, base, global, issues);
  if (file === undefined || issues.hasAt(base)) return undefined;
  return {
    path: file,
    ...(name !== undefined ? { name } : {}),
    ...(key !== undefined ? { key } : {}),
    checkChain,
    ...(names ? { names } : {}),
    thresholds,
  };
}

/** A path or glob alone, or a mapping with path and the entry's own settings. */
function parseWatchedFile(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): WatchedFile | undefined {
  return oneOfShapes<WatchedFile>(raw, base, issues, 'an absolute path (or glob) or a mapping with path', {
    string: (s) => {
      const file = valueAt(s, base, issues, absolutePath);
      return file === undefined ? undefined : { path: file, checkChain: DEFAULT_CHECK_CHAIN, thresholds: {} };
    },
    mapping: (m) => parseWatchedFileMapping(m, base, global, issues),
  });
}

/**
 * Host, port, SNI name, connect address, CA bundle and STARTTLS are parsed by the endpoint
 * parser that `certificates[].endpoints` uses (same rules, including the "host:port"
 * shorthand); the keys only a watched endpoint has are parsed here.
 */
function parseWatchedEndpoint(
  raw: unknown,
  base: string,
  global: ThresholdSettings,
  issues: IssueList,
): WatchedEndpoint | undefined {
  const endpoint = parseEndpoint(raw, base, issues, WATCH_ENDPOINT_EXTRA_KEYS);
  if (typeof raw !== 'string' && !isPlainObject(raw)) return undefined;
  const m = isPlainObject(raw) ? raw : {};
  const name = optional(m, 'name', base, issues, label);
  const names = parseNames(m, base, issues);
  const thresholds = parseEntryThresholds(m, base, global, issues);
  if (!endpoint || issues.hasAt(base)) return undefined;
  return { ...endpoint, ...(name !== undefined ? { name } : {}), ...(names ? { names } : {}), thresholds };
}

/** The `watch:` section; undefined when the file has none. */
export function parseWatchSection(
  raw: unknown,
  global: ThresholdSettings,
  issues: IssueList,
): WatchSettings | undefined {
  const m = mapping(raw, 'watch', issues, {
    keys: WATCH_KEYS,
    what: 'a mapping with files and/or endpoints',
  });
  if (!m) return undefined;
  const files = listOf(m.files, 'watch.files', issues, (f, p) => parseWatchedFile(f, p, global, issues));
  const endpoints = listOf(m.endpoints, 'watch.endpoints', issues, (e, p) =>
    parseWatchedEndpoint(e, p, global, issues),
  );
  return { files, endpoints };
}
