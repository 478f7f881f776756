import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { ConfigError } from '../core/errors';

/**
 * Reading the configuration file: YAML (1.2, unique keys, bounded aliases, octal file modes)
 * or JSON. Syntax problems are ConfigErrors with a line and column; nothing here knows the
 * schema.
 */

/** Paths for problems that have no config path: the file itself, or its syntax. */
const FILE_PATH = '(file)';
export const ROOT_PATH = '(root)';
/** Guards against "billion laughs" alias expansion in hostile or broken YAML. */
const MAX_YAML_ALIASES = 100;
/** Keys whose YAML integers are file modes: read as octal, the way chmod reads them. */
const MODE_KEYS = ['mode', 'keyMode'];

function fileError(file: string, message: string, issuePath = FILE_PATH): ConfigError {
  return new ConfigError([{ path: issuePath, message }], file);
}

/**
 * YAML 1.2 reads `mode: 0644` as the decimal number 644. Nobody means that, so for mode keys
 * a plain integer is handed on as its source text, which parseMode reads as octal.
 */
function keepModesOctal(doc: ReturnType<typeof parseDocument>): void {
  visit(doc, {
    Pair(_, pair) {
      if (!isPair(pair) || !isScalar(pair.key) || !MODE_KEYS.includes(String(pair.key.value))) return;
      const v = pair.value;
      if (isScalar(v) && typeof v.value === 'number' && v.type === 'PLAIN' && typeof v.source === 'string') {
        v.value = v.source;
      }
    },
  });
}

function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { path: '(yaml)', message: `line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
      }),
      file,
    );
  }
  keepModesOctal(doc);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    throw fileError(file, `YAML cannot be expanded: ${(e as Error).message}`, '(yaml)');
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
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
    throw fileError(file, `${where}${message}`, '(json)');
  }
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
    const why =
      err.code === 'ENOENT'
        ? 'does not exist'
        : err.code === 'EACCES'
          ? 'is not readable'
          : `cannot be read (${err.code ?? err.message})`;
    throw fileError(file, `${file} ${why}`);
  }
  return ext === '.json' ? parseJson(text, file) : parseYaml(text, file);
}
