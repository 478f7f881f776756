/**
 * Benchmark: issue N single-name certificates with `certpilot renew` (the built CLI, a separate
 * process) against a local Pebble + BIND with real propagation checks.
 *
 *   npm run build && npx ts-node --transpile-only bench/renew-bench.ts [N] [concurrency]
 *       [--runs=1] [--compare=/path/to/other/checkout]
 *
 * Prints wall time, per-certificate median, peak RSS and CPU time (user + system) of the
 * certpilot process (bench/rss-probe.js, preloaded). With --runs=R: one warm-up, then R measured runs, each with
 * a fresh state directory (so every run orders N new certificates); medians are printed. With
 * --compare=DIR the build in DIR (its bin/certpilot.js and dist/) runs too, alternating run by
 * run with this one against the same Pebble: same sitting, same load.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestbed } from '../test/helpers/testbed';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const opt = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Number(positional[0] ?? 20);
const CONCURRENCY = Number(positional[1] ?? 20);
const RUNS = Number(opt('runs') ?? 1);
const COMPARE = opt('compare');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Figures {
  wallSeconds: number;
  perCertMedianSeconds: number;
  peakRssMB: number;
  /** user + system CPU time of the certpilot process. */
  cpuSeconds: number;
  acmeRequests: number;
  renewed: number;
}

function runRenew(root: string, config: string): Promise<Figures> {
  const bin = path.join(root, 'bin', 'certpilot.js');
  const started = performance.now();
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
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
  }).then(({ code, stdout, stderr }) => {
    const wallMs = performance.now() - started;
    if (code !== 0) throw new Error(`certpilot exited ${code}: ${stderr}`);
    const report = JSON.parse(stdout) as {
      certificates: { status: string; durationMs: number }[];
      acmeRequests: { total: number };
    };
    const renewed = report.certificates.filter((c) => c.status === 'renewed');
    if (renewed.length !== N) throw new Error(`${renewed.length} of ${N} renewed: ${stdout}`);
    return {
      wallSeconds: +(wallMs / 1000).toFixed(2),
      perCertMedianSeconds: +(median(renewed.map((c) => c.durationMs)) / 1000).toFixed(2),
      peakRssMB: +(Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(stderr)?.[1]) / 1024).toFixed(1),
      cpuSeconds: +(Number(/BENCH_CPU_US=(\d+)/.exec(stderr)?.[1]) / 1e6).toFixed(2),
      acmeRequests: report.acmeRequests.total,
      renewed: renewed.length,
    };
  });
}

async function main(): Promise<void> {
  const builds = [{ label: 'this', root: path.join(__dirname, '..') }];
  if (COMPARE) builds.unshift({ label: 'compare', root: path.resolve(COMPARE) });
  const tb = await startTestbed();
  const loads: number[] = [os.loadavg()[0]!];
  try {
    const results = new Map<string, Figures[]>(builds.map((b) => [b.label, []]));
    for (let run = RUNS > 1 ? 0 : 1; run <= RUNS; run++) {
      for (const b of builds) {
        const certs = Array.from({ length: N }, (_, i) => ({
          name: `c${i}`,
          domains: [`host${i}-r${run}-${b.label}.example.test`],
          dns: { provider: 'bind' },
        }));
        const stateDir = path.join(os.tmpdir(), `certpilot-renew-bench-${process.pid}-${b.label}-${run}`);
        const config = await tb.writeConfig(certs, {
          defaults: { concurrency: CONCURRENCY },
          storage: { stateDir },
        });
        try {
          const f = await runRenew(b.root, config);
          console.error(`run ${run} ${b.label}: ${JSON.stringify(f)}`);
          // Run 0 is the warm-up (page cache, Pebble's first account) when there are several.
          if (run > 0) results.get(b.label)!.push(f);
        } finally {
          rmSync(stateDir, { recursive: true, force: true });
        }
      }
      loads.push(os.loadavg()[0]!);
    }
    const med = (xs: Figures[], f: (x: Figures) => number): number => +median(xs.map(f)).toFixed(2);
    console.log(
      JSON.stringify(
        {
          bench: 'renew',
          n: N,
          concurrency: CONCURRENCY,
          runs: RUNS,
          builds: builds.map((b) => {
            const xs = results.get(b.label)!;
            return {
              build: b.label,
              root: b.root,
              median: {
                wallSeconds: med(xs, (x) => x.wallSeconds),
                perCertMedianSeconds: med(xs, (x) => x.perCertMedianSeconds),
                peakRssMB: med(xs, (x) => x.peakRssMB),
                cpuSeconds: med(xs, (x) => x.cpuSeconds),
                acmeRequests: med(xs, (x) => x.acmeRequests),
              },
              peakRssMBPerRun: xs.map((x) => x.peakRssMB),
              wallSecondsPerRun: xs.map((x) => x.wallSeconds),
              cpuSecondsPerRun: xs.map((x) => x.cpuSeconds),
            };
          }),
          loadAverage1m: loads.map((l) => +l.toFixed(2)),
          machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
          date: new Date().toISOString(),
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
