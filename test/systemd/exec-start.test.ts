import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CertStore } from '../../src/store/cert-store';
import { freePort } from '../helpers/ports';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * The daemon unit's own ExecStart, node flags included, doing the real job: it issues a
 * missing certificate from Pebble through BIND, then idles through further check cycles and
 * stops cleanly on SIGTERM. A benchmark once measured an idle loop that never contacted a CA,
 * which hid that `--lite-mode` in this very line killed the process on its first request.
 *
 * Only the install paths are replaced (/usr/bin/node -> this node, /usr/bin/certpilot -> this
 * checkout's bin/certpilot.js, the config path -> a test config); the flags and arguments stay
 * as shipped. The unit's UMask= is applied, and the environment is what systemd gives a
 * service (PATH and LANG only).
 */
const UNIT = path.join(__dirname, '../../systemd/certpilot.service');
const BIN = path.join(__dirname, '../../bin/certpilot.js');
const SYSTEMD_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

interface UnitCommand {
  nodeFlags: string[];
  args: string[];
  umask: string;
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
  return { nodeFlags: argv.slice(1, script), args: argv.slice(script + 1), umask: umask! };
}

interface Running {
  exited: Promise<number | null>;
  stderr: () => string;
  kill: (sig: NodeJS.Signals) => void;
}

function start(cmd: UnitCommand, config: string): Running {
  const args = cmd.args.map((a) => (a === '/etc/certpilot/certpilot.yaml' ? config : a));
  // sh applies the unit's umask, then execs node itself: same PID, as under systemd.
  const child = spawn(
    '/bin/sh',
    ['-c', `umask ${cmd.umask} && exec "$@"`, 'sh', process.execPath, ...cmd.nodeFlags, BIN, ...args],
    { env: SYSTEMD_ENV, stdio: ['ignore', 'ignore', 'pipe'] },
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

let tb: Testbed;
beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

test('the daemon unit ExecStart issues from the CA, idles through further cycles and stops on SIGTERM', async () => {
  const cmd = unitCommand();
  const port = await freePort();
  const stateDir = path.join(tb.dir, 'state-unit');
  const config = await tb.writeConfig([{ name: 'unit', domains: ['unit.example.test'] }], {
    storage: { stateDir },
    daemon: { checkInterval: '1s', listen: `127.0.0.1:${port}` },
  });
  const run = start(cmd, config);
  try {
    // The first cycle orders the missing certificate; three more cycles are idle (nothing due).
    await healthUntil(run, port, (h) => h.cycles >= 4);
    const stored = await new CertStore({ stateDir, archiveDepth: 5 }).read('unit');
    expect(stored).toBeDefined();
    const cert = new X509Certificate(stored!.cert);
    expect(cert.subjectAltName).toBe('DNS:unit.example.test');
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/certpilot_renewals_total\{name="unit",result="success"\} 1\n/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
  } finally {
    run.kill('SIGTERM');
  }
  expect(await run.exited).toBe(0);
}, 90_000);

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
