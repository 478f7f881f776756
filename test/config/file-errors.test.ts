import path from 'node:path';
import { registerSecret } from '../../src/core/redact';
import { MAX_NESTING } from '../../src/config/file';
import { loadError, makeTempDir, removeDir, writeConfig } from './helpers';

/**
 * Problems with the file itself stay short and never carry a long run of its text: a file of
 * garbage, a nesting bomb, a secret next to a syntax error (issue #12 item 17, #14 item 8).
 */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

/** Deterministic junk: the characters YAML cares most about. */
function garbage(bytes: number): string {
  const alphabet = 'abc:{}[]-"\'# \n\t,&*!|>%@';
  let seed = 12345;
  // Opening a flow mapping first: the parser then meets one problem after another.
  let out = '{';
  while (out.length < bytes) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out += alphabet[seed % alphabet.length];
  }
  return out;
}

describe('syntax errors are bounded', () => {
  test('64 KB of garbage gives a short error: at most five problems and a count', async () => {
    const err = await loadError(writeConfig(dir, garbage(64 * 1024)));
    expect(err.message.length).toBeLessThan(1_000);
    const lines = err.issues.map((i) => i.message);
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines[lines.length - 1]).toMatch(/^\.\.\. and \d+ more syntax problems$/);
    for (const issue of err.issues) expect(issue.path).toBe('(yaml)');
  });

  test('a long token quoted by the parser is cut to 80 characters', async () => {
    const token = 'c2VjcmV0'.repeat(20);
    const err = await loadError(writeConfig(dir, `acme:\n  email: *${token}\n`));
    expect(err.message).not.toContain(token);
    for (const issue of err.issues) expect(issue.message.length).toBeLessThanOrEqual(110);
  });

  test('a registered secret in a syntax message is masked', async () => {
    const secret = 'UmVnaXN0ZXJlZFNlY3JldA';
    registerSecret(secret);
    const err = await loadError(writeConfig(dir, `acme:\n  email: *${secret}\n`));
    expect(err.message).not.toContain(secret);
    expect(err.message).toContain('[redacted]');
  });

  test('a JSON error does not quote the text around it', async () => {
    const secret = 'SECRETVALUE1234567890abcdef';
    const err = await loadError(writeConfig(dir, `{"acme": {"email": ${secret}}}`, '.json'));
    expect(err.issues[0].path).toBe('(json)');
    expect(err.message).not.toContain('SECRETV');
  });
});

describe('deep nesting is a clear problem, not a stack overflow', () => {
  test.each([
    ['YAML flow lists', `a: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, '.yaml', '(yaml)'],
    [
      'YAML block mappings',
      Array.from({ length: 3_000 }, (_, i) => `${'  '.repeat(i)}k:\n`).join(''),
      '.yaml',
      '(yaml)',
    ],
    ['JSON lists', `{"acme": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`, '.json', '(json)'],
    ['just past the limit', `a: ${'['.repeat(MAX_NESTING)}${']'.repeat(MAX_NESTING)}\n`, '.yaml', '(yaml)'],
  ] as const)('%s', async (_name, text, ext, where) => {
    const err = await loadError(writeConfig(dir, text, ext));
    expect(err.issues).toEqual([{ path: where, message: `nested deeper than ${MAX_NESTING} levels` }]);
  });

  test('nesting within the limit is judged by the schema as usual', async () => {
    const depth = MAX_NESTING - 2;
    const err = await loadError(writeConfig(dir, `acme: ${'['.repeat(depth)}${']'.repeat(depth)}\n`));
    expect(err.issues).toEqual([{ path: 'acme', message: 'must be a mapping (a section), not a list' }]);
  });
});

describe('no configuration file', () => {
  test('the message names `certpilot init` and the example configuration that exists', async () => {
    const err = await loadError(path.join(dir, 'absent.yaml'));
    const message = err.issues[0].message;
    expect(message).toMatch(/does not exist/);
    expect(message).toContain('certpilot init');
    const example = /example (\S+\.yaml)/.exec(message)?.[1];
    expect(example).toBe(path.join(__dirname, '..', '..', 'config', 'certpilot.example.yaml'));
  });
});
