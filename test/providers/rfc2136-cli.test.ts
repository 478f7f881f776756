import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChallengeJournal } from '../../src/store/journal';
import { renew } from '../faults/helpers';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * The rfc2136 provider through the real CLI, Pebble and BIND: a server given as a host name is
 * resolved through `dns.resolvers` and never through the system resolver (a child process whose
 * system resolver is a tripwire), and a write the server refuses leaves nothing to clean up.
 */

const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
const TRIPWIRE = path.join(__dirname, '..', 'helpers', 'resolver-tripwire.js');

let tb: Testbed;

beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await tb?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Host names the system resolver was asked for. */
  tripped: string[];
}

/** `node -r resolver-tripwire.js ARGS` with its own tripwire log. */
async function runTripwired(args: string[], label: string): Promise<Run> {
  const logFile = path.join(tb.dir, `tripwire-${label}.log`);
  await writeFile(logFile, '');
  const { code, stdout, stderr } = await new Promise<Omit<Run, 'tripped'>>((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', TRIPWIRE, ...args], {
      env: { ...process.env, CERTPILOT_TEST_TRIPWIRE_LOG: logFile },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const tripped = (await readFile(logFile, 'utf8')).split('\n').filter((l) => l !== '');
  return { code, stdout, stderr, tripped };
}

describe('rfc2136 server given as a host name', () => {
  test('control: the tripwire catches a connection by host name', async () => {
    const run = await runTripwired(
      [
        '-e',
        "require('node:net').connect({ host: 'ns1.example.test', port: 1 }).on('error', (e) => process.stdout.write(e.code))",
      ],
      'control',
    );
    expect(run.stdout).toBe('ETRIPWIRE');
    expect(run.tripped).toEqual(['ns1.example.test']);
  });

  test('is resolved through dns.resolvers (BIND serves its A record), never through the system resolver', async () => {
    const config = await tb.writeConfig(
      [{ name: 'byname', domains: ['byname.example.test'], dns: { provider: 'bind' } }],
      { storage: { stateDir: path.join(tb.dir, 'state-byname') } },
      { bind: tb.bindProvider({ server: 'ns1.example.test' }) },
    );
    const run = await runTripwired([BIN, 'renew', '--config', config, '--json'], 'renew');
    if (run.code !== 0) throw new Error(`renew failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
    const report = JSON.parse(run.stdout) as { certificates: { name: string; status: string }[] };
    expect(report.certificates).toMatchObject([{ name: 'byname', status: 'renewed' }]);
    expect(run.tripped).toEqual([]);
    expect(await tb.bind.queryTxt('_acme-challenge.byname.example.test')).toEqual([]);
  });
});

describe('a write the server refuses', () => {
  test('no cleanup and no journal entry; the wildcard authorization is logged with its *.; the next run recovers nothing', async () => {
    const stateDir = path.join(tb.dir, 'state-refused');
    const config = await tb.writeConfig(
      [{ name: 'wild', domains: ['example.test', '*.example.test'], dns: { provider: 'bind' } }],
      { storage: { stateDir } },
      { bind: tb.bindProvider({ propagationTimeout: '3s' }) },
    );
    await tb.bind.freeze('example.test');
    let thawed = false;
    try {
      const run = await renew(config);
      expect(run.code).toBe(1);
      expect(run.cert('wild').error).toMatch(/failed: REFUSED \(the server refused the update: /);
      expect(run.logged('challenge record cleanup failed')).toEqual([]);
      expect(run.logged('challenge records removed')).toEqual([]);
      expect(await new ChallengeJournal(stateDir).pending()).toEqual([]);
      expect(
        run
          .logged('authorization deactivated')
          .map((l) => l.name)
          .sort(),
      ).toEqual(['*.example.test', 'example.test']);
      await tb.bind.thaw('example.test');
      thawed = true;

      const next = await renew(config, '--force');
      if (next.code !== 0) throw new Error(`second run failed:\n${next.stdout}\n${next.stderr}`);
      expect(next.cert('wild').status).toBe('renewed');
      expect(next.logged('removing challenge records left by an interrupted run')).toEqual([]);
      expect(await tb.bind.queryTxt('_acme-challenge.example.test')).toEqual([]);
    } finally {
      if (!thawed) await tb.bind.thaw('example.test');
    }
  });
});
