import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `certpilot renew` started without node flags (the renew timer) keeps V8's young generation at
 * its initial semi-space size; other commands, and a renew started with the operator's own
 * semi-space flag, leave V8 as it is. Observed on the built CLI in a plain node process: a
 * preloaded script records what is passed to v8.setFlagsFromString.
 */

const BIN = path.join(__dirname, '../../bin/certpilot.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-young-gen-'));
const RECORDER = path.join(dir, 'recorder.js');
writeFileSync(
  RECORDER,
  `const v8 = require('node:v8');
const set = v8.setFlagsFromString;
v8.setFlagsFromString = (flags) => { process.stderr.write('V8_FLAGS=' + flags + '\\n'); return set(flags); };`,
);

function v8FlagsSet(nodeArgs: string[], args: string[]): string[] {
  const r = spawnSync(process.execPath, ['-r', RECORDER, ...nodeArgs, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return [...r.stderr.matchAll(/^V8_FLAGS=(.*)$/gm)].map((m) => m[1]!);
}

const missing = path.join(dir, 'missing.yaml');

test('renew caps the semi-space growth', () => {
  expect(v8FlagsSet([], ['renew', '--config', missing])).toEqual(['--semi-space-growth-factor=1']);
  expect(v8FlagsSet([], ['--config', missing, 'renew'])).toEqual(['--semi-space-growth-factor=1']);
});

test('other commands, and a semi-space size given to node, leave V8 alone', () => {
  expect(v8FlagsSet([], ['check', '--config', missing])).toEqual([]);
  expect(v8FlagsSet([], ['--version'])).toEqual([]);
  expect(v8FlagsSet(['--max-semi-space-size=4'], ['renew', '--config', missing])).toEqual([]);
});
