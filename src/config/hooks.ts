import { DEFAULT_HOOK_TIMEOUT_MS, EMPTY_HOOKS } from './defaults';
import {
  absolutePath,
  bool,
  duration,
  knownKeys,
  listOf,
  mapping,
  oneOfShapes,
  optional,
} from './combinators';
import { childPath, describeType, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import type { CommandSpec, HookSet } from './types';

/**
 * Commands and hooks (`hooks:` at the top level and per certificate, and the commands of
 * deploy steps). A command is either a plain argv list (`[nginx, -s, reload]`) or a mapping
 * `{command: [argv...], timeout, cwd, env}`, or `{shell: true, command: "string"}`: a string
 * never reaches a shell unless the file says so.
 */

export const COMMAND_KEYS = ['command', 'shell', 'timeout', 'cwd', 'env'];
export const HOOK_KEYS = ['pre', 'deploy', 'post'];

export const COMMAND_KEY_DOCS: KeyDocs = {
  command: {
    type: 'argv list (string with `shell`)',
    default: 'required',
    doc: 'The program and its arguments; no shell sees them unless `shell: true`.',
  },
  shell: { type: 'boolean', default: '`false`', doc: 'Run `command`, one string, with `/bin/sh -c`.' },
  timeout: { type: 'duration', default: '`1m`', doc: 'The command is killed after this long.' },
  cwd: { type: 'absolute path', doc: 'Working directory.' },
  env: {
    type: 'mapping',
    default: '`{}`',
    doc: 'Extra environment variables (not `CERTPILOT_*`, which certpilot sets).',
  },
};

export const HOOK_KEY_DOCS: KeyDocs = {
  pre: { type: 'list of commands', default: '`[]`', doc: 'Before the run (global) or before the order.' },
  deploy: { type: 'list of commands', default: '`[]`', doc: 'After a new certificate is installed.' },
  post: { type: 'list of commands', default: '`[]`', doc: 'After the run (global) or after the deploy.' },
};

/** HTTP header names are RFC 9110 tokens; anything else would let a value smuggle a header. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkMapKey(key: string, what: 'env' | 'header'): string | undefined {
  if (what === 'env' && !ENV_NAME.test(key))
    return 'environment variable names are letters, digits and "_", not starting with a digit';
  if (what === 'env' && key.startsWith('CERTPILOT_'))
    return 'CERTPILOT_* variables are set by certpilot and cannot be overridden';
  if (what === 'header' && !HEADER_NAME.test(key)) return 'not a valid HTTP header name';
  return undefined;
}

/** Environment variables of a command, or HTTP headers of a webhook: one line of text each. */
export function stringMap(
  raw: unknown,
  path: string,
  issues: IssueList,
  what: 'env' | 'header',
): Record<string, string> {
  const m = mapping(raw, path, issues);
  const out: Record<string, string> = {};
  if (!m) return out;
  for (const [k, v] of Object.entries(m)) {
    const p = childPath(path, k);
    const badKey = checkMapKey(k, what);
    if (badKey) issues.add(p, badKey);
    else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      issues.add(p, `must be a string, not ${describeType(v)}`);
    else if (/[\r\n\0]/.test(String(v))) issues.add(p, 'must not contain line breaks or NUL characters');
    else out[k] = String(v);
  }
  return out;
}

function argvOf(raw: unknown, path: string, issues: IssueList): string[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) {
    issues.add(path, `must be a non-empty list of arguments (argv), not ${describeType(raw)}`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((a, i) => {
    if (typeof a === 'number') out.push(String(a));
    else if (typeof a !== 'string')
      issues.add(childPath(path, i), `must be a string, not ${describeType(a)}`);
    else if (a.includes('\0')) issues.add(childPath(path, i), 'must not contain NUL characters');
    else out.push(a);
  });
  if (out[0] === '') issues.add(childPath(path, 0), 'program must not be empty');
  return out.length === raw.length ? out : undefined;
}

/** The argv or shell string of a command mapping. */
function commandLine(
  m: Record<string, unknown>,
  shell: boolean,
  path: string,
  issues: IssueList,
): Pick<CommandSpec, 'argv' | 'shell'> {
  const cp = childPath(path, 'command');
  if (shell) {
    if (typeof m.command === 'string' && m.command.trim() !== '') return { shell: m.command };
    issues.add(cp, 'with shell: true, command must be one non-empty string for /bin/sh -c');
    return {};
  }
  if (typeof m.command === 'string') {
    issues.add(cp, 'must be an argv list; a string is run by a shell only with shell: true');
    return {};
  }
  const argv = argvOf(m.command, cp, issues);
  return argv ? { argv } : {};
}

function parseCommandMapping(
  m: Record<string, unknown>,
  path: string,
  issues: IssueList,
  defaultTimeoutMs: number,
): CommandSpec | undefined {
  knownKeys(m, COMMAND_KEYS, path, issues);
  const before = issues.size;
  const shell = optional(m, 'shell', path, issues, bool) ?? false;
  const timeoutMs = optional(m, 'timeout', path, issues, duration) ?? defaultTimeoutMs;
  const cwd = optional(m, 'cwd', path, issues, absolutePath);
  const env = stringMap(m.env, childPath(path, 'env'), issues, 'env');
  const line = commandLine(m, shell, path, issues);
  if (issues.size > before) return undefined;
  return { ...line, timeoutMs, ...(cwd !== undefined ? { cwd } : {}), env };
}

/** One command: an argv list or a command mapping (see the module comment). */
export function parseCommand(
  raw: unknown,
  path: string,
  issues: IssueList,
  defaultTimeoutMs: number,
): CommandSpec | undefined {
  return oneOfShapes<CommandSpec>(
    raw,
    path,
    issues,
    'an argv list or a mapping with command',
    {
      list: (argvRaw) => {
        const argv = argvOf(argvRaw, path, issues);
        return argv ? { argv, timeoutMs: defaultTimeoutMs, env: {} } : undefined;
      },
      string: () => {
        issues.add(
          path,
          'must be an argv list such as [nginx, -s, reload]; a string runs only as {shell: true, command: "..."}',
        );
        return undefined;
      },
      mapping: (m) => parseCommandMapping(m, path, issues, defaultTimeoutMs),
    },
    'required: an argv list or {command: [...]}',
  );
}

/** A list of commands, each with `timeoutMs` as its default timeout. */
export function parseCommands(
  raw: unknown,
  path: string,
  issues: IssueList,
  timeoutMs = DEFAULT_HOOK_TIMEOUT_MS,
): CommandSpec[] {
  return listOf(raw, path, issues, (c, p) => parseCommand(c, p, issues, timeoutMs));
}

/** `hooks:` (top level or per certificate): pre, deploy and post command lists. */
export function parseHooks(raw: unknown, path: string, issues: IssueList): HookSet {
  const m = mapping(raw, path, issues, { keys: HOOK_KEYS });
  if (!m) return EMPTY_HOOKS;
  return {
    pre: parseCommands(m.pre, childPath(path, 'pre'), issues),
    deploy: parseCommands(m.deploy, childPath(path, 'deploy'), issues),
    post: parseCommands(m.post, childPath(path, 'post'), issues),
  };
}
