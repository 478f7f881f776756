/**
 * Benchmark: the daemon as the shipped unit runs it, doing real work.
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/daemon-bench.ts [N=100] [CHECKPOINTS=30,120,300] [--no-scrape] [--heap-snapshot]
 *
 * The node flags are read from ExecStart= of systemd/certpilot.service (today
 * `--max-semi-space-size=1`), so the figure is the unit's command line, not a variant of it.
 * Pebble and BIND run on loopback (test/helpers/testbed.ts). The config has N managed
 * certificates installed from a test CA with 60 of 90 days left (none due), plus LIVE
 * certificates that do not exist yet: the first cycle orders them from Pebble through BIND
 * (DNS-01, the real propagation check), and since Pebble issues them for LIFETIME_S seconds
 * they are renewed again every half lifetime for as long as the benchmark runs. ARI is
 * looked up on Pebble's directory (Pebble 2.4 has none, so planning falls back to the ratio).
 * `daemon.checkInterval: 1s`, so a check cycle runs about every second (MIN_CYCLE_GAP_MS): the
 * worst case; the default interval is 10 minutes.
 *
 * At each checkpoint (after that many completed cycles) it reads the process's VmRSS and VmHWM
 * from /proc/<pid>/status and its utime + stime from /proc/<pid>/stat; CPU per cycle is the CPU
 * delta over the cycle delta between two checkpoints (orders included). Progress is followed on
 * /healthz; at each checkpoint /metrics is scraped (as Prometheus would) and the cycles and
 * successful renewals read from it. The process must stay healthy (/healthz 200) throughout.
 * `--no-scrape` never touches /metrics (prom-client then never loads). The preloaded probe
 * reports, on SIGUSR2, `process.memoryUsage()` and which heavy packages are loaded.
 * `--heap-snapshot` also writes a heap snapshot at the last checkpoint (node
 * --heapsnapshot-signal) into ./daemon-heap/. Extra flags to compare: BENCH_NODE_ARGS='...'.
 *
 * Goal: RSS <= 70 MB with 100 managed certificates after many cycles.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/ports';
import { startTestbed } from '../test/helpers/testbed';
import { BIN, installNotDueCertificates, machine } from './bench-util';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const N = Number(positional[0] ?? 100);
const CHECKPOINTS = (positional[1] ?? '30,120,300').split(',').map(Number);
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
/** Certificates ordered from Pebble at the start and renewed every half of LIFETIME_S. */
const LIVE = 5;
const LIFETIME_S = 60;
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

/** The node flags of the daemon unit's ExecStart (between /usr/bin/node and /usr/bin/certpilot). */
function unitNodeFlags(): string[] {
  const unit = readFileSync(path.join(__dirname, '..', 'systemd', 'certpilot.service'), 'utf8');
  const argv = /^ExecStart=(.*)$/m.exec(unit)![1]!.trim().split(/\s+/);
  if (argv[0] !== '/usr/bin/node') throw new Error(`unexpected ExecStart: ${argv.join(' ')}`);
  return argv.slice(1, argv.indexOf('/usr/bin/certpilot'));
}

interface Sample {
  cycles: number;
  rssMB: number;
  hwmMB: number;
  cpuMs: number;
  /** Successful renewals so far (orders from Pebble), from /metrics. */
  renewals?: number;
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
  const tb = await startTestbed({ certificateValidityPeriod: LIFETIME_S });
  try {
    const stateDir = path.join(dir, 'state');
    await installNotDueCertificates(stateDir, N);
    const port = await freePort();
    const config = await tb.writeConfig(
      [
        ...Array.from({ length: N }, (_, i) => ({ name: `c${i}`, domains: [`c${i}.example.test`] })),
        ...Array.from({ length: LIVE }, (_, i) => ({ name: `live${i}`, domains: [`live${i}.example.test`] })),
      ],
      { storage: { stateDir }, daemon: { checkInterval: '1s', listen: `127.0.0.1:${port}` } },
    );
    const probeFile = path.join(dir, 'probe.js');
    writeFileSync(probeFile, PROBE);
    const heapDir = path.join(process.cwd(), 'daemon-heap');
    // Extra node flags to compare (e.g. BENCH_NODE_ARGS='--lite-mode'), as a unit's ExecStart could pass.
    const unitFlags = unitNodeFlags();
    const nodeArgs = [
      '-r',
      probeFile,
      ...unitFlags,
      ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
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
      let res: Response;
      try {
        res = await fetch(`${base}/healthz`);
      } catch {
        return -1; // not listening yet
      }
      const body = (await res.json()) as { cycles: number; reasons?: string[] };
      // The real job must keep succeeding: a failing renewal or a stuck loop ends the benchmark.
      if (res.status !== 200 && body.cycles > 0) throw new Error(`unhealthy: ${JSON.stringify(body)}`);
      return body.cycles;
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
          sample.renewals = [
            ...text.matchAll(/^certpilot_renewals_total\{name="[^"]+",result="success"\} (\d+)/gm),
          ]
            .map((m) => Number(m[1]))
            .reduce((a, b) => a + b, 0);
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
          bench: 'daemon-unit',
          nodeFlags: unitFlags,
          live: LIVE,
          lifetimeSeconds: LIFETIME_S,
          n: N,
          scrape: SCRAPE,
          wallSeconds: +wallS.toFixed(1),
          samples: samples.map((s) => ({
            cycles: s.cycles,
            rssMB: s.rssMB,
            hwmMB: s.hwmMB,
            cpuSeconds: +(s.cpuMs / 1000).toFixed(2),
            renewals: s.renewals,
            heapUsedMB: +((s.probe?.memory.heapUsed ?? 0) / 2 ** 20).toFixed(1),
            heapTotalMB: +((s.probe?.memory.heapTotal ?? 0) / 2 ** 20).toFixed(1),
            externalMB: +((s.probe?.memory.external ?? 0) / 2 ** 20).toFixed(1),
            modules: s.probe?.modules,
            heavyLoaded: s.probe?.loaded,
          })),
          cpuPerCycle: perCycle,
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
    await tb.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
