import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COMMAND_HELP, GLOBAL_OPTIONS, OPTIONS } from '../../src/cli/main';
import { renderBashCompletion, renderManPage } from '../../scripts/package-docs';
import { runCli } from '../helpers/testbed';

/**
 * certpilot(1) and the bash completion are rendered from the same help data as `--help`. This
 * compares what a reader sees: the man page as `man` formats it against the real `--help`
 * output of every command, so a text edited in one place only (or an option added to the
 * parser without help) fails here. Needs `man` (Debian package man-db).
 */

let dir: string;
let manText: string;

/** One space between words: man reflows and indents, --help wraps at 94 columns. */
const flat = (s: string): string => s.replace(/\s+/g, ' ').trim();

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-man-'));
  const file = path.join(dir, 'certpilot.1');
  writeFileSync(file, renderManPage());
  manText = flat(
    execFileSync('man', ['-l', file], {
      env: { ...process.env, LC_ALL: 'C', MANWIDTH: '200', MAN_KEEP_FORMATTING: '' },
      encoding: 'utf8',
    }),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('groff renders the man page without a warning', () => {
  const res = execFileSync(
    'sh',
    ['-c', `LC_ALL=C man --warnings -l "${path.join(dir, 'certpilot.1')}" 2>&1 >/dev/null`],
    { encoding: 'utf8' },
  );
  expect(res).toBe('');
});

test.each(COMMAND_HELP.map((c) => [c.name]))(
  'certpilot %s --help: every line is in the man page',
  async (name) => {
    const res = await runCli([name, '--help']);
    expect(res.code).toBe(0);
    const help = COMMAND_HELP.find((c) => c.name === name)!;
    // The exact strings --help prints, taken from its output rather than from the data.
    const out = flat(res.stdout);
    for (const o of help.options) {
      expect(out).toContain(o.flags);
      expect(out).toContain(flat(o.description));
      expect(manText).toContain(`${o.flags} ${o.description}`);
    }
    for (const note of help.notes) {
      expect(out).toContain(flat(note));
      expect(manText).toContain(flat(note));
    }
    for (const line of help.synopsis) expect(manText).toContain(flat(line));
    expect(manText).toContain(`${name} ${help.summary}`);
  },
);

test('certpilot --help: every command and global option is in the man page', async () => {
  const res = await runCli(['--help']);
  expect(res.code).toBe(0);
  const lines = res.stdout.split('\n').filter((l) => /^ {2}( {4})?[-a-z]/.test(l));
  expect(lines.length).toBe(COMMAND_HELP.length + GLOBAL_OPTIONS.length);
  for (const line of lines) {
    // "  renew      Renew ..." / "  -c, --config PATH       configuration file ..."
    const [, flags, description] = /^ {2}(.+?) {2,}(.+)$/.exec(line.replace(/^ {2} {4}/, '  '))!;
    expect(manText).toContain(`${flags} ${description}`);
  }
});

test('every option the parser accepts is documented in the help data', () => {
  const documented = new Set(
    [...GLOBAL_OPTIONS, ...COMMAND_HELP.flatMap((c) => c.options)].flatMap((o) =>
      [...o.flags.matchAll(/--([a-z-]+)/g)].map((m) => m[1]),
    ),
  );
  expect(Object.keys(OPTIONS).filter((o) => !documented.has(o))).toEqual([]);
});

function complete(line: string): Promise<string[]> {
  const words = line.split(' ');
  const script = `${renderBashCompletion()}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_certpilot; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', script], { cwd: dir }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.split('\n').filter(Boolean).sort()),
    ),
  );
}

test('bash completion completes commands, their options and option values', async () => {
  expect(await complete('certpilot ren')).toEqual(['renew']);
  expect(await complete('certpilot re')).toEqual(['renew', 'revoke']);
  expect(await complete('certpilot ')).toEqual(expect.arrayContaining(COMMAND_HELP.map((c) => c.name)));
  expect(await complete('certpilot check --only')).toEqual(['--only-problems']);
  expect(await complete('certpilot renew --dr')).toEqual(['--dry-run']);
  expect(await complete('certpilot config ')).toEqual(expect.arrayContaining(['check', '--json']));
  expect(await complete('certpilot --log-level ')).toEqual(['debug', 'error', 'info', 'warn']);
  expect(await complete('certpilot -c /etc/certpilot/x renew --f')).toEqual(['--force']);
  writeFileSync(path.join(dir, 'mine.yaml'), '');
  expect(await complete('certpilot check --config mi')).toEqual(['mine.yaml']);
});
