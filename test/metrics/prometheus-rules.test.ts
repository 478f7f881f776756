import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * config/prometheus/certpilot.rules.yml, checked and unit-tested by promtool itself
 * (`promtool check rules`, `promtool test rules` on certpilot.rules.test.yml). .ci/run installs
 * promtool (Debian's prometheus package). A copy of the rules with a threshold changed must fail
 * the unit tests: they pin the behaviour, not just the syntax.
 */
const DIR = path.join(__dirname, '..', '..', 'config', 'prometheus');
const RULES = path.join(DIR, 'certpilot.rules.yml');
const TESTS = path.join(DIR, 'certpilot.rules.test.yml');

function promtool(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

test('promtool check rules: the rule file is valid', async () => {
  const r = await promtool(['check', 'rules', RULES], DIR);
  expect(r).toEqual({ code: 0, output: expect.stringMatching(/SUCCESS: 10 rules found/) });
});

test('promtool test rules: every alert fires when it should and not before', async () => {
  const r = await promtool(['test', 'rules', TESTS], DIR);
  expect(r).toEqual({ code: 0, output: expect.stringMatching(/SUCCESS/) });
  // Every alert of the rule file has a test.
  const alerts = [...fs.readFileSync(RULES, 'utf8').matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
  const tested = new Set([...fs.readFileSync(TESTS, 'utf8').matchAll(/alertname: (\S+)/g)].map((m) => m[1]));
  expect(alerts.filter((a) => !tested.has(a))).toEqual([]);
});

test('the unit tests bite: a rule with a changed threshold fails them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-rules-'));
  try {
    const rules = fs.readFileSync(RULES, 'utf8');
    const changed = rules.replace('time() < 14 * 86400', 'time() < 7 * 86400');
    expect(changed).not.toBe(rules);
    fs.writeFileSync(path.join(dir, 'certpilot.rules.yml'), changed);
    fs.copyFileSync(TESTS, path.join(dir, 'certpilot.rules.test.yml'));
    const r = await promtool(['test', 'rules', 'certpilot.rules.test.yml'], dir);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/alertname: CertpilotCertificateExpiringSoon/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
