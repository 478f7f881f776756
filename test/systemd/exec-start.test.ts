import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, watch } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { readDeployState } from '../../src/state/deploy-state';
import { makeCa, makeCertificate } from '../helpers/certs';
import { startNginx, type Nginx } from '../helpers/nginx';
import { freePort } from '../helpers/ports';
import { rootOwned, SERVICE_USER, serviceUserWorld, type ServiceUserWorld } from '../helpers/service-user';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { servedSerial } from '../deploy/world';

/**
 * The shipped units doing the real job, as far as it can be done without systemd as PID 1:
 *
 * - certpilot.service's own ExecStart, node flags included, run as an unprivileged service user
 *   (`nobody`), with the unit's UMask= and the environment systemd gives a service (PATH and
 *   LANG, plus the unit's Environment=), against a state directory that user owns (StateDirectory=);
 * - it issues a missing certificate from Pebble through BIND, writes the output nginx reads,
 *   and, with the nginx deployer's default, asks for a reload through the request file;
 * - the test stands in for systemd: when the request file appears (PathExists= of
 *   certpilot-reload-nginx.path) it runs the ExecCondition=/ExecStart= lines of
 *   certpilot-reload-nginx.service as root, pointed at the test's own nginx;
 * - certpilot then sees the new certificate served (deploy verified), idles through further
 *   check cycles and stops cleanly on SIGTERM.
 *
 * A benchmark once measured an idle loop that never contacted a CA, which hid that
 * `--lite-mode` in this very command line killed the process on its first request.
 */
const UNIT = path.join(__dirname, '../../systemd/certpilot.service');
const RELOAD_UNIT = path.join(__dirname, '../../systemd/certpilot-reload-nginx.service');
const RELOAD_PATH_UNIT = path.join(__dirname, '../../systemd/certpilot-reload-nginx.path');
const execFileP = promisify(execFile);
const BIN = path.join(__dirname, '../../bin/certpilot.js');
const SYSTEMD_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

interface UnitCommand {
  nodeFlags: string[];
  args: string[];
  umask: string;
  /** The unit's Environment= assignments. */
  env: Record<string, string>;
}

function unitCommand(): UnitCommand {
  const text = readFileSync(UNIT, 'utf8');
  const lines = [...text.matchAll(/^ExecStart=(.*)$/gm)].map((m) => m[1]!.trim());
  expect(lines).toHaveLength(1);
  const argv = lines[0]!.split(/\s+/);
  expect(argv[0]).toBe('/usr/bin/node');
  const script = argv.indexOf('/usr/bin/certpilot');
  expect(script).toBeGreaterThan(0);
  const umask = /^UMask=(\d+)$/m.exec(text)?.[1];
  expect(umask).toBeDefined();
  const env = Object.fromEntries(
    [...text.matchAll(/^Environment=(.*)$/gm)]
      .flatMap((m) => m[1]!.trim().split(/\s+/))
      .map((w) => w.split(/=(.*)/s) as [string, string]),
  );
  return { nodeFlags: argv.slice(1, script), args: argv.slice(script + 1), umask: umask!, env };
}

interface Running {
  exited: Promise<number | null>;
  stderr: () => string;
  kill: (sig: NodeJS.Signals) => void;
}

function start(cmd: UnitCommand, config: string, as?: { uid: number; gid: number }): Running {
  const args = cmd.args.map((a) => (a === '/etc/certpilot/certpilot.yaml' ? config : a));
  // sh applies the unit's umask, then execs node itself: same PID, as under systemd.
  const child = spawn(
    '/bin/sh',
    ['-c', `umask ${cmd.umask} && exec "$@"`, 'sh', process.execPath, ...cmd.nodeFlags, BIN, ...args],
    { env: { ...SYSTEMD_ENV, ...cmd.env }, stdio: ['ignore', 'ignore', 'pipe'], ...as },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { exited, stderr: () => stderr, kill: (sig) => child.kill(sig) };
}

/** Resolves with /healthz's body once `done` holds; rejects if the process exits first. */
async function healthUntil(
  run: Running,
  port: number,
  done: (h: { status: string; cycles: number }) => boolean,
): Promise<{ status: string; cycles: number }> {
  let exited = false;
  void run.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`certpilot exited early:\n${run.stderr()}`);
    try {
      const h = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
        status: string;
        cycles: number;
      };
      if (done(h)) return h;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The reload unit's commands, as systemd would run them when the request file appears, mapped
 * onto the test's nginx (its own prefix and config) and state directory. An unknown line fails
 * the test, so a changed unit cannot go unnoticed.
 */
async function runReloadUnit(nginx: Nginx, stateDir: string): Promise<void> {
  const unit = readFileSync(RELOAD_UNIT, 'utf8');
  const lines = [...unit.matchAll(/^(ExecCondition|ExecStart)=(.*)$/gm)].map((m) => m[2]!.trim());
  for (const line of lines) {
    if (line === '/bin/rm -f /var/lib/certpilot/nginx-reload-request') {
      await rm(path.join(stateDir, 'nginx-reload-request'), { force: true });
    } else if (line === '/usr/bin/systemctl -q is-active nginx.service') {
      // The test's nginx is running (it answered the first probe).
    } else if (line === '/usr/sbin/nginx -t -q') {
      const [file, ...args] = nginx.testArgv() as [string, ...string[]];
      await execFileP(file, [...args, '-q']);
    } else if (line === '/usr/bin/systemctl reload nginx.service') {
      const [file, ...args] = nginx.reloadArgv() as [string, ...string[]];
      await execFileP(file, args);
    } else {
      throw new Error(`certpilot-reload-nginx.service: no stand-in for "${line}"`);
    }
  }
}

let tb: Testbed;
let nginx: Nginx | undefined;
let world: ServiceUserWorld | undefined;
beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await nginx?.stop();
  await tb?.stop();
  await world?.remove();
});

test('the daemon unit ExecStart, as the service user: issues, deploys through the reload unit, verifies, idles, stops', async () => {
  expect(process.getuid?.()).toBe(0); // precondition: CI runs the suite as root, as systemd runs the reload unit
  const cmd = unitCommand();
  expect(readFileSync(RELOAD_PATH_UNIT, 'utf8')).toMatch(
    /^PathExists=\/var\/lib\/certpilot\/nginx-reload-request$/m,
  );
  world = await serviceUserWorld(tb, 'certpilot-unit-');
  const { dir, stateDir, own } = world;
  // An output directory in ReadWritePaths=, where nginx reads; a placeholder until the first issue.
  const outDir = path.join(dir, 'out');
  await mkdir(outDir);
  await own(outDir, 0o755);
  const ca = makeCa();
  const placeholder = makeCertificate({
    names: ['svc.example.test'],
    issuer: ca,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
  });
  const fullchain = path.join(outDir, 'svc.fullchain.pem');
  const key = path.join(outDir, 'svc.key');
  await writeFile(fullchain, placeholder.certPem + ca.certPem);
  await writeFile(key, placeholder.keyPem, { mode: 0o600 });
  await own(fullchain, 0o644);
  await own(key, 0o600);
  nginx = await startNginx({
    sites: [{ serverName: 'svc.example.test', certPath: fullchain, keyPath: key }],
  });
  const port = nginx.ports[0]!;
  const before = await servedSerial(port, 'svc.example.test');

  const metricsPort = await freePort();
  const config = await world.writeConfig(
    [
      {
        name: 'svc',
        domains: ['svc.example.test'],
        outputs: [{ fullchain, key }],
        deploy: [{ type: 'nginx' }],
        endpoints: [{ host: 'svc.example.test', port, connectAddress: '127.0.0.1' }],
      },
    ],
    {
      daemon: { checkInterval: '1s', listen: `127.0.0.1:${metricsPort}` },
      verify: { timeout: '60s', interval: '200ms', maxInterval: '1s' },
    },
  );

  // systemd's part: PathExists= on the request file starts the root-run reload unit.
  const request = path.join(stateDir, 'nginx-reload-request');
  let reloads = 0;
  let reloadError: unknown;
  const watcher = watch(stateDir, () => {
    if (!existsSync(request)) return;
    reloads++;
    runReloadUnit(nginx!, stateDir).catch((err: unknown) => (reloadError = err));
  });
  const run = start(cmd, config, SERVICE_USER);
  try {
    // The first cycle orders, installs, requests the reload and verifies; three more are idle.
    await healthUntil(run, metricsPort, (h) => h.cycles >= 4);
    expect(reloadError).toBeUndefined();
    expect(reloads).toBeGreaterThanOrEqual(1);
    const state = await readDeployState(stateDir, 'svc');
    expect(state).toMatchObject({ status: 'verified' });
    const served = await servedSerial(port, 'svc.example.test');
    expect(served).not.toBe(before);
    expect(served).toBe(state!.serial);
    const cert = new X509Certificate(await readFile(path.join(stateDir, 'certs', 'svc', 'cert.pem'), 'utf8'));
    expect(cert.subjectAltName).toBe('DNS:svc.example.test');
    expect(cert.serialNumber).toBe(served);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/certpilot_renewals_total\{name="svc",result="success"\} 1\n/);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
  } finally {
    run.kill('SIGTERM');
    watcher.close();
  }
  expect(await run.exited).toBe(0);
  // Everything the service wrote is the service user's, private keys 0600 (UMask=0077).
  expect(await rootOwned(stateDir)).toEqual([]);
  expect((await lstat(path.join(stateDir, 'certs', 'svc', 'current', 'privkey.pem'))).mode & 0o777).toBe(
    0o600,
  );
  expect(existsSync(request)).toBe(false);
}, 120_000);

test('control: the same command line with --lite-mode refuses to start, saying why', async () => {
  const cmd = unitCommand();
  const config = await tb.writeConfig([{ name: 'lite', domains: ['lite.example.test'] }], {
    storage: { stateDir: path.join(tb.dir, 'state-lite') },
    daemon: { checkInterval: '1s', listen: '' },
  });
  const run = start({ ...cmd, nodeFlags: ['--lite-mode', ...cmd.nodeFlags] }, config);
  expect(await run.exited).toBe(2);
  expect(run.stderr()).toMatch(/no WebAssembly .*--lite-mode/);
}, 30_000);
