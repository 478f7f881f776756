import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * Issue #12 item 7 against real servers (Pebble, BIND with TSIG, the CLI): a renewal that failed
 * because of a wrong TSIG secret backs off; while the secret is still wrong the next run waits
 * and says until when and how to retry now, and `--dry-run` exits as the real run does; once
 * the secret file is corrected, the next run renews at once instead of printing the old error
 * as the reason for waiting.
 */
let tb: Testbed;
let secretFile: string;

beforeAll(async () => {
  tb = await startTestbed();
  secretFile = path.join(tb.dir, 'tsig.secret');
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

interface JsonReport {
  ok: boolean;
  certificates: { name: string; status: string; reason: string; detail: string; error: string | null }[];
}

test('a corrected TSIG secret voids the backoff of the failure it caused', async () => {
  const config = await tb.writeConfig(
    [{ name: 'fixed', domains: ['fixed.example.test'], dns: { provider: 'bind' } }],
    { storage: { stateDir: path.join(tb.dir, 'state-fixed') } },
  );
  // Same algorithm and length as the real key, another value: BIND answers BADSIG.
  await writeFile(secretFile, Buffer.alloc(32, 7).toString('base64') + '\n', { mode: 0o600 });

  const failed = await runCli(['renew', '--config', config, '--json']);
  expect(failed.code).toBe(1);
  const first = JSON.parse(failed.stdout) as JsonReport;
  expect(first.certificates[0]).toMatchObject({ status: 'failed' });

  // Still wrong: held back, with the date and the way to retry now; nothing installed, so exit 1.
  const held = await runCli(['renew', '--config', config]);
  expect(held.code).toBe(1);
  expect(held.stdout).toMatch(
    /^fixed\s+waiting\s+no certificate\s+\(backoff: missing \(no certificate installed\); held back until \S+ after 1 failed attempt\(s\) \(last error: .+\); to retry now: certpilot renew --force fixed\)$/m,
  );
  const dry = await runCli(['renew', '--config', config, '--dry-run']);
  expect(dry.code).toBe(held.code);
  expect(dry.stdout).toMatch(/^fixed\s+waiting\s/m);

  // The operator fixes the secret file: the very next run renews.
  await writeFile(secretFile, tb.bind.tsig.secret + '\n', { mode: 0o600 });
  const fixed = await runCli(['renew', '--config', config, '--json']);
  expect(fixed.code).toBe(0);
  expect((JSON.parse(fixed.stdout) as JsonReport).certificates[0]).toMatchObject({
    status: 'renewed',
    error: null,
  });
}, 120_000);
