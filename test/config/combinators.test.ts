import { IssueList } from '../../src/config/issues';
import {
  integer,
  listOf,
  mapping,
  oneOfShapes,
  optional,
  required,
  secretRef,
  valueAt,
} from '../../src/config/combinators';
import { parseDuration } from '../../src/config/formats';

/** The combinators every section parser is built from: each problem at its path, parsing goes on. */

test('a mapping reports each unknown key at its own path and keeps the known ones', () => {
  const issues = new IssueList();
  const m = mapping({ a: 1, b: 2, c: 3 }, 'x[0]', issues, { keys: ['a'] });
  expect(m).toEqual({ a: 1, b: 2, c: 3 });
  expect(issues.toArray()).toEqual([
    { path: 'x[0].b', message: 'unknown key (allowed: a)' },
    { path: 'x[0].c', message: 'unknown key (allowed: a)' },
  ]);
});

test('a mapping: not set is undefined, or a problem when required; any other type is a problem', () => {
  const issues = new IssueList();
  expect(mapping(null, 'a', issues)).toBeUndefined();
  expect(issues.size).toBe(0);
  expect(mapping(null, 'b', issues, { what: 'a mapping with host', missing: true })).toBeUndefined();
  expect(mapping(undefined, 'c', issues, { missing: 'required: a command' })).toBeUndefined();
  expect(mapping([1], 'd', issues)).toBeUndefined();
  expect(issues.toArray()).toEqual([
    { path: 'b', message: 'must be a mapping with host, not null' },
    { path: 'c', message: 'required: a command' },
    { path: 'd', message: 'must be a mapping, not a list' },
  ]);
});

test('listOf parses each element at path[i], leaves out the bad ones and reports all of them', () => {
  const issues = new IssueList();
  const out = listOf(['1s', 5, 'soon', '2m', true], 'timeouts', issues, (v, p) =>
    valueAt(v, p, issues, parseDuration),
  );
  expect(out).toEqual([1_000, 5, 120_000]);
  expect(issues.toArray().map((i) => i.path)).toEqual(['timeouts[2]', 'timeouts[4]']);
  expect(listOf('x', 'l', issues, () => 1, 'a list of outputs')).toEqual([]);
  expect(issues.toArray().at(-1)).toEqual({ path: 'l', message: 'must be a list of outputs, not a string' });
});

test('optional and required fields', () => {
  const issues = new IssueList();
  const m = { n: 3, bad: 'x', empty: null };
  expect(optional(m, 'n', 'm', issues, integer(1, 5))).toBe(3);
  expect(optional(m, 'empty', 'm', issues, integer(1, 5))).toBeUndefined();
  expect(optional(m, 'bad', 'm', issues, integer(1, 5))).toBeUndefined();
  expect(required(m, 'gone', 'm', issues, integer(1, 5), 'required: a number')).toBeUndefined();
  expect(optional(m, 'n', 'm', issues, integer(4, 5, 'must be 4 or 5'))).toBeUndefined();
  expect(issues.toArray()).toEqual([
    { path: 'm.bad', message: 'must be an integer, not a string' },
    { path: 'm.gone', message: 'required: a number' },
    { path: 'm.n', message: 'must be 4 or 5' },
  ]);
});

test('secretRef: inline or X_file, not both; a bad inline secret is never echoed', () => {
  const issues = new IssueList();
  expect(secretRef({ secret: 's3cr3t' }, 'secret', 'w', issues)).toEqual({ value: 's3cr3t' });
  expect(secretRef({ secret_file: '/run/x/../s' }, 'secret', 'w', issues)).toEqual({ file: '/run/s' });
  expect(secretRef({}, 'secret', 'w', issues)).toBeUndefined();
  expect(issues.size).toBe(0);
  expect(secretRef({ secret: 'a', secret_file: '/s' }, 'secret', 'a', issues)).toBeUndefined();
  expect(secretRef({ secret_file: 'relative' }, 'secret', 'b', issues)).toBeUndefined();
  expect(secretRef({ password: ['hunter2'] }, 'password', 'c', issues)).toBeUndefined();
  expect(issues.toArray()).toEqual([
    { path: 'a.secret', message: 'set secret or secret_file, not both' },
    { path: 'b.secret_file', message: 'must be an absolute path, not "relative"' },
    { path: 'c.password', message: 'must be a non-empty string' },
  ]);
  expect(JSON.stringify(issues.toArray())).not.toContain('hunter2');
});

test('oneOfShapes: each shape to its parser; any other shape, or not set, is one problem', () => {
  const issues = new IssueList();
  const shapes = {
    string: (s: string) => `s:${s}`,
    mapping: (m: Record<string, unknown>) => `m:${String(m.a)}`,
  };
  expect(oneOfShapes('x', 'p', issues, 'a name or a mapping', shapes)).toBe('s:x');
  expect(oneOfShapes({ a: 1 }, 'p', issues, 'a name or a mapping', shapes)).toBe('m:1');
  expect(issues.size).toBe(0);
  expect(oneOfShapes([1], 'q', issues, 'a name or a mapping', shapes)).toBeUndefined();
  expect(oneOfShapes(null, 'r', issues, 'a name or a mapping', shapes)).toBeUndefined();
  expect(
    oneOfShapes(undefined, 's', issues, 'a name or a mapping', shapes, 'required: a name'),
  ).toBeUndefined();
  expect(issues.toArray()).toEqual([
    { path: 'q', message: 'must be a name or a mapping, not a list' },
    { path: 'r', message: 'must be a name or a mapping, not null' },
    { path: 's', message: 'required: a name' },
  ]);
});
