/**
 * Benchmark: `certpilot renew` when nothing is due (the built CLI, its own process).
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/noop-renew-bench.ts [N=20] [--cpu-prof]
 *
 * Installs N certificates (60 of 90 days left, so none is in the renewal window) straight into
 * a temporary state directory with CertStore and a test CA (no ACME server needed), writes a
 * config with N certificates and times `renew --json`. Goals (issue 4): N = 20 ≤ 0.3 s,
 * N = 1,000 ≤ 1 s (issue 17: ≤ 0.2 s and ≤ 0.8 s). Also reports which heavy modules the process
 * loaded: none of acme-client, the AWS SDK, prom-client, nodemailer, winston (no longer used)
 * or dns-packet (only with dns.resolvers) may load when nothing is due.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { installNotDueCertificates, machine, runCertpilot, timeRuns, type Run } from './bench-util';

const N = Number(process.argv[2] ?? 20);
const HEAVY = ['acme-client', '@aws-sdk', 'prom-client', 'nodemailer', 'axios', 'winston', 'dns-packet'];

/** Preloaded into the measured process: lists heavy packages in require.cache at exit. */
const PROBE = `process.on('exit', () => {
  const heavy = ${JSON.stringify(HEAVY)};
  const loaded = heavy.filter((h) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + h + '/')));
  process.stderr.write('BENCH_HEAVY=' + JSON.stringify(loaded) + '\\n');
});`;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-noop-bench-'));
  try {
    const stateDir = path.join(dir, 'state');
    await installNotDueCertificates(stateDir, N);
    const config = path.join(dir, 'certpilot.yaml');
    writeFileSync(
      config,
      stringify({
        acme: { directory: 'https://127.0.0.1:1/never-contacted', termsAgreed: true },
        storage: { stateDir },
        dns: {
          providers: {
            bind: {
              type: 'rfc2136',
              server: '127.0.0.1',
              tsigKeyName: 'k',
              tsigSecret: 'c2VjcmV0LXNlY3JldA==',
            },
          },
        },
        certificates: Array.from({ length: N }, (_, i) => ({
          name: `c${i}`,
          domains: [`c${i}.example.test`],
        })),
      }),
      // Mode 0640, as `certpilot init` writes it: the TSIG secret is inline, and a config other
      // users can read gets a warning (and the logger) on every run, which is not the quiet
      // path this measures. Before 2026-12-01 this file was 0644.
      { mode: 0o640 },
    );
    const probeFile = path.join(dir, 'heavy-probe.js');
    writeFileSync(probeFile, PROBE);

    const args = ['renew', '--config', config, '--json', '--log-level', 'warn'];
    const accept = (r: Run): void => {
      const report = JSON.parse(r.stdout) as { certificates: { status: string }[] };
      const valid = report.certificates.filter((c) => c.status === 'valid').length;
      if (r.code !== 0 || valid !== N)
        throw new Error(`renew exited ${r.code}, ${valid}/${N} valid\n${r.stderr}`);
    };
    const { runs, medianMs, medianCpuMs } = await timeRuns(args, 5, accept);
    const probe = await runCertpilot(args, ['-r', probeFile]);
    const heavy = /BENCH_HEAVY=(.*)/.exec(probe.stderr)?.[1] ?? '?';
    if (process.argv.includes('--cpu-prof')) {
      await runCertpilot(args, [
        '--cpu-prof',
        `--cpu-prof-dir=${path.join(process.cwd(), 'noop-renew-prof')}`,
      ]);
    }
    console.log(
      JSON.stringify(
        {
          bench: 'noop-renew',
          n: N,
          medianSeconds: +(medianMs / 1000).toFixed(3),
          medianCpuSeconds: +(medianCpuMs / 1000).toFixed(3),
          loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
          runsMs: runs,
          heavyModulesLoaded: JSON.parse(heavy) as unknown,
          machine: machine(),
        },
        null,
        2,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
