import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './ports';

/**
 * A real nginx (Debian's nginx-light) for deploy tests: its own prefix directory, one TLS
 * server per site on a free 127.0.0.1 port, run in the foreground (`-g 'daemon off;'`) so the
 * test owns the process. `testArgv`/`reloadArgv` are exactly what a deploy step would run.
 */

const NGINX = '/usr/sbin/nginx';
const execFileP = promisify(execFile);

export interface NginxSite {
  /** server_name; SNI for probes. */
  serverName: string;
  certPath: string;
  keyPath: string;
}

export interface Nginx {
  readonly dir: string;
  readonly conf: string;
  /** One port per site, in order. */
  readonly ports: readonly number[];
  /** `nginx -p DIR -c CONF -t`: the config test, against whatever the cert paths hold now. */
  testArgv(): string[];
  /** `nginx -p DIR -c CONF -s reload`. */
  reloadArgv(): string[];
  /**
   * Resolves once the master has a single worker again: after a graceful reload the old worker
   * can still accept a connection or two until it has handled the signal, so a probe meant to
   * see only the new configuration waits for this first.
   */
  settled(): Promise<void>;
  /** The master's worker processes now. */
  workerPids(): Promise<number[]>;
  /**
   * Resolves once every worker in `previous` has exited and a new one runs: after a reload the
   * test ran itself, when settled() could still see the old worker alone (the master had not
   * forked the new one yet) and a probe could land on the old worker.
   */
  replaced(previous: readonly number[]): Promise<void>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startNginx(opts: { sites: readonly NginxSite[] }): Promise<Nginx> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-nginx-'));
  await mkdir(path.join(dir, 'logs'));
  await mkdir(path.join(dir, 'tmp'));
  const ports: number[] = [];
  for (let i = 0; i < opts.sites.length; i++) ports.push(await freePort());
  const servers = opts.sites.map(
    (s, i) => `
    server {
      listen 127.0.0.1:${ports[i]} ssl;
      server_name ${s.serverName};
      ssl_certificate ${s.certPath};
      ssl_certificate_key ${s.keyPath};
      location / { return 200 "ok\\n"; }
    }`,
  );
  const conf = path.join(dir, 'nginx.conf');
  // Temp paths inside the prefix: the compiled-in defaults under /var/lib/nginx may not be writable.
  // Each listening socket takes one of the worker's connections: room for every site's listener
  // and its probes (the fleet bench runs 100 sites on one nginx).
  const tmp = path.join(dir, 'tmp');
  await writeFile(
    conf,
    `worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'logs', 'error.log')} info;
events { worker_connections ${Math.max(64, 4 * opts.sites.length)}; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${servers.join('\n')}
}
`,
  );
  const base = ['-p', dir, '-c', conf];
  const child = spawn(NGINX, [...base, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const died = exited.then(() => {
    throw new Error(`nginx exited during start:\n${output}`);
  });
  try {
    await Promise.race([Promise.all(ports.map((p) => waitForPort(p))), died]);
  } catch (err) {
    child.kill('SIGKILL');
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  died.catch(() => undefined);

  let stopped = false;
  return {
    dir,
    conf,
    ports,
    testArgv: () => [NGINX, ...base, '-t'],
    reloadArgv: () => [NGINX, ...base, '-s', 'reload'],
    async settled() {
      for (;;) {
        if ((await workersOf(child.pid!)).length <= 1) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    workerPids: () => workersOf(child.pid!),
    async replaced(previous) {
      for (;;) {
        const now = await workersOf(child.pid!);
        if (now.length > 0 && !now.some((p) => previous.includes(p))) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    errorLog: () => readFile(path.join(dir, 'logs', 'error.log'), 'utf8').catch(() => ''),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM is nginx's fast shutdown.
        child.kill('SIGTERM');
        await exited;
      }
      running.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Processes whose parent is `pid` (from /proc/<n>/stat). */
async function workersOf(pid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the ")" of the command name: state, then the parent pid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) pids.push(Number(entry));
  }
  return pids;
}

/** Runs the config test directly (for assertions about what nginx thinks of the files). */
export async function nginxTest(n: Nginx): Promise<boolean> {
  const [file, ...args] = n.testArgv() as [string, ...string[]];
  return execFileP(file, args).then(
    () => true,
    () => false,
  );
}
