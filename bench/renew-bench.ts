/**
 * Benchmark: issue N single-name certificates with `certpilot renew` (the built CLI, a separate
 * process) against a local Pebble + BIND with real propagation checks.
 *
 *   npm run build && npx ts-node --transpile-only bench/renew-bench.ts [N] [concurrency]
 *
 * Prints wall time, per-certificate median and peak RSS of the certpilot process.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { startTestbed } from '../test/helpers/testbed';

const N = Number(process.argv[2] ?? 20);
const CONCURRENCY = Number(process.argv[3] ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const tb = await startTestbed();
  try {
    const certs = Array.from({ length: N }, (_, i) => ({
      name: `c${i}`,
      domains: [`host${i}.example.test`],
      dns: { provider: 'bind' },
    }));
    const config = await tb.writeConfig(certs, { defaults: { concurrency: CONCURRENCY } });
    const bin = path.join(__dirname, '..', 'bin', 'certpilot.js');
    const started = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn(process.execPath, [
          '-r',
          path.join(__dirname, 'rss-probe.js'),
          bin,
          'renew',
          '--config',
          config,
          '--json',
          '--log-level',
          'warn',
        ]);
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c));
        child.stderr.on('data', (c: Buffer) => (err += c));
        child.on('exit', (c) => resolve({ code: c ?? -1, stdout: out, stderr: err }));
      },
    );
    const wallMs = performance.now() - started;
    if (code !== 0) throw new Error(`certpilot exited ${code}: ${stderr}`);
    const report = JSON.parse(stdout) as {
      certificates: { status: string; durationMs: number }[];
      acmeRequests: { total: number };
    };
    const renewed = report.certificates.filter((c) => c.status === 'renewed');
    const rssKb = Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(stderr)?.[1]);
    console.log(
      JSON.stringify(
        {
          bench: 'renew',
          n: N,
          concurrency: CONCURRENCY,
          renewed: renewed.length,
          wallSeconds: +(wallMs / 1000).toFixed(2),
          perCertMedianSeconds: +(median(renewed.map((c) => c.durationMs)) / 1000).toFixed(2),
          peakRssMB: +(rssKb / 1024).toFixed(1),
          acmeRequests: report.acmeRequests.total,
          machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
        },
        null,
        2,
      ),
    );
  } finally {
    await tb.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
