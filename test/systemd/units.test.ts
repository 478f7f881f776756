import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The unit files in systemd/ must pass `systemd-analyze verify` (Debian package `systemd`;
 * .ci/run installs it). Missing tool = failed test, never a skip: an unverified unit file is
 * how a scheduler silently stops running (certbot#9931).
 *
 * verify checks that every Exec*= binary exists. /usr/bin/certpilot is where the package
 * installs the CLI, and it does not exist on a development machine, so the units are copied
 * to a temp directory with exactly that path replaced by a shim that runs this checkout's
 * bin/certpilot.js; every other line, including /bin/kill, systemctl and nginx paths, is
 * verified as shipped against the real system. verify only warns (exit 0) on unknown keys and
 * unparsable values, so any output at all fails the test; a broken copy proves the check bites.
 */

const UNITS_DIR = path.join(__dirname, '../../systemd');
const INSTALL_PATH = '/usr/bin/certpilot';
const CLI = path.join(__dirname, '../../bin/certpilot.js');

function findTool(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/bin'])) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${name} not found: install the Debian package "systemd" (see .ci/run)`);
}

function run(cmd: string, args: string[], cwd: string, tz?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const env = tz ? { ...process.env, TZ: tz } : process.env;
    execFile(cmd, args, { cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: (stdout + stderr).trim() });
    });
  });
}

let dir: string;
let units: string[];
let analyze: string;

beforeAll(async () => {
  analyze = findTool('systemd-analyze');
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-units-'));
  const shim = path.join(dir, 'certpilot');
  await writeFile(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  await chmod(shim, 0o755);
  units = (await readdir(UNITS_DIR)).filter((f) => /\.(service|timer|path)$/.test(f)).sort();
  for (const unit of units) {
    const text = await readFile(path.join(UNITS_DIR, unit), 'utf8');
    await writeFile(path.join(dir, unit), text.replaceAll(`=${INSTALL_PATH} `, `=${shim} `));
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('systemd units', () => {
  test('ships the daemon, the one-shot service, its timer and the nginx reload pair', () => {
    expect(units).toEqual([
      'certpilot-reload-nginx.path',
      'certpilot-reload-nginx.service',
      'certpilot-renew.service',
      'certpilot-renew.timer',
      'certpilot.service',
    ]);
  });

  test('only the ExecStart install path was replaced in the copies', async () => {
    for (const unit of units) {
      const shipped = (await readFile(path.join(UNITS_DIR, unit), 'utf8')).split('\n');
      const copy = (await readFile(path.join(dir, unit), 'utf8')).split('\n');
      const changed = shipped.filter((line, i) => line !== copy[i]);
      expect(changed.every((l) => l.startsWith(`ExecStart=${INSTALL_PATH} `))).toBe(true);
    }
  });

  test('systemd-analyze verify passes with no warning at all', async () => {
    const res = await run(analyze, ['verify', '--man=no', ...units], dir);
    expect(res).toEqual({ code: 0, out: '' });
  });

  test('the check bites: an unknown key, a bad value or a missing binary is reported', async () => {
    const text = await readFile(path.join(dir, 'certpilot.service'), 'utf8');
    for (const [label, broken] of [
      ['unknown key', text.replace(/^Type=exec$/m, 'Typo=exec')],
      ['bad value', text.replace(/^ProtectSystem=strict$/m, 'ProtectSystem=strictly')],
      ['missing binary', text.replace(/^ExecStart=\S+/m, `ExecStart=${INSTALL_PATH}-missing`)],
    ]) {
      await writeFile(path.join(dir, 'broken.service'), broken!);
      const res = await run(analyze, ['verify', '--man=no', 'broken.service'], dir);
      expect({ label, reported: res.out.length > 0 }).toEqual({ label, reported: true });
    }
    await rm(path.join(dir, 'broken.service'));
  });

  test('the daemon unit scores as well hardened (systemd-analyze security exposure <= 2.0)', async () => {
    const res = await run(
      analyze,
      ['security', '--offline=yes', '--man=no', '--threshold=20', './certpilot.service'],
      dir,
    );
    expect(res.code).toBe(0);
  });

  test('the timer fires twice a day', async () => {
    const timer = await readFile(path.join(UNITS_DIR, 'certpilot-renew.timer'), 'utf8');
    const spec = /^OnCalendar=(.+)$/m.exec(timer)![1]!;
    // In UTC, so the printed times need no time zone handling and days have 24 hours.
    const res = await run(analyze, ['calendar', '--iterations=3', spec], dir, 'UTC');
    expect(res.code).toBe(0);
    const times = [...res.out.matchAll(/(?:Next elapse|Iter\. #\d): \w+ (\S+) (\S+) UTC/g)].map((m) =>
      Date.parse(`${m[1]}T${m[2]}Z`),
    );
    expect(times).toHaveLength(3);
    expect([times[1]! - times[0]!, times[2]! - times[1]!]).toEqual([43_200_000, 43_200_000]);
  });

  const DAEMON_MUST = [
    'Type=exec',
    'User=certpilot',
    'Group=certpilot',
    'ExecStart=/usr/bin/node --max-semi-space-size=1 --optimize-for-size --max-opt=0 --bytecode-old-age=2 /usr/bin/certpilot run --config /etc/certpilot/certpilot.yaml',
    'Environment=GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072',
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'StateDirectory=certpilot',
    'ConfigurationDirectory=certpilot',
    'ReadWritePaths=-/etc/ssl/certpilot',
    'Wants=certpilot-reload-nginx.path',
    'UMask=0077',
    'NoNewPrivileges=yes',
    'CapabilityBoundingSet=',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
  ];

  test.each(DAEMON_MUST)('certpilot.service sets %s', async (line) => {
    const text = await readFile(path.join(UNITS_DIR, 'certpilot.service'), 'utf8');
    expect(text.split('\n')).toContain(line);
  });

  test.each(['certpilot.service', 'certpilot-renew.service'])(
    '%s sets LimitCORE=0 (a core dump would hold private keys and credentials)',
    async (unit) => {
      const text = await readFile(path.join(UNITS_DIR, unit), 'utf8');
      expect(text.split('\n')).toContain('LimitCORE=0');
    },
  );

  test.each(['certpilot.service', 'certpilot-renew.service'])(
    '%s does not set MemoryDenyWriteExecute=yes (V8 JIT needs W+X pages)',
    async (unit) => {
      const text = await readFile(path.join(UNITS_DIR, unit), 'utf8');
      expect(text).not.toMatch(/^MemoryDenyWriteExecute=(yes|true|1|on)/m);
    },
  );

  test('the one-shot service and timer', async () => {
    const svc = (await readFile(path.join(UNITS_DIR, 'certpilot-renew.service'), 'utf8')).split('\n');
    expect(svc).toEqual(
      expect.arrayContaining([
        'Type=oneshot',
        'ExecStart=/usr/bin/certpilot renew --config /etc/certpilot/certpilot.yaml',
      ]),
    );
    const timer = (await readFile(path.join(UNITS_DIR, 'certpilot-renew.timer'), 'utf8')).split('\n');
    expect(timer).toEqual(
      expect.arrayContaining(['RandomizedDelaySec=1h', 'Persistent=true', 'WantedBy=timers.target']),
    );
  });
});
