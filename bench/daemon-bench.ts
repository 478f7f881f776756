/**
 * Benchmark: `certpilot run` idling with N managed certificates (the built CLI, its own process).
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/daemon-bench.ts [N=100] [CHECKPOINTS=50,200,500] [--no-scrape] [--heap-snapshot]
 *
 * Installs N certificates (60 of 90 days left: none due) straight into a temporary state
 * directory with CertStore and a test CA (no ACME server), and starts `certpilot run` with
 * `daemon.checkInterval: 1s`, so a check cycle runs about every second (MIN_CYCLE_GAP_MS).
 * `acme.directory` is a closed port on 127.0.0.1: the first cycle's directory lookup fails at
 * once and the failure is cached for an hour (src/renew/directory.ts), so nothing is contacted
 * after that and ARI does not apply. At each checkpoint (after that many completed cycles) it
 * reads the process's VmRSS and VmHWM from /proc/<pid>/status, and its utime + stime from
 * /proc/<pid>/stat; CPU per idle cycle is the CPU delta over the cycle delta between two
 * checkpoints. Progress is followed on /healthz (cheap, no prom-client); at each checkpoint
 * /metrics is scraped (as Prometheus would) and `certpilot_daemon_cycles_total` read from it.
 * `--no-scrape` never touches /metrics (prom-client then never loads). The preloaded probe
 * reports, on SIGUSR2, `process.memoryUsage()` and which heavy packages are loaded.
 * `--heap-snapshot` also writes a heap snapshot at the last checkpoint (node
 * --heapsnapshot-signal) into ./daemon-heap/.
 *
 * Goal (issue 6): idle RSS ≤ 70 MB with 100 certificates after many cycles.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/ports';
import { BIN, installNotDueCertificates, machine } from './bench-util';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const N = Number(positional[0] ?? 100);
const CHECKPOINTS = (positional[1] ?? '50,200,500').split(',').map(Number);
const SCRAPE = !process.argv.includes('--no-scrape');
const HEAP_SNAPSHOT = process.argv.includes('--heap-snapshot');
const HEAVY = [
  'acme-client',
  '@aws-sdk',
  'prom-client',
  'nodemailer',
  'axios',
  'node-forge',
  'winston',
  'convict',
];
/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux). */
const CLK_TCK = 100;

/** Preloaded: on SIGUSR2, prints memoryUsage and the heavy packages in require.cache. */
const PROBE = `process.on('SIGUSR2', () => {
  const heavy = ${JSON.stringify(HEAVY)};
  const keys = Object.keys(require.cache);
  const loaded = heavy.filter((h) => keys.some((k) => k.includes('/node_modules/' + h + '/')));
  const m = process.memoryUsage();
  process.stderr.write('BENCH_PROBE=' + JSON.stringify({ loaded, modules: keys.length, memory: m }) + '\\n');
});`;

interface Sample {
  cycles: number;
  rssMB: number;
  hwmMB: number;
  cpuMs: number;
  probe?: { loaded: string[]; modules: number; memory: Record<string, number> };
}

function status(pid: number): { rssMB: number; hwmMB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
  return { rssMB: +(kb('VmRSS') / 1024).toFixed(1), hwmMB: +(kb('VmHWM') / 1024).toFixed(1) };
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-daemon-bench-'));
  try {
    const stateDir = path.join(dir, 'state');
    await installNotDueCertificates(stateDir, N);
    const port = await freePort();
    const config = path.join(dir, 'certpilot.yaml');
    writeFileSync(
      config,
      stringify({
        acme: { directory: 'https://127.0.0.1:1/never-contacted', termsAgreed: true },
        storage: { stateDir },
        daemon: { checkInterval: '1s', listen: `127.0.0.1:${port}` },
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
    );
    const probeFile = path.join(dir, 'probe.js');
    writeFileSync(probeFile, PROBE);
    const heapDir = path.join(process.cwd(), 'daemon-heap');
    // Extra node flags to compare (e.g. BENCH_NODE_ARGS='--lite-mode'), as a unit's ExecStart could pass.
    const nodeArgs = ['-r', probeFile, ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    if (HEAP_SNAPSHOT) {
      mkdirSync(heapDir, { recursive: true });
      nodeArgs.push('--heapsnapshot-signal=SIGUSR1', `--diagnostic-dir=${heapDir}`);
    }
    const child = spawn(
      process.execPath,
      [...nodeArgs, BIN, 'run', '--config', config, '--log-level', 'warn', '--log-format', 'json'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const probes: Sample['probe'][] = [];
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      let m: RegExpExecArray | null;
      const re = /BENCH_PROBE=(.*)\n/g;
      while ((m = re.exec(stderr))) probes.push(JSON.parse(m[1]!) as Sample['probe']);
      stderr = stderr.replace(/BENCH_PROBE=.*\n/g, '');
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const pid = child.pid!;
    const base = `http://127.0.0.1:${port}`;

    const healthCycles = async (): Promise<number> => {
      try {
        const body = (await (await fetch(`${base}/healthz`)).json()) as { cycles: number };
        return body.cycles;
      } catch {
        return -1; // not listening yet
      }
    };
    const probe = async (): Promise<Sample['probe']> => {
      const n = probes.length;
      child.kill('SIGUSR2');
      while (probes.length === n) await new Promise((r) => setTimeout(r, 20));
      return probes[n];
    };

    const samples: Sample[] = [];
    const started = performance.now();
    try {
      for (const target of CHECKPOINTS) {
        let cycles = await healthCycles();
        while (cycles < target) {
          if (child.exitCode !== null) throw new Error(`certpilot exited ${child.exitCode}\n${stderr}`);
          await new Promise((r) => setTimeout(r, 500));
          cycles = await healthCycles();
        }
        const sample: Sample = { cycles, ...status(pid), cpuMs: cpuMs(pid) };
        sample.probe = await probe();
        if (SCRAPE) {
          const text = await (await fetch(`${base}/metrics`)).text();
          const scraped = Number(/^certpilot_daemon_cycles_total (\d+)/m.exec(text)?.[1]);
          if (!(scraped >= cycles)) throw new Error(`/metrics says ${scraped} cycles, /healthz ${cycles}`);
        }
        samples.push(sample);
        console.error(`cycles ${cycles}: ${JSON.stringify({ ...sample, probe: undefined })}`);
      }
      if (HEAP_SNAPSHOT) {
        child.kill('SIGUSR1');
        await new Promise((r) => setTimeout(r, 3000));
      }
    } finally {
      child.kill('SIGTERM');
    }
    const code = await exited;
    if (code !== 0) throw new Error(`certpilot exited ${code}\n${stderr}`);
    const wallS = (performance.now() - started) / 1000;
    const perCycle = samples.slice(1).map((s, i) => {
      const prev = samples[i]!;
      return {
        from: prev.cycles,
        to: s.cycles,
        cpuMsPerCycle: +((s.cpuMs - prev.cpuMs) / (s.cycles - prev.cycles)).toFixed(1),
      };
    });
    const warnings = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { message: string }).message);
    console.log(
      JSON.stringify(
        {
          bench: 'daemon-idle',
          n: N,
          scrape: SCRAPE,
          wallSeconds: +wallS.toFixed(1),
          samples: samples.map((s) => ({
            cycles: s.cycles,
            rssMB: s.rssMB,
            hwmMB: s.hwmMB,
            cpuSeconds: +(s.cpuMs / 1000).toFixed(2),
            heapUsedMB: +((s.probe?.memory.heapUsed ?? 0) / 2 ** 20).toFixed(1),
            heapTotalMB: +((s.probe?.memory.heapTotal ?? 0) / 2 ** 20).toFixed(1),
            externalMB: +((s.probe?.memory.external ?? 0) / 2 ** 20).toFixed(1),
            modules: s.probe?.modules,
            heavyLoaded: s.probe?.loaded,
          })),
          cpuPerIdleCycle: perCycle,
          logged: [...new Set(warnings)],
          loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
          machine: machine(),
          date: new Date().toISOString(),
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
