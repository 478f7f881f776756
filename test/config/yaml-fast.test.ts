import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { parseYaml, parseYamlDocument } from '../../src/config/file';
import { readYamlFast } from '../../src/config/yaml-fast';

/**
 * The fast YAML reading must give what the `yaml` package's reading gives, value for value and
 * error for error (src/config/yaml-fast.ts). Each case runs both: parseYaml (fast path, handing
 * on when it must) and parseYamlDocument (the reference), and compares an exact rendering of
 * the outcome: -0, NaN, prototypes and own `__proto__` keys included.
 */

const ROOT = path.join(__dirname, '..', '..');

/** Every detail of a value that a config reader could see. */
function render(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(render).join(',')}]`;
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) === Object.prototype ? '' : '!proto';
    const keys = Object.getOwnPropertyNames(v);
    return `{${proto}${keys.map((k) => `${JSON.stringify(k)}:${render((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return `<${typeof v}>`;
}

function outcome(read: (text: string, file: string) => unknown, text: string): string {
  try {
    return `value ${render(read(text, 'f.yaml'))}`;
  } catch (err) {
    if (err instanceof ConfigError) return `error ${JSON.stringify(err.issues)}`;
    return `thrown ${(err as Error).name}: ${(err as Error).message}`;
  }
}

/** Compares both readings of `text`; says whether the fast reading took it. */
function same(text: string): boolean {
  expect({ text, got: outcome(parseYaml, text) }).toEqual({ text, got: outcome(parseYamlDocument, text) });
  return readYamlFast(text) !== undefined;
}

/** The YAML blocks of the user documentation and the shipped configurations. */
function shippedYaml(): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync(path.join(ROOT, 'config'))) {
    if (f.endsWith('.yaml')) out.push(fs.readFileSync(path.join(ROOT, 'config', f), 'utf8'));
  }
  const docs = [path.join(ROOT, 'README.md')];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) docs.push(p);
    }
  };
  walk(path.join(ROOT, 'docs'));
  for (const d of docs) {
    for (const m of fs.readFileSync(d, 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)) out.push(m[1]);
  }
  return out;
}

const SCALARS = [
  ...['', '~', 'null', 'Null', 'NULL', 'nUll', 'true', 'True', 'TRUE', 'tRue', 'false', 'FALSE'],
  ...['yes', 'no', 'on', 'off', 'y', 'n', '0', '-0', '+0', '007', '0644', '0o644', '0o8', '0o'],
  ...['0x1F', '0x1f', '0X1F', '0x', '0b101', '+0x1F', '-0x1F', '-0o7', '1_000', '1e3', '1E+3'],
  ...['1.5e-3', '.5', '5.', '-.5', '+.5', '1.2.3', '.e3', '1e', '.inf', '-.Inf', '+.INF', '.nan'],
  ...['.NaN', '.NAN', '-.nan', 'inf', 'nan', '.Nan', '12:30', '2026-12-01', '2026-12-01T10:00:00Z'],
  ...['99999999999999999999', '1e400', '-1e400', '0.0', '-0.0', '00.5', '"0644"', "'0644'"],
  ...['"a\\tb"', "'it''s'", '"\\x41\\u263A\\U0001F600"', '"\\N\\_\\L\\P"', 'a b', 'a#b', 'a #b'],
  ...['@x', '`x', '%x', '!x', '!!str 5', '!!int 0644', '&x y', '=', '<<', 'http://x/?a=1&b=2'],
  ...['*', 'a*b', '/etc/ssl/*.pem', '"*"', '- x', '? x', '|\n  a\n  b\n', '>-\n  a\n  b\n'],
  ...['"multi\n  line"', "'multi\n\n  line'", 'plain\n  continued', '[a, b]', '{a: 1}', '[]', '{}'],
];

describe('the fast reading gives what the yaml package gives', () => {
  test('the shipped example configurations and every YAML block in the docs', () => {
    const texts = shippedYaml();
    expect(texts.length).toBeGreaterThanOrEqual(20);
    let fast = 0;
    for (const t of texts) if (same(t)) fast++;
    // Most must take the fast path, or this test compares nothing.
    expect(fast).toBeGreaterThan(texts.length * 0.8);
  });

  test.each([
    ['a value', (s: string) => `k: ${s}\n`],
    ['a list item', (s: string) => `- ${s}\n`],
    ['a key', (s: string) => `${s}: v\n`],
    ['a file mode', (s: string) => `outputs:\n  - mode: ${s}\n    keyMode: ${s}\n`],
    ['a flow value', (s: string) => `{k: ${s}, mode: ${s}}\n`],
    ['a flow item', (s: string) => `[${s}]\n`],
  ])('scalars of every kind as %s', (_name, wrap) => {
    let fast = 0;
    for (const s of SCALARS) if (same(wrap(s))) fast++;
    expect(fast).toBeGreaterThan(SCALARS.length / 3);
  });

  test.each([
    ['an empty document', ''],
    ['a comment only', '# nothing\n'],
    ['document markers', '---\nk: v\n...\n'],
    ['two documents', 'a: 1\n---\nb: 2\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['1 and "1" as keys', '1: a\n"1": b\n'],
    ['1 and 1.0 as keys', '1: a\n1.0: b\n'],
    ['a null key', '~: a\n'],
    ['an empty quoted key', '"": a\n'],
    ['"null" as a key', '"null": a\n'],
    ['__proto__', '__proto__: {polluted: 1}\nconstructor: 2\ntoString: 3\n'],
    ['__proto__ with a mode', '__proto__: 0644\nmode: 0644\n'],
    ['a merge key', 'base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n'],
    ['a merge key without alias', 'c:\n  <<: {x: 1}\n  y: 2\n'],
    ['an anchor only', 'a: &x 1\nb: 2\n'],
    ['aliases of a scalar', `a: &x 1\n${Array.from({ length: 120 }, (_, i) => `k${i}: *x`).join('\n')}\n`],
    ['a billion laughs', 'a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n'],
    ['a complex key', '? [a, b]\n: c\n'],
    ['a flow collection key', '[a, b]: c\n'],
    ['a tab in indentation', 'a:\n\tb: 1\n'],
    ['nested too deep', `a: ${'['.repeat(70)}${']'.repeat(70)}\n`],
    ['a mode in a list', 'mode: [0644, 0o600]\n'],
    ['a mode key in a flow map', '{mode: 0644, keyMode: 0x1A4, other: 0644}\n'],
    ['a quoted mode', 'mode: "0644"\nkeyMode: \'0600\'\n'],
    ['a mode as a float', 'mode: 6.44\nkeyMode: .inf\n'],
    ['a BOM', '\uFEFFk: v\n'],
    ['CRLF lines', 'a: 1\r\nb:\r\n  - x\r\n'],
    ['a long key', `${'k'.repeat(1100)}: v\n`],
    ['a directive', '%YAML 1.2\n---\nk: v\n'],
    ['a YAML 1.1 directive', '%YAML 1.1\n---\nk: yes\n'],
    ['a local tag', 'k: !thing v\n'],
    ['a verbatim tag', 'k: !<tag:yaml.org,2002:str> 5\n'],
    ['a compact nested map', 'a: b: c\n'],
    ['a comment without space', 'a: b#c\nd: e # f\n'],
    ['a key and value on separate lines', 'a:\n  b\n'],
    ['indented sequence', 'a:\n- 1\n- 2\n'],
    ['block scalar indicators', 'a: |2-\n   x\nb: >+\n  y\n\nc: |\n  z\n'],
    ['a lone carriage return', 'k: "a\rb"\n\rj: v\n'],
    ['content after ---', '--- k: v\n'],
    ['dashes that are not a marker', '------\n'],
    ['a comment right after a quote', "k: 'it''s'#c\nj: \"v\"#c\n"],
    ['a comment right after a bracket', 'k: [a]#c\n'],
    ['a tab after indentation spaces', 'k:\n    \t&0644&---\n'],
    ['two anchors on a node', '  &a \n  # \n    &a>+\n'],
    ['a marker and a comment without space', '---#*!\n'],
    ['an indented first line', '  - \n-  x\n'],
    ['an indented first line after comments and a marker', '# c\n---\n  k: v\nj: w\n'],
    ['an indentation indicator and CRLF', '|-1\n  x \r\n\n'],
    ['a root block scalar and a comment-like line', '    |-\n #c : .inf \n'],
    ['a comment-like line inside a block scalar', 'k: |\n  # not a comment\n  x\nj: >\n  # nor this\n'],
    ['dots that are not a marker', 'k: v\n....\n'],
    ['a block scalar after ---', '--- |\n  text\n'],
    ['the non-specific tag', 'k: !\nj: ! v\n'],
    ['an exclamation mark inside a value', 'k: hello!world\n'],
    ['control characters', 'k: "a\u0007b"\nj: a\u0085b\nl: a\u2028b\n'],
  ])('%s', (_name, text) => {
    same(text);
  });

  /** Quotes, flow collections, block scalars, modes and comments, densely. */
  const DENSE = [
    'acme: { directory: "https://127.0.0.1:14000/dir", email: \'ops@example.test\' }',
    'certificates:',
    '  - name: www # the site\'s "main" name',
    '    domains: [www.example.test, "example.test", \'api.example.test\']',
    '    outputs:',
    '      - { path: /etc/ssl/www, mode: 0644, keyMode: 0o600 }',
    '      - path: "/etc/ssl/x y"',
    '        mode: 640',
    '    hooks:',
    '      - command: [systemctl, reload, nginx]',
    '      - command: >-',
    '          /usr/local/bin/notify --name "www"',
    '          --when renewed',
    '      - command: |',
    '          set -e',
    "          echo 'done' # not a comment",
    '    env: { A: "1", B: \'two\', C: [x, {y: z}] }',
    'watch:',
    '  files: ["/etc/ssl/*.pem", /srv/tls/*.crt]',
    '  endpoints:',
    '    - host: example.test # host[:port]',
    '      port: 8443',
    '      timeout: 2.5',
    '    - { host: "b.example.test", port: 0x1BB, starttls: smtp }',
  ].join('\n');

  test.each([
    [
      'the example configuration',
      fs.readFileSync(path.join(ROOT, 'config', 'certpilot.example.yaml'), 'utf8'),
    ],
    ['a dense configuration', DENSE],
  ])('thousands of mutations of %s', (_name, base) => {
    const lines = base.split('\n');
    const CHARS = [' ', '\n', '\t', ':', '-', '#', '"', "'", '[', ']', '{', '}', ',', '&', '*', '!'];
    const MORE = ['|', '>', '?', '%', '@', '`', '0', '1', 'x', 'o', '.', 'e', '~', '\\', 'n', '_'];
    const SNIPPETS = [
      'mode: 0644',
      '  keyMode: 0o600',
      'x: .inf',
      '- 0x1F',
      'k: |\n  text',
      'k: >-\n  folded\n  text',
      "k: 'multi\n  line'",
      '"quoted": "a\\tb"',
      '__proto__: {polluted: 1}',
      '<<: {a: 1}',
      '&a anchored: 1',
      '~: null',
    ];
    const alphabet = [...CHARS, ...MORE];
    let seed = 20261201;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let fast = 0;
    let errors = 0;
    const runs = 2500;
    for (let i = 0; i < runs; i++) {
      const ls = [...lines];
      for (let m = 1 + rand(3); m > 0; m--) {
        const at = rand(ls.length);
        const line = ls[at];
        const col = rand(line.length + 1);
        switch (rand(7)) {
          case 0:
            ls[at] = line.slice(0, col) + alphabet[rand(alphabet.length)] + line.slice(col);
            break;
          case 1:
            ls[at] = line.slice(0, col) + line.slice(col + 1);
            break;
          case 2:
            ls[at] = line.slice(0, col) + alphabet[rand(alphabet.length)] + line.slice(col + 1);
            break;
          case 3:
            ls.splice(at, 0, line);
            break;
          case 4:
            ls[at] = (rand(2) ? '  ' : ' ') + line;
            break;
          case 5:
            ls[at] = line.replace(/^ {1,2}/, '');
            break;
          default:
            ls.splice(at, 0, ' '.repeat(2 * rand(3)) + SNIPPETS[rand(SNIPPETS.length)]);
        }
      }
      const text = ls.join('\n');
      if (same(text)) fast++;
      if (outcome(parseYamlDocument, text).startsWith('error')) errors++;
    }
    // The mix must exercise both paths and both outcomes, or the comparison says little.
    expect(fast).toBeGreaterThan(runs * 0.2);
    expect(errors).toBeGreaterThan(runs * 0.1);
  });
});
