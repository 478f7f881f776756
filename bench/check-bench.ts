/**
 * Benchmark of `certpilot check` (the built CLI, its own process):
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/check-bench.ts files [N=1000]
 *   npx ts-node --transpile-only bench/check-bench.ts endpoints [N=1000] [--concurrency C]
 *
 * files: N watched PEM bundles (leaf + intermediate, one glob). endpoints: N TLS endpoints on
 * 127.0.0.1, all served by ONE separate Node process (so the servers' handshake work is not
 * counted in certpilot's process, though it shares the machine's CPUs). Prints the median wall
 * time of 5 runs after a warm-up; goals: files ≤ 1 s, endpoints ≤ 3 s (issue 4).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { makeCa, makeCertificate } from '../test/helpers/certs';
import { machine, timeRuns, type Run } from './bench-util';
import { spawnFarm } from './endpoint-farm';

const DAY_MS = 86_400_000;
const mode = process.argv[2] ?? 'files';
const N = Number(process.argv[3] ?? 1000);
const extra = process.argv.slice(4);

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-check-bench-'));
  let farm: ChildProcess | undefined;
  try {
    const now = Date.now();
    const ca = makeCa();
    const intermediate = makeCertificate({
      names: [],
      isCA: true,
      issuer: ca,
      commonName: 'bench intermediate',
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 1000 * DAY_MS),
    });
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    const leaf = (names: string[], keyPem?: string) =>
      makeCertificate({
        names,
        issuer: intermediate,
        notBefore: new Date(now - 30 * DAY_MS),
        notAfter: new Date(now + 60 * DAY_MS),
        ...(keyPem ? { keyPem } : {}),
      });

    let config: Record<string, unknown>;
    if (mode === 'files') {
      const first = leaf(['host0.example.test']);
      const files = path.join(dir, 'files');
      mkdirSync(files);
      for (let i = 0; i < N; i++) {
        const c = i === 0 ? first : leaf([`host${i}.example.test`], first.keyPem);
        writeFileSync(path.join(files, `host${i}.pem`), c.certPem + intermediate.certPem);
      }
      config = { watch: { files: [path.join(files, '*.pem')] } };
    } else if (mode === 'endpoints') {
      const served = leaf(['example.test']);
      const farmFile = path.join(dir, 'farm.json');
      writeFileSync(
        farmFile,
        JSON.stringify({ cert: served.certPem + intermediate.certPem, key: served.keyPem, n: N }),
      );
      const started = await spawnFarm(farmFile);
      farm = started.child;
      config = {
        watch: {
          endpoints: started.ports.map((port) => ({
            host: 'example.test',
            port,
            connectAddress: '127.0.0.1',
            caBundle: caFile,
          })),
        },
      };
    } else {
      throw new Error(`unknown mode ${mode} (files | endpoints)`);
    }
    const configFile = path.join(dir, 'certpilot.yaml');
    writeFileSync(configFile, stringify(config));

    const accept = (r: Run): void => {
      const report = JSON.parse(r.stdout) as { summary: { total: number; ok: number } };
      if (r.code !== 0 || report.summary.ok !== N) {
        throw new Error(
          `check exited ${r.code}, ${report.summary.ok}/${N} ok\n${r.stderr}\n${r.stdout.slice(0, 3000)}`,
        );
      }
    };
    const { runs, medianMs, medianCpuMs } = await timeRuns(
      ['check', '--config', configFile, '--json', '--log-level', 'warn', ...extra],
      5,
      accept,
    );
    console.log(
      JSON.stringify(
        {
          bench: `check-${mode}`,
          n: N,
          args: extra,
          medianSeconds: +(medianMs / 1000).toFixed(3),
          medianCpuSeconds: +(medianCpuMs / 1000).toFixed(3),
          loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
          runsMs: runs,
          machine: machine(),
        },
        null,
        2,
      ),
    );
  } finally {
    farm?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
