import { spawn } from 'node:child_process';
import path from 'node:path';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Issue #12 item 8 against real servers: the exact-set guard holds a certificate back with one
 * message that names the setting, the date and the way out; `--override-guard` is refused when
 * stdin is not a terminal (a timer, a script, the daemon) and orders once under a real
 * pseudo-terminal (util-linux `script`), as a person at a terminal would.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
let tb: Testbed;
let config: string;

beforeAll(async () => {
  tb = await startTestbed();
  config = await tb.writeConfig(
    [{ name: 'g', domains: ['override.example.test'], dns: { provider: 'bind' } }],
    {
      storage: { stateDir: path.join(tb.dir, 'state-override') },
      defaults: { renewal: { maxOrdersPerWeek: 1 } },
    },
  );
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

/** Runs the built CLI with stdin, stdout and stderr on a pseudo-terminal. */
async function atTerminal(argv: string[]): Promise<{ code: number | null; out: string }> {
  const quoted = [process.execPath, BIN, ...argv].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qec', quoted, '/dev/null'], {
    env: { ...process.env, TERM: 'dumb' },
    signal: AbortSignal.timeout(60_000),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  child.stdin.end();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, out };
}

test('guarded: one message with the setting, the date and the way out; the override only at a terminal', async () => {
  expect((await runCli(['renew', '--config', config])).code).toBe(0);

  const guarded = await runCli(['renew', 'g', '--force', '--config', config]);
  expect(guarded.code).toBe(1);
  const line = guarded.stdout.split('\n').find((l) => l.startsWith('g '))!;
  expect(line.match(/already issued/g)).toHaveLength(1);
  expect(line).toMatch(/defaults\.renewal\.maxOrdersPerWeek is 1\); no order before \d{4}-\d\d-\d\dT/);
  expect(line).toContain('certpilot renew --override-guard g');

  // Not a terminal (as from a timer or a script): refused before anything is done.
  const refused = await runCli(['renew', 'g', '--override-guard', '--config', config]);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('--override-guard is only accepted at a terminal');

  // A person at a terminal: one order despite the guard.
  const overridden = await atTerminal(['renew', 'g', '--override-guard', '--config', config]);
  expect(overridden.out).toMatch(/^g\s+renewed/m);
  expect(overridden.code).toBe(0);

  // The override is for that run only: the next forced run is guarded again.
  expect((await runCli(['renew', 'g', '--force', '--config', config])).code).toBe(1);
}, 120_000);
