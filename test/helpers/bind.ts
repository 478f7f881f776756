import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';

/**
 * A real BIND (`named`) for integration tests: its own temp directory, a free port on
 * 127.0.0.1 only, no recursion, a TSIG key allowed to change TXT records in every zone, and an
 * rndc control channel for fault injection (`freeze`). Readiness is taken from named's own log
 * ("running"), never from a sleep.
 *
 *   const bind = await startBind({ zones: [{ name: 'example.test' }, { name: 'sub.example.test' }] });
 *   // ... bind.port, bind.tsig, await bind.queryTxt('_acme-challenge.example.test')
 *   await bind.stop();
 */

const execFileP = promisify(execFile);
const NAMED = '/usr/sbin/named';
const RNDC = '/usr/sbin/rndc';
const DIG = '/usr/bin/dig';
/** Generous: named loads a handful of tiny zones in well under a second, but CI machines stall. */
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export interface BindZone {
  /** Zone apex, e.g. `example.test`. A zone below another listed zone is delegated from it. */
  readonly name: string;
  /** Extra zone-file lines, relative to the apex (`www 60 IN A 127.0.0.1`). */
  readonly records?: readonly string[];
}

export interface StartBindOptions {
  readonly zones: readonly BindZone[];
  /** Default hmac-sha256. */
  readonly tsigAlgorithm?: 'hmac-sha1' | 'hmac-sha224' | 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';
}

export interface BindServer {
  readonly port: number;
  readonly address: '127.0.0.1';
  /** The key named accepts for TXT updates in every zone. */
  readonly tsig: { readonly name: string; readonly algorithm: string; readonly secret: string };
  readonly dir: string;
  /** `rndc freeze <zone>`: dynamic updates to the zone are refused until `thaw`. */
  freeze(zone: string): Promise<void>;
  thaw(zone: string): Promise<void>;
  /** TXT values at `fqdn`, asked with dig (an implementation independent of ours), RD=0. */
  queryTxt(fqdn: string): Promise<string[]>;
  /** named's log so far, for failure messages. */
  log(): string;
  /** Process id of named (fault injection). */
  readonly pid: number;
  /**
   * SIGSTOP: named stops answering, but the kernel still accepts TCP connections and queues
   * datagrams for it, like a hung server. `resume` (SIGCONT) lets it work through the backlog.
   * `stop` resumes a paused named first, so it can exit cleanly. Signals are delivered
   * asynchronously: `pause` resolves only once the kernel reports every named thread stopped.
   */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// If a test run dies without afterAll, do not leave named processes behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function zoneFile(zone: string, all: readonly BindZone[], extra: readonly string[]): string {
  const lines = [
    `$ORIGIN ${zone}.`,
    '$TTL 60',
    `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 60`,
    `@ IN NS ns1.${zone}.`,
    'ns1 IN A 127.0.0.1',
  ];
  // Delegate direct children: NS and glue in the parent, so the zone cut is real.
  for (const child of all) {
    if (child.name === zone || !child.name.endsWith('.' + zone)) continue;
    const between = all.some(
      (z) =>
        z.name !== zone &&
        z.name !== child.name &&
        child.name.endsWith('.' + z.name) &&
        z.name.endsWith('.' + zone),
    );
    if (between) continue;
    lines.push(`${child.name}. IN NS ns1.${child.name}.`, `ns1.${child.name}. IN A 127.0.0.1`);
  }
  return [...lines, ...extra, ''].join('\n');
}

export async function startBind(options: StartBindOptions): Promise<BindServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-bind-'));
  const port = await freePort();
  let controlPort = await freePort();
  while (controlPort === port) controlPort = await freePort();
  const algorithm = options.tsigAlgorithm ?? 'hmac-sha256';
  const tsig = { name: 'certpilot-test', algorithm, secret: randomBytes(32).toString('base64') };
  const rndcSecret = randomBytes(32).toString('base64');
  const zones = options.zones.map((z) => ({ ...z, name: z.name.toLowerCase().replace(/\.$/, '') }));

  const conf = [
    'options {',
    `  directory "${dir}";`,
    `  pid-file "${dir}/named.pid";`,
    `  session-keyfile "${dir}/session.key";`,
    `  managed-keys-directory "${dir}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    '  recursion no;',
    '  dnssec-validation no;',
    '  notify no;',
    '  allow-transfer { none; };',
    '};',
    `key "${tsig.name}" { algorithm ${algorithm}; secret "${tsig.secret}"; };`,
    `key "rndc-key" { algorithm hmac-sha256; secret "${rndcSecret}"; };`,
    `controls { inet 127.0.0.1 port ${controlPort} allow { 127.0.0.1; } keys { "rndc-key"; }; };`,
    ...zones.map(
      (z) =>
        `zone "${z.name}" { type primary; file "${dir}/${z.name}.db"; update-policy { grant ${tsig.name} zonesub TXT; }; };`,
    ),
    '',
  ].join('\n');
  const rndcConf = [
    `key "rndc-key" { algorithm hmac-sha256; secret "${rndcSecret}"; };`,
    `options { default-key "rndc-key"; default-server 127.0.0.1; default-port ${controlPort}; };`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'named.conf'), conf, { mode: 0o600 });
  await writeFile(path.join(dir, 'rndc.conf'), rndcConf, { mode: 0o600 });
  for (const z of zones)
    await writeFile(path.join(dir, `${z.name}.db`), zoneFile(z.name, zones, z.records ?? []));

  // -g: foreground, log to stderr (our readiness signal); -c: our config only.
  const child = spawn(NAMED, ['-g', '-c', path.join(dir, 'named.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let log = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`named did not report "running" within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      const done = (err?: Error): void => {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      const onData = (chunk: Buffer): void => {
        log += chunk.toString('utf8');
        // The last start-up line is a bare "<date> <time> running"; earlier lines ("running on
        // Linux", "running as: named ...") come before the sockets and zones are ready.
        if (/^\S+ \S+ running\s*$/m.test(log) && /all zones loaded/.test(log)) done();
      };
      const onExit = (code: number | null): void => done(new Error(`named exited (${code}) during start`));
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err });
  }
  child.stderr?.on('data', (chunk: Buffer) => void (log += chunk.toString('utf8')));

  const rndc = async (...args: string[]): Promise<void> => {
    await execFileP(RNDC, ['-c', path.join(dir, 'rndc.conf'), ...args]);
  };
  let stopped = false;
  let paused = false;
  return {
    port,
    address: '127.0.0.1',
    tsig,
    dir,
    freeze: (zone) => rndc('freeze', zone),
    thaw: (zone) => rndc('thaw', zone),
    async queryTxt(fqdn) {
      const { stdout } = await execFileP(DIG, [
        '+short',
        '+norecurse',
        '+tries=1',
        '+time=5',
        '-p',
        String(port),
        '@127.0.0.1',
        fqdn,
        'TXT',
      ]);
      // One line per record; each record is one or more quoted strings that together are the value.
      return stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join(''));
    },
    log: () => log,
    pid: child.pid!,
    async pause() {
      child.kill('SIGSTOP');
      paused = true;
      // Wait for the state, not for time: every thread of named in state T (stopped).
      const deadline = Date.now() + 5_000;
      for (;;) {
        const tasks = await readdir(`/proc/${child.pid}/task`);
        const states = await Promise.all(
          tasks.map(
            async (t) =>
              (await readFile(`/proc/${child.pid}/task/${t}/stat`, 'utf8')).replace(/^.*\) /s, '')[0],
          ),
        );
        if (states.every((st) => st === 'T' || st === 't')) return;
        if (Date.now() > deadline) throw new Error(`named did not stop: thread states ${states.join('')}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    resume() {
      child.kill('SIGCONT');
      paused = false;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (paused && child.exitCode === null) child.kill('SIGCONT');
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(grace);
      }
      running.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
