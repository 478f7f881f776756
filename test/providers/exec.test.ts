import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import { isInheritedEnv } from '../../src/core/process';
import type { ProviderContext } from '../../src/dns/provider';
import { execDefinition } from '../../src/dns/providers/exec/definition';
import { ExecProvider } from '../../src/dns/providers/exec/provider';
import { findProvider } from '../../src/dns/registry';
import { startBind } from '../helpers/bind';
import { runProviderConformance } from '../dns/conformance';
import { createBindBackend } from './bind-backend';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'exec');
const ctx: ProviderContext = { log: silentLogger, instance: 'exec-test', requestTimeoutMs: 10_000 };
const signal = (): AbortSignal => AbortSignal.timeout(30_000);

runProviderConformance('exec (nsupdate hook script against BIND)', async () => {
  const bind = await startBind({ zones: [{ name: 'example.test' }] });
  // Only for its 0600 key file in a temp dir; the hook script runs nsupdate itself.
  const backend = await createBindBackend(bind);
  const provider = new ExecProvider(
    {
      command: path.join(FIXTURES, 'nsupdate-hook.sh'),
      args: [backend.keyFile, String(bind.port)],
      timeout: 20,
    },
    ctx,
  );
  return {
    provider,
    zone: 'example.test',
    readValues: (fqdn) => bind.queryTxt(fqdn),
    async teardown() {
      await backend.close();
      await bind.stop();
    },
  };
});

describe('exec provider', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-exec-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('argv is <args...> present|cleanup <fqdn.> <value>, with CERTPILOT_DNS_* in the environment', async () => {
    const log = path.join(dir, 'calls.log');
    const p = new ExecProvider(
      { command: path.join(FIXTURES, 'record-call.sh'), args: JSON.stringify([log]) },
      ctx,
    );
    await p.appendRecords(
      'example.test',
      [{ name: '_acme-challenge.www', value: 'v a l;$(x)', ttl: 90 }],
      signal(),
    );
    await p.deleteRecords('example.test', [{ name: '@', value: 'apex', ttl: 60 }], signal());
    expect((await readFile(log, 'utf8')).split('\n')).toEqual([
      // The value arrives as one argument, untouched: no shell ever parsed it.
      'start present _acme-challenge.www.example.test. v a l;$(x)',
      'CERTPILOT_DNS_ACTION=present',
      'CERTPILOT_DNS_FQDN=_acme-challenge.www.example.test.',
      'CERTPILOT_DNS_NAME=_acme-challenge.www',
      'CERTPILOT_DNS_TTL=90',
      'CERTPILOT_DNS_VALUE=v a l;$(x)',
      'CERTPILOT_DNS_ZONE=example.test',
      'end present _acme-challenge.www.example.test. v a l;$(x)',
      'start cleanup example.test. apex',
      'CERTPILOT_DNS_ACTION=cleanup',
      'CERTPILOT_DNS_FQDN=example.test.',
      'CERTPILOT_DNS_NAME=@',
      'CERTPILOT_DNS_TTL=60',
      'CERTPILOT_DNS_VALUE=apex',
      'CERTPILOT_DNS_ZONE=example.test',
      'end cleanup example.test. apex',
      '',
    ]);
  });

  test("certpilot's secrets stay out of the program's environment; passEnv names what it may see", async () => {
    const secrets: Record<string, string> = {
      AWS_SECRET_ACCESS_KEY: 'aws-secret-exec-test-do-not-pass',
      AWS_ACCESS_KEY_ID: 'AKIAEXECTEST',
      CERTPILOT_EAB_HMAC_KEY: 'eab-hmac-exec-test-do-not-pass',
      CLOUDFLARE_API_TOKEN: 'cf-token-exec-test-do-not-pass',
      RFC2136_TSIG_SECRET: 'tsig-exec-test-do-not-pass',
    };
    const passed = { ACME_DNS_API_KEY: 'the-programs-own-credential', LC_MESSAGES: 'C' };
    const saved = { ...process.env };
    Object.assign(process.env, secrets, passed);
    try {
      const dump = path.join(dir, 'env.json');
      const p = new ExecProvider(
        {
          // node itself adds nothing to its environment: the dump is exactly what it was given.
          command: process.execPath,
          args: ['-e', `require('fs').writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.env))`],
          passEnv: ['ACME_DNS_API_KEY', 'UNSET_VARIABLE_X'],
        },
        ctx,
      );
      await p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal());
      const env = JSON.parse(await readFile(dump, 'utf8')) as Record<string, string>;
      for (const name of Object.keys(secrets))
        expect({ name, value: env[name] }).toEqual({ name, value: undefined });
      expect(JSON.stringify(env)).not.toMatch(/do-not-pass|AKIAEXECTEST/);
      expect(env.ACME_DNS_API_KEY).toBe('the-programs-own-credential');
      expect(env.LC_MESSAGES).toBe('C');
      expect(env.PATH).toBe(process.env.PATH);
      // Everything it got is the allowlist, what passEnv named, or the call's own description.
      const unexpected = Object.keys(env).filter(
        (k) => !isInheritedEnv(k) && k !== 'ACME_DNS_API_KEY' && !k.startsWith('CERTPILOT_DNS_'),
      );
      expect(unexpected).toEqual([]);
      expect(env.CERTPILOT_DNS_ACTION).toBe('present');
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('concurrent calls for one name run one after the other', async () => {
    const log = path.join(dir, 'calls.log');
    const p = new ExecProvider({ command: path.join(FIXTURES, 'record-call.sh'), args: [log] }, ctx);
    await Promise.all(
      ['one', 'two', 'three'].map((v) =>
        p.appendRecords('example.test', [{ name: '_acme-challenge', value: v, ttl: 60 }], signal()),
      ),
    );
    const marks = (await readFile(log, 'utf8')).split('\n').filter((l) => /^(start|end) /.test(l));
    // Every start is followed by its own end: no overlap.
    for (let i = 0; i < marks.length; i += 2) expect(marks[i + 1]).toBe(marks[i].replace(/^start/, 'end'));
    expect(marks).toHaveLength(6);
  });

  test('a non-zero exit fails with the end of stderr, bounded', async () => {
    const p = new ExecProvider({ command: path.join(FIXTURES, 'fail.sh'), args: ['100000'] }, ctx);
    const err = await p
      .appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err).toMatchObject({ code: 'DNS_UPDATE_FAILED' });
    const message = (err as Error).message;
    expect(message).toMatch(
      new RegExp(
        `^exec: ${path.join(FIXTURES, 'fail.sh')} present _acme-challenge\\.example\\.test\\. exited with status 3: \\[\\d+ bytes dropped\\]\\.\\.\\.x+`,
      ),
    );
    expect(message.endsWith('zone API said: permission denied for _acme-challenge.example.test.')).toBe(true);
    expect(message.length).toBeLessThan(4096 + 200);
  });

  test('a run past its timeout is killed, with everything it started', async () => {
    const pidFile = path.join(dir, 'child.pid');
    const p = new ExecProvider(
      { command: path.join(FIXTURES, 'hang.sh'), args: [pidFile], timeout: 1 },
      ctx,
      { killGraceMs: 200 },
    );
    await expect(
      p.appendRecords('example.test', [{ name: '_acme-challenge', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(/did not finish within 1 s and was killed/),
    });
    const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
    await expect(waitUntilGone(grandchild)).resolves.toBe(true);
  });

  test('cancelling kills the run and rejects with ABORTED', async () => {
    const pidFile = path.join(dir, 'child.pid');
    const p = new ExecProvider(
      { command: path.join(FIXTURES, 'hang.sh'), args: [pidFile], timeout: 60 },
      ctx,
      { killGraceMs: 200 },
    );
    const ac = new AbortController();
    const call = p.appendRecords(
      'example.test',
      [{ name: '_acme-challenge', value: 'v', ttl: 60 }],
      ac.signal,
    );
    // Abort once the hook is demonstrably running (its child's pid file exists).
    const poll = setInterval(() => {
      readFile(pidFile, 'utf8').then(
        (s) => s.trim() !== '' && ac.abort(),
        () => undefined,
      );
    }, 10);
    try {
      await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    } finally {
      clearInterval(poll);
    }
    await expect(waitUntilGone(Number((await readFile(pidFile, 'utf8')).trim()))).resolves.toBe(true);
  });

  test('a missing program fails clearly', async () => {
    const p = new ExecProvider({ command: path.join(dir, 'nope') }, ctx);
    await expect(
      p.appendRecords('example.test', [{ name: 'x', value: 'v', ttl: 60 }], signal()),
    ).rejects.toMatchObject({
      code: 'DNS_UPDATE_FAILED',
      message: `exec: cannot run ${path.join(dir, 'nope')}: ENOENT`,
    });
  });
});

describe('exec definition', () => {
  test('is registered', () => {
    expect(findProvider('exec')).toBe(execDefinition);
  });

  test.each([
    [{ command: '/usr/local/bin/hook' }, []],
    [{ command: 'hook.sh' }, ['command']],
    [{ command: '/bin/hook', args: ['--a', 'b c'] }, []],
    [{ command: '/bin/hook', args: '["--a", "b"]' }, []],
    [{ command: '/bin/hook', args: '--a b' }, ['args']],
    [{ command: '/bin/hook', args: [1] }, ['args']],
    [{ command: '/bin/hook', timeout: 0 }, ['timeout']],
    [{ command: '/bin/hook', passEnv: ['API_KEY', 'HOME'] }, []],
    [{ command: '/bin/hook', passEnv: '["API_KEY"]' }, []],
    [{ command: '/bin/hook', passEnv: ['NOT A NAME'] }, ['passEnv']],
    [{ command: '/bin/hook', passEnv: ['CERTPILOT_DNS_VALUE'] }, ['passEnv']],
  ] as const)('validate(%j) flags %j', (options, fields) => {
    expect((execDefinition.validate?.(options) ?? []).map(([f]) => f)).toEqual(fields);
  });
});

/** True once `pid` no longer exists; polls briefly (a killed process takes a moment to be reaped). */
async function waitUntilGone(pid: number, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
