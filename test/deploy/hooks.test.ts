import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixedClock } from '../../src/core/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { runCommand, MAX_OUTPUT_BYTES } from '../../src/deploy/command';
import { CERT_VAR_NAMES } from '../../src/deploy/env';
import { readDeployState, writeDeployState } from '../../src/state/deploy-state';
import { runRenew } from '../../src/renew/run';
import { CertStore } from '../../src/store/cert-store';
import { baseConfig, certSpec, eventually, installPair, processGone, withDeploy } from './helpers';

/**
 * The hook contract of docs/hooks.md, with real processes: the exact environment, argv never
 * reaching a shell, timeouts that kill the whole process group, bounded output, and the
 * pre/deploy/post order in a run. No ACME here: certificates are installed into the store
 * directly and the run finds a pending deploy, which is the "redeploy without a new order" path.
 */

let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-hooks-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** A node one-liner that dumps its argv (after the file) and environment as JSON into `file`. */
function dumpTo(file: string, ...args: string[]): string[] {
  return [
    process.execPath,
    '-e',
    'require("fs").writeFileSync(process.argv[1], JSON.stringify({argv: process.argv.slice(2), env: process.env}))',
    file,
    ...args,
  ];
}

interface Dump {
  argv: string[];
  env: Record<string, string>;
}
const readDump = (file: string): Dump => JSON.parse(fs.readFileSync(file, 'utf8')) as Dump;
const certpilotVars = (env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('CERTPILOT_')));

describe('hook environment', () => {
  test('deploy, pre and post hooks see exactly the documented CERTPILOT_* variables', async () => {
    const stateDir = path.join(root, 'state');
    const domains = ['www.example.test', 'example.test'];
    const { store, info, previous } = await installPair(stateDir, 'site', domains);
    const files = {
      pre: path.join(root, 'pre.json'),
      deploy: path.join(root, 'deploy.json'),
      post: path.join(root, 'post.json'),
    };
    const config = withDeploy(baseConfig(stateDir, [certSpec('site', domains)]), {
      hooks: { pre: [dumpTo(files.pre)], post: [dumpTo(files.post)] },
      certificates: [{ name: 'site', hooks: { deploy: [dumpTo(files.deploy)] } }],
    });
    const log = memoryLogger();
    const report = await runRenew(config, {}, { log, clock: fixedClock(new Date()) });
    expect(report.ok).toBe(true);
    expect(report.outcomes[0]).toMatchObject({ name: 'site', status: 'deployed', serial: info.serial });

    const paths = store.paths('site');
    const deploy = readDump(files.deploy);
    expect(Object.keys(certpilotVars(deploy.env)).sort()).toEqual([...CERT_VAR_NAMES].sort());
    expect(certpilotVars(deploy.env)).toEqual({
      CERTPILOT_CERT_NAME: 'site',
      CERTPILOT_DOMAINS: 'www.example.test example.test',
      CERTPILOT_CERT_PATH: paths.cert,
      CERTPILOT_KEY_PATH: paths.key,
      CERTPILOT_CHAIN_PATH: paths.chain,
      CERTPILOT_FULLCHAIN_PATH: paths.fullchain,
      CERTPILOT_SERIAL: info.serial,
      CERTPILOT_NOT_AFTER: info.notAfter.toISOString(),
      CERTPILOT_PREVIOUS_SERIAL: previous.serial,
    });
    expect(certpilotVars(readDump(files.pre).env)).toEqual({ CERTPILOT_CERT_NAMES: 'site' });
    expect(certpilotVars(readDump(files.post).env)).toEqual({
      CERTPILOT_RENEWED: 'site',
      CERTPILOT_FAILED: '',
    });
    // The agent's own environment does not leak into hooks (only PATH, HOME, locale...).
    expect(Object.keys(deploy.env).filter((k) => !k.startsWith('CERTPILOT_'))).toEqual(
      expect.not.arrayContaining(['JEST_WORKER_ID', 'NODE_OPTIONS']),
    );
    expect((await readDeployState(stateDir, 'site'))?.status).toBe('verified');
  });

  test('with nothing to do, pre does not run and post runs once with empty lists', async () => {
    const stateDir = path.join(root, 'state');
    const { store } = await installPair(stateDir, 'site', ['example.test']);
    await writeDeployState(stateDir, 'site', {
      ...(await readDeployState(stateDir, 'site'))!,
      status: 'verified',
    });
    const pre = path.join(root, 'pre.json');
    const post = path.join(root, 'post.json');
    const config = withDeploy(baseConfig(stateDir, [certSpec('site', ['example.test'])]), {
      hooks: { pre: [dumpTo(pre)], post: [dumpTo(post)] },
      certificates: [{ name: 'site', hooks: { deploy: [['true']] } }],
    });
    const report = await runRenew(config, {}, { log: memoryLogger(), clock: fixedClock(new Date()) });
    expect(report.ok).toBe(true);
    expect(report.outcomes[0]?.status).toBe('valid');
    expect(fs.existsSync(pre)).toBe(false);
    expect(certpilotVars(readDump(post).env)).toEqual({ CERTPILOT_RENEWED: '', CERTPILOT_FAILED: '' });
    expect(store.paths('site').dir).toContain(stateDir);
  });
});

describe('no shell', () => {
  test('a domain and a path full of shell metacharacters reach hooks as literal data', async () => {
    const cwd = path.join(root, 'cwd');
    fs.mkdirSync(cwd);
    // The state directory itself carries the metacharacters, so every CERTPILOT_*_PATH does.
    const stateDir = path.join(root, 'st;touch pwned-semi;$(touch pwned-subst)`touch pwned-tick`|x&y');
    const evil = 'a.example.test;touch pwned-domain $(touch pwned-d2)';
    await installPair(stateDir, 'site', [evil]);
    const argvFile = path.join(root, 'argv.json');
    const shellOut = path.join(root, 'shell.txt');
    const config = withDeploy(baseConfig(stateDir, [certSpec('site', [evil])]), {
      certificates: [
        {
          name: 'site',
          hooks: {
            deploy: [
              { command: dumpTo(argvFile, '{cert}', '{fullchain}', '--name={name}'), cwd },
              // Even the explicit shell form gets the data only as variables, quoted by the script.
              {
                shell: true,
                command: `printf '%s\\n%s' "$CERTPILOT_DOMAINS" "$CERTPILOT_CERT_PATH" > '${shellOut}'`,
                cwd,
              },
            ],
          },
        },
      ],
    });
    const report = await runRenew(config, {}, { log: memoryLogger(), clock: fixedClock(new Date()) });
    expect(report.ok).toBe(true);
    const store = new CertStore({ stateDir, archiveDepth: 3 });
    const dump = readDump(argvFile);
    expect(dump.argv).toEqual([store.paths('site').cert, store.paths('site').fullchain, '--name=site']);
    expect(dump.env.CERTPILOT_DOMAINS).toBe(evil);
    expect(fs.readFileSync(shellOut, 'utf8')).toBe(`${evil}\n${store.paths('site').cert}`);
    expect(fs.readdirSync(cwd)).toEqual([]);
    expect(fs.readdirSync(root).filter((f) => f.startsWith('pwned'))).toEqual([]);
  });
});

describe('command runner', () => {
  test('a timeout kills the whole process group, including children the hook started', async () => {
    const pidFile = path.join(root, 'child.pid');
    const log = memoryLogger();
    const r = await runCommand(
      // The shell starts a long sleep in the background, records its pid, and waits on it.
      { argv: ['/bin/sh', '-c', `sleep 300 & echo $! > '${pidFile}'; wait`], timeoutMs: 300, env: {} },
      { label: 'hooks.deploy[0]', vars: {}, log },
    );
    expect(r.ok).toBe(false);
    expect(r.timedOut).toBe(true);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await eventually(() => processGone(pid), 10_000, `sleep (pid ${pid}) killed`);
    expect(log.records.find((l) => l.message === 'command failed')?.meta).toMatchObject({ timedOut: true });
  });

  test('a deploy hook timeout fails the deploy and the run', async () => {
    const stateDir = path.join(root, 'state');
    await installPair(stateDir, 'site', ['example.test']);
    const config = withDeploy(baseConfig(stateDir, [certSpec('site', ['example.test'])]), {
      certificates: [{ name: 'site', hooks: { deploy: [{ command: ['sleep', '300'], timeout: '200ms' }] } }],
    });
    const report = await runRenew(config, {}, { log: memoryLogger(), clock: fixedClock(new Date()) });
    expect(report.ok).toBe(false);
    expect(report.outcomes[0]).toMatchObject({ status: 'failed', errorCode: 'HOOK_FAILED' });
    expect(report.outcomes[0]?.error).toMatch(/hooks\.deploy\[0\] timed out after 200 ms/);
    expect((await readDeployState(stateDir, 'site'))?.status).toBe('deploy-failed');
  });

  test('non-zero exit is a failure; output is captured into the log, bounded', async () => {
    const log = memoryLogger();
    const r = await runCommand(
      {
        argv: [
          process.execPath,
          '-e',
          `process.stdout.write('x'.repeat(${MAX_OUTPUT_BYTES * 4})); console.error('boom'); process.exit(3)`,
        ],
        timeoutMs: 10_000,
        env: {},
      },
      { label: 'test', vars: {}, log },
    );
    expect(r).toMatchObject({ ok: false, exitCode: 3, timedOut: false });
    expect(r.stderr.trim()).toBe('boom');
    const meta = log.records.find((l) => l.message === 'command failed')!.meta;
    expect(String(meta.stdout).length).toBeLessThan(MAX_OUTPUT_BYTES + 100);
    expect(String(meta.stdout)).toMatch(/^\[\d+ bytes dropped\]/);
    expect(meta.stderr).toBe('boom\n');
  });

  test('a failing post hook makes the run fail even when every certificate is fine', async () => {
    const stateDir = path.join(root, 'state');
    await installPair(stateDir, 'site', ['example.test']);
    const config = withDeploy(baseConfig(stateDir, [certSpec('site', ['example.test'])]), {
      hooks: { post: [['false']] },
    });
    const report = await runRenew(config, {}, { log: memoryLogger(), clock: fixedClock(new Date()) });
    expect(report.ok).toBe(false);
    expect(report.hookErrors?.[0]).toMatch(/hooks\.post\[0\] exited with status 1/);
  });
});
