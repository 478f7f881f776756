/**
 * Benchmark of the renewal-readiness canary (issue #13 item 5): `certpilot check --readiness`
 * (the built CLI, its own process) over N managed certificates on a local Pebble + BIND.
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/readiness-bench.ts [N=20]
 *
 * The certificates are issued first (`certpilot renew`), so every check runs: the account is
 * read at the CA, CAA looked up, the CNAME preflight done, and a canary TXT value written,
 * checked at BIND and removed for each. Prints the median wall time of 5 runs after a warm-up
 * and the load average; goal ≤ 5 s for N = 20.
 */
import os from 'node:os';
import { startTestbed } from '../test/helpers/testbed';
import { machine, runCertpilot, timeRuns, type Run } from './bench-util';

const N = Number(process.argv[2] ?? 20);
const RUNS = 5;

interface Row {
  source: string;
  status: string;
}

function acceptRun(r: Run): void {
  const rows = (JSON.parse(r.stdout) as { results: Row[] }).results.filter((x) => x.source === 'readiness');
  const ok = rows.filter((x) => x.status === 'ok').length;
  if (rows.length !== N || ok !== N) {
    throw new Error(`expected ${N} readiness rows all OK, got ${ok} of ${rows.length}:\n${r.stderr}`);
  }
}

async function main(): Promise<void> {
  const tb = await startTestbed();
  try {
    const certs = Array.from({ length: N }, (_, i) => ({
      name: `c${i}`,
      domains: [`host${i}.example.test`],
      dns: { provider: 'bind' },
    }));
    // defaults.concurrency stays at its default (4): readiness runs that many certificates at once.
    const config = await tb.writeConfig(certs);
    const issued = await runCertpilot(['renew', '--config', config, '--log-level', 'error']);
    if (issued.code !== 0) throw new Error(`renew failed (${issued.code}): ${issued.stderr}`);
    const loadBefore = os.loadavg()[0];
    const args = ['check', '--readiness', '--json', '--config', config, '--log-level', 'error'];
    const t = await timeRuns(args, RUNS, acceptRun);
    const loadAfter = os.loadavg()[0];
    console.log(`machine: ${machine()}`);
    console.log(`check --readiness, ${N} certificates: runs ${t.runs.join(', ')} ms`);
    console.log(
      `median wall ${(t.medianMs / 1000).toFixed(2)} s, median certpilot CPU ${(t.medianCpuMs / 1000).toFixed(2)} s`,
    );
    console.log(`load average (1 min) before ${loadBefore?.toFixed(1)}, after ${loadAfter?.toFixed(1)}`);
  } finally {
    await tb.stop();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
