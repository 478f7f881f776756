/**
 * Benchmark: the daemon as the shipped unit runs it, doing real work (issues #13, #17).
 *
 *   npm run build
 *   npx ts-node --transpile-only bench/daemon-bench.ts [N=100] [--endpoints=100] [--runs=5]
 *       [--live-cycles=40] [--idle-cycles=30] [--compare=/path/to/other/checkout]
 *       [--no-scrape] [--heap-snapshot]
 *
 * The node flags are read from ExecStart= of the build's own systemd/certpilot.service (today
 * `--max-semi-space-size=1`), so the figure is the unit's command line, not a variant of it.
 * Pebble and BIND run on loopback (test/helpers/testbed.ts); 100 TLS endpoints are served by a
 * separate process (bench/endpoint-farm.ts) and watched (`watch.endpoints`). The config has N
 * managed certificates installed from a test CA with 60 of 90 days left (none due), plus LIVE
 * certificates that do not exist yet: the first cycle orders them from Pebble through BIND
 * (DNS-01, the real propagation check), and since Pebble issues them for LIFETIME_S seconds
 * they are renewed every half lifetime. `daemon.checkInterval: 1s` (a cycle about every second,
 * MIN_CYCLE_GAP_MS: the worst case; the default is 10 minutes) and `daemon.endpointInterval:
 * 15s` (the inventory: the N stored certificates and the watched endpoints; default 1 hour).
 *
 * Each run has two phases:
 * - live: until --live-cycles cycles have completed and the live certificates were issued and
 *   renewed at least once (2 x LIVE successful renewals on /metrics);
 * - idle: the live certificates are removed from the config file and the daemon gets SIGHUP;
 *   after 3 settling cycles, --idle-cycles cycles in which nothing is due (the inventory still
 *   runs every 15 s). RSS is sampled every poll (500 ms); "idle RSS" is the last sample, "idle
 *   max" the largest, VmHWM the peak of the whole run (the live orders included).
 * /metrics is scraped at every phase end (as Prometheus would; prom-client loads then) and
 * /healthz must stay 200 throughout. CPU per cycle = utime + stime delta over the cycle delta.
 * A preloaded probe reports `process.memoryUsage()` and the heavy packages loaded (SIGUSR2).
 *
 * One warm-up run, then --runs measured runs; medians are printed. With --compare=DIR the
 * build in DIR (its bin/certpilot.js, dist/ and systemd unit) runs beside this one, each run
 * a pair started together against the same Pebble (distinct live names): same sitting, same
 * load. `--heap-snapshot` writes one heap snapshot at the end of the first measured idle phase
 * of this build into ./daemon-heap/. Extra node flags to try: BENCH_NODE_ARGS='...'.
 *
 * Goal: idle RSS <= 70 MB with the unit's flags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../test/helpers/ports';
import { startTestbed, type Testbed } from '../test/helpers/testbed';
import { installNotDueCertificates, machine, median } from './bench-util';
import { startEndpointFarm, type EndpointFarm } from './endpoint-farm';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const N = Number(args.find((a) => !a.startsWith('--')) ?? 100);
const ENDPOINTS = Number(opt('endpoints', '100'));
const RUNS = Number(opt('runs', '5'));
const LIVE_CYCLES = Number(opt('live-cycles', '40'));
const IDLE_CYCLES = Number(opt('idle-cycles', '30'));
const COMPARE = opt('compare', '');
const SCRAPE = !args.includes('--no-scrape');
const HEAP_SNAPSHOT = args.includes('--heap-snapshot');
const HEAVY = [
  'acme-client',
  '@peculiar/x509',
  '@aws-sdk',
  'prom-client',
  'nodemailer',
  'axios',
  'node-forge',
  'winston',
  'convict',
  'yaml',
];
/** Certificates ordered from Pebble at the start and renewed every half of LIFETIME_S. */
const LIVE = 5;
const LIFETIME_S = 60;
/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux). */
const CLK_TCK = 100;
const SETTLE_CYCLES = 3;

/**
 * Preloaded: on SIGUSR2, prints memoryUsage, the number of module files loaded and the heavy
 * packages among them (every file Module.prototype.load saw, so a private copy that was
 * dropped from require.cache still counts).
 */
const PROBE = `const seen = new Set();
const Module = require('node:module');
const load = Module.prototype.load;
Module.prototype.load = function (filename) { seen.add(filename); return load.call(this, filename); };
process.on('SIGUSR2', () => {
  const heavy = ${JSON.stringify(HEAVY)};
  const keys = [...seen];
  const loaded = heavy.filter((h) => keys.some((k) => k.includes('/node_modules/' + h + '/')));
  const m = process.memoryUsage();
  process.stderr.write('BENCH_PROBE=' + JSON.stringify({ loaded, modules: keys.length, memory: m }) + '\\n');
});`;

interface Build {
  label: string;
  root: string;
  /** Node flags beyond the unit's (a --variant). */
  extraArgs?: string[];
  /** Environment beyond the unit's (a --variant's VAR=value words). */
  extraEnv?: Record<string, string>;
}

/** --variant=LABEL:WORDS (repeatable): this build again with more node flags and VAR=value words. */
function parseVariants(root: string): Build[] {
  return args
    .filter((a) => a.startsWith('--variant='))
    .map((a) => {
      const [label, words = ''] = a.slice('--variant='.length).split(/:(.*)/s);
      const list = words.split(' ').filter(Boolean);
      const env = Object.fromEntries(list.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split(/=(.*)/s)));
      return { label: label!, root, extraArgs: list.filter((w) => !/^[A-Z_]+=/.test(w)), extraEnv: env };
    });
}

interface Probe {
  loaded: string[];
  modules: number;
  memory: Record<string, number>;
}

/** One run's figures for one build. */
interface RunResult {
  liveRssMB: number;
  idleRssMB: number;
  idleMaxRssMB: number;
  hwmMB: number;
  liveCpuMsPerCycle: number;
  idleCpuMsPerCycle: number;
  renewals: number;
  idle: Probe;
}

/** The node flags of the daemon unit's ExecStart (between /usr/bin/node and /usr/bin/certpilot). */
function unitNodeFlags(root: string): string[] {
  const unit = readFileSync(path.join(root, 'systemd', 'certpilot.service'), 'utf8');
  const argv = /^ExecStart=(.*)$/m.exec(unit)![1]!.trim().split(/\s+/);
  if (argv[0] !== '/usr/bin/node') throw new Error(`unexpected ExecStart: ${argv.join(' ')}`);
  return argv.slice(1, argv.indexOf('/usr/bin/certpilot'));
}

/** The unit's Environment= assignments (VAR=value words), applied as systemd would. */
function unitEnvironment(root: string): Record<string, string> {
  const unit = readFileSync(path.join(root, 'systemd', 'certpilot.service'), 'utf8');
  const words = [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  return Object.fromEntries(words.map((w) => w.split(/=(.*)/s) as [string, string]));
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A running daemon of one build, with the helpers to follow it. */
class DaemonUnderTest {
  readonly child: ChildProcess;
  private stderr = '';
  private readonly probes: Probe[] = [];
  private readonly exited: Promise<number | null>;
  maxRssMB = 0;

  constructor(
    readonly build: Build,
    readonly config: string,
    readonly port: number,
    nodeArgs: string[],
    env: Record<string, string>,
  ) {
    const bin = path.join(build.root, 'bin', 'certpilot.js');
    this.child = spawn(
      process.execPath,
      [...nodeArgs, bin, 'run', '--config', config, '--log-level', 'warn', '--log-format', 'json'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
    );
    this.child.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString();
      let m: RegExpExecArray | null;
      const re = /BENCH_PROBE=(.*)\n/g;
      while ((m = re.exec(this.stderr))) this.probes.push(JSON.parse(m[1]!) as Probe);
      this.stderr = this.stderr.replace(/BENCH_PROBE=.*\n/g, '');
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Completed cycles from /healthz (-1 before it listens); throws when unhealthy or exited. */
  async cycles(): Promise<number> {
    if (this.child.exitCode !== null)
      throw new Error(`${this.build.label}: certpilot exited ${this.child.exitCode}\n${this.stderr}`);
    this.maxRssMB = Math.max(this.maxRssMB, status(this.pid).rssMB);
    let res: Response;
    try {
      res = await fetch(`http://127.0.0.1:${this.port}/healthz`);
    } catch {
      return -1;
    }
    const body = (await res.json()) as { cycles: number; status: string };
    // A failing renewal ends the benchmark. "stale" (no cycle within 3 check intervals) is not
    // a failure here: with the 1 s interval a cycle that orders or runs the inventory takes longer.
    if (res.status !== 200 && body.status !== 'stale' && body.cycles > 0)
      throw new Error(`${this.build.label}: unhealthy: ${JSON.stringify(body)}`);
    return body.cycles;
  }

  async waitFor(done: (cycles: number) => Promise<boolean>): Promise<number> {
    for (;;) {
      const c = await this.cycles();
      if (c >= 0 && (await done(c))) return c;
      await sleep(500);
    }
  }

  /** Scrapes /metrics as Prometheus would: successful renewals so far. */
  async renewals(cycles: number): Promise<number> {
    if (!SCRAPE) return NaN;
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    const scraped = Number(/^certpilot_daemon_cycles_total (\d+)/m.exec(text)?.[1]);
    if (!(scraped >= cycles)) throw new Error(`/metrics says ${scraped} cycles, /healthz ${cycles}`);
    return [...text.matchAll(/^certpilot_renewals_total\{name="[^"]+",result="success"\} (\d+)/gm)]
      .map((m) => Number(m[1]))
      .reduce((a, b) => a + b, 0);
  }

  async probe(): Promise<Probe> {
    const n = this.probes.length;
    this.child.kill('SIGUSR2');
    while (this.probes.length === n) await sleep(20);
    return this.probes[n]!;
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const code = await this.exited;
    if (code !== 0) throw new Error(`${this.build.label}: certpilot exited ${code}\n${this.stderr}`);
  }
}

/** Starts one build's daemon on a fresh copy of the state and its own config. */
async function startDaemon(
  tb: Testbed,
  farm: EndpointFarm,
  build: Build,
  template: string,
  dir: string,
  heapDir?: string,
): Promise<DaemonUnderTest> {
  const stateDir = path.join(dir, 'state');
  // verbatimSymlinks: the store's links are relative and must stay so (cp would point them at the template).
  cpSync(template, stateDir, { recursive: true, verbatimSymlinks: true });
  const port = await freePort();
  const tag = build.label.replace(/[^a-z0-9]/g, '');
  const config = await tb.writeConfig(
    [
      ...Array.from({ length: N }, (_, i) => ({ name: `c${i}`, domains: [`c${i}.example.test`] })),
      ...Array.from({ length: LIVE }, (_, i) => ({
        name: `live${i}`,
        domains: [`live${i}-${tag}.example.test`],
      })),
    ],
    {
      storage: { stateDir },
      daemon: { checkInterval: '1s', endpointInterval: '15s', listen: `127.0.0.1:${port}` },
      watch: { endpoints: farm.watchEntries() },
    },
  );
  const probeFile = path.join(dir, 'probe.js');
  writeFileSync(probeFile, PROBE);
  const nodeArgs = [
    '-r',
    probeFile,
    ...unitNodeFlags(build.root),
    ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ...(build.extraArgs ?? []),
  ];
  if (heapDir) nodeArgs.push('--heapsnapshot-signal=SIGUSR1', `--diagnostic-dir=${heapDir}`);
  return new DaemonUnderTest(build, config, port, nodeArgs, {
    ...unitEnvironment(build.root),
    ...build.extraEnv,
  });
}

/** The live phase, the reload without the live certificates, the idle phase. */
async function measure(d: DaemonUnderTest, heapSnapshot: boolean): Promise<RunResult> {
  let renewals = 0;
  const liveEnd = await d.waitFor(async (c) => {
    if (c < LIVE_CYCLES) return false;
    renewals = await d.renewals(c);
    return !SCRAPE || renewals >= 2 * LIVE;
  });
  const live = { ...status(d.pid), cpuMs: cpuMs(d.pid) };
  // Idle: the live certificates leave the config (nothing is due any more), SIGHUP re-reads it.
  const doc = parse(readFileSync(d.config, 'utf8')) as { certificates: { name: string }[] };
  doc.certificates = doc.certificates.filter((c) => !c.name.startsWith('live'));
  writeFileSync(d.config, stringify(doc));
  d.child.kill('SIGHUP');
  const idleStart = await d.waitFor(async (c) => c >= liveEnd + SETTLE_CYCLES);
  const idleCpu = cpuMs(d.pid);
  d.maxRssMB = 0;
  const idleEnd = await d.waitFor(async (c) => c >= idleStart + IDLE_CYCLES);
  const idle = { ...status(d.pid), cpuMs: cpuMs(d.pid) };
  const probe = await d.probe();
  if (SCRAPE) await d.renewals(idleEnd);
  if (heapSnapshot) {
    d.child.kill('SIGUSR1');
    await sleep(5000);
  }
  return {
    liveRssMB: live.rssMB,
    idleRssMB: idle.rssMB,
    idleMaxRssMB: d.maxRssMB,
    hwmMB: idle.hwmMB,
    liveCpuMsPerCycle: +(live.cpuMs / liveEnd).toFixed(1),
    idleCpuMsPerCycle: +((idle.cpuMs - idleCpu) / (idleEnd - idleStart)).toFixed(1),
    renewals,
    idle: probe,
  };
}

const MB = (bytes: number | undefined): number => +((bytes ?? 0) / 2 ** 20).toFixed(1);

function summarize(build: Build, results: RunResult[]): Record<string, unknown> {
  const med = (f: (r: RunResult) => number): number => +median(results.map(f)).toFixed(1);
  // --runs=0 (the warm-up alone, printed on stderr) leaves no measured run to summarize.
  const last = results[results.length - 1];
  return {
    build: build.label,
    root: build.root,
    nodeFlags: [...unitNodeFlags(build.root), ...(build.extraArgs ?? [])],
    environment: { ...unitEnvironment(build.root), ...build.extraEnv },
    runs: results.length,
    median: {
      idleRssMB: med((r) => r.idleRssMB),
      idleMaxRssMB: med((r) => r.idleMaxRssMB),
      liveRssMB: med((r) => r.liveRssMB),
      hwmMB: med((r) => r.hwmMB),
      idleCpuMsPerCycle: med((r) => r.idleCpuMsPerCycle),
      liveCpuMsPerCycle: med((r) => r.liveCpuMsPerCycle),
      heapUsedMB: med((r) => MB(r.idle.memory.heapUsed)),
      heapTotalMB: med((r) => MB(r.idle.memory.heapTotal)),
      externalMB: med((r) => MB(r.idle.memory.external)),
      arrayBuffersMB: med((r) => MB(r.idle.memory.arrayBuffers)),
    },
    perRun: results.map((r) => ({
      idleRssMB: r.idleRssMB,
      idleMaxRssMB: r.idleMaxRssMB,
      liveRssMB: r.liveRssMB,
      hwmMB: r.hwmMB,
      idleCpuMsPerCycle: r.idleCpuMsPerCycle,
      renewals: r.renewals,
    })),
    modules: last?.idle.modules,
    heavyLoaded: last?.idle.loaded,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-daemon-bench-'));
  const builds: Build[] = [{ label: 'this', root: path.join(__dirname, '..') }];
  if (COMPARE) builds.unshift({ label: 'compare', root: path.resolve(COMPARE) });
  builds.push(...parseVariants(builds[builds.length - 1]!.root));
  const tb = await startTestbed({ certificateValidityPeriod: LIFETIME_S });
  let farm: EndpointFarm | undefined;
  const loads: number[][] = [os.loadavg()];
  try {
    farm = await startEndpointFarm(dir, ENDPOINTS);
    const template = path.join(dir, 'template');
    await installNotDueCertificates(template, N);
    const results = new Map<Build, RunResult[]>(builds.map((b) => [b, []]));
    for (let run = 0; run <= RUNS; run++) {
      const snapshot = HEAP_SNAPSHOT && run === 1;
      const daemons = await Promise.all(
        builds.map(async (b) => {
          const runDir = path.join(dir, `${b.label}-${run}`);
          mkdirSync(runDir);
          const heapDir =
            snapshot && b.label === 'this' ? path.join(process.cwd(), 'daemon-heap') : undefined;
          if (heapDir) mkdirSync(heapDir, { recursive: true });
          return startDaemon(tb, farm!, b, template, runDir, heapDir);
        }),
      );
      try {
        const figures = await Promise.all(
          daemons.map((d) => measure(d, snapshot && d.build.label === 'this')),
        );
        // Run 0 is the warm-up (page cache, Pebble's first account): not counted.
        figures.forEach((f, i) => {
          if (run > 0) results.get(builds[i]!)!.push(f);
          console.error(`run ${run} ${builds[i]!.label}: ${JSON.stringify({ ...f, idle: undefined })}`);
        });
      } finally {
        await Promise.all(daemons.map((d) => d.stop()));
      }
      loads.push(os.loadavg());
    }
    console.log(
      JSON.stringify(
        {
          bench: 'daemon-unit',
          n: N,
          watchedEndpoints: ENDPOINTS,
          live: LIVE,
          lifetimeSeconds: LIFETIME_S,
          liveCycles: LIVE_CYCLES,
          idleCycles: IDLE_CYCLES,
          scrape: SCRAPE,
          builds: builds.map((b) => summarize(b, results.get(b)!)),
          loadAverage1m: loads.map((l) => +l[0]!.toFixed(2)),
          machine: machine(),
          date: new Date().toISOString(),
        },
        null,
        2,
      ),
    );
  } finally {
    farm?.stop();
    await tb.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
