import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Document } from 'yaml';
import { ConfigError, type ConfigIssue } from '../core/errors';
import { redactText } from '../core/redact';
import { MODE_KEYS, readYamlFast } from './yaml-fast';

/**
 * Reading the configuration file: YAML (1.2, unique keys, bounded aliases, octal file modes)
 * or JSON. Syntax problems are ConfigErrors with a line and column; nothing here knows the
 * schema. YAML is read by yaml-fast.ts when it can give exactly this reading, by the `yaml`
 * package otherwise (docs/decisions.md, 10).
 */

/** Paths for problems that have no config path: the file itself, or its syntax. */
const FILE_PATH = '(file)';
export const ROOT_PATH = '(root)';
/** Guards against "billion laughs" alias expansion in hostile or broken YAML. */
const MAX_YAML_ALIASES = 100;
/**
 * No configuration nests deeper than about 8 levels; 64 leaves room for any layout and keeps
 * every recursive walk far from the stack limit ("Maximum call stack size exceeded" says
 * nothing to a user).
 */
export const MAX_NESTING = 64;
/** Syntax problems listed; a file of garbage has thousands, and the first few say it all. */
const MAX_SYNTAX_ISSUES = 5;
/**
 * What a syntax message may quote of the file. Parsers put source text into messages (the
 * token that failed, a tag, an alias); a short bound keeps a long secret value out of logs.
 */
const MAX_MESSAGE_CHARS = 80;

function fileError(file: string, message: string, issuePath = FILE_PATH): ConfigError {
  return new ConfigError([{ path: issuePath, message }], file);
}

/**
 * YAML 1.2 reads `mode: 0644` as the decimal number 644. Nobody means that, so for mode keys
 * a plain integer is handed on as its source text, which parseMode reads as octal.
 */
function keepModesOctal(yaml: YamlPackage, doc: Document): void {
  const { isPair, isScalar } = yaml;
  yaml.visit(doc, {
    Pair(_, pair) {
      if (!isPair(pair) || !isScalar(pair.key) || !MODE_KEYS.has(String(pair.key.value))) return;
      const v = pair.value;
      if (isScalar(v) && typeof v.value === 'number' && v.type === 'PLAIN' && typeof v.source === 'string') {
        v.value = v.source;
      }
    },
  });
}

/** One parser message, made safe to print: one line, short, registered secrets masked. */
function boundMessage(message: string): string {
  // Masked before it is cut: a cut secret would no longer match.
  const line = redactText(message.split('\n')[0].trim());
  return line.length > MAX_MESSAGE_CHARS ? `${line.slice(0, MAX_MESSAGE_CHARS - 3)}...` : line;
}

function isStackOverflow(message: string): boolean {
  return /call stack|too much recursion/i.test(message);
}

function nestingIssue(where: string): ConfigIssue {
  return { path: where, message: `nested deeper than ${MAX_NESTING} levels` };
}

/** The first few syntax problems, each bounded; a count of the rest. */
function syntaxIssues(where: string, problems: readonly { at: string; message: string }[]): ConfigIssue[] {
  if (problems.some((p) => isStackOverflow(p.message))) return [nestingIssue(where)];
  const shown = problems
    .slice(0, MAX_SYNTAX_ISSUES)
    .map((p) => ({ path: where, message: `${p.at}${boundMessage(p.message)}` }));
  const more = problems.length - shown.length;
  if (more > 0) shown.push({ path: where, message: `... and ${more} more syntax problems` });
  return shown;
}

/** Depth of the deepest list or mapping, walked without recursion; stops past MAX_NESTING. */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_NESTING) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function checkNesting(value: unknown, file: string, where: string): unknown {
  if (nestingDepth(value) > MAX_NESTING) throw new ConfigError([nestingIssue(where)], file);
  return value;
}

type YamlPackage = typeof import('yaml');

/**
 * The YAML document's value. Most configurations take the fast reading (yaml-fast.ts), which
 * gives exactly what this function's own reading would; anything else (every error among
 * them) is read here by the `yaml` package, loaded only then.
 */
export function parseYaml(text: string, file: string): unknown {
  const fast = readYamlFast(text);
  if (fast !== undefined) return checkNesting(fast, file, '(yaml)');
  return parseYamlDocument(text, file);
}

/** The reference reading: the `yaml` package's document, its errors with line and column. */
export function parseYamlDocument(text: string, file: string): unknown {
  // Loaded here, not at start-up: most runs never need it (see parseYaml).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const yaml = require('yaml') as YamlPackage;
  const lineCounter = new yaml.LineCounter();
  let doc: Document;
  try {
    doc = yaml.parseDocument(text, { prettyErrors: false, lineCounter, uniqueKeys: true });
  } catch (e) {
    if (e instanceof RangeError) throw new ConfigError([nestingIssue('(yaml)')], file);
    throw e;
  }
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return { at: `line ${line}, column ${col}: `, message: e.message };
    });
    throw new ConfigError(syntaxIssues('(yaml)', problems), file);
  }
  keepModesOctal(yaml, doc);
  try {
    return checkNesting(doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }), file, '(yaml)');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (e instanceof RangeError) throw new ConfigError([nestingIssue('(yaml)')], file);
    throw fileError(file, `YAML cannot be expanded: ${boundMessage((e as Error).message)}`, '(yaml)');
  }
}

/**
 * V8's JSON messages quote the text around the error (`Unexpected token 'x', "...secret..." is
 * not valid JSON`); only the position is kept, with the message's own words minus the quote.
 */
function parseJson(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const pos = /position (\d+)/.exec(message);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const col = Number(pos[1]) - before.lastIndexOf('\n');
      where = `line ${line}, column ${col}: `;
    }
    // Everything from the first double quote on is quoted file text (V8 20: `..., "{"a": ..."`).
    const words = message
      .split('"')[0]
      .replace(/,\s*$/, '')
      .replace(/\s*\(line \d+ column \d+\)/, '');
    throw fileError(file, `${where}${boundMessage(words)}`, '(json)');
  }
  return checkNesting(value, file, '(json)');
}

/**
 * Where the annotated example configuration is: next to the package (npm install, a checkout:
 * dist/config/ or src/config/ is two levels below it) or in the Debian package's documentation.
 */
export function findExampleConfig(): string {
  const candidates = [
    path.join(__dirname, '..', '..', 'config', 'certpilot.example.yaml'),
    '/usr/share/doc/certpilot/certpilot.example.yaml',
  ];
  return candidates.find((f) => existsSync(f)) ?? candidates[0];
}

function missingFileMessage(file: string): string {
  return (
    `${file} does not exist: create it with \`certpilot init\`, or start from the annotated ` +
    `example ${findExampleConfig()} (another file: --config or $CERTPILOT_CONFIG)`
  );
}

/**
 * The last YAML configuration read, with its text: a start-up check that reads the same file
 * again (src/cli/privileges.ts) takes this value instead of parsing it a second time, which
 * for a thousand certificates costs as much as the rest of a no-op renew's planning.
 */
let lastYaml: { file: string; text: string; value: unknown } | undefined;

/** What readConfigFile() parsed from `file`, if that was the last file read and `text` is still its text. */
export function parsedConfigText(file: string, text: string): { value: unknown } | undefined {
  return lastYaml?.file === file && lastYaml.text === text ? { value: lastYaml.value } : undefined;
}

/** Reads and parses the file; a missing file, unknown extension or syntax error is a ConfigError. */
export async function readConfigFile(file: string): Promise<unknown> {
  const ext = path.extname(file).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext)) {
    throw fileError(
      file,
      `unsupported file type ${JSON.stringify(ext || '(none)')}: use .yaml, .yml or .json`,
    );
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw fileError(file, missingFileMessage(file));
    const why = err.code === 'EACCES' ? 'is not readable' : `cannot be read (${err.code ?? err.message})`;
    throw fileError(file, `${file} ${why}`);
  }
  if (ext === '.json') return parseJson(text, file);
  const value = parseYaml(text, file);
  lastYaml = { file, text, value };
  return value;
}
