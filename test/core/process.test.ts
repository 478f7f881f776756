import { buildChildEnv, FALLBACK_PATH, runProcess, shellArgv } from '../../src/core/process';

describe('buildChildEnv: an allowlist, then what the caller passes and sets', () => {
  const certpilotEnv = {
    PATH: '/usr/bin:/bin',
    HOME: '/var/lib/certpilot',
    LANG: 'C.UTF-8',
    LC_ALL: 'C',
    LC_MESSAGES: 'C',
    TZ: 'UTC',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    CERTPILOT_EAB_HMAC_KEY: 'eab',
    CLOUDFLARE_API_TOKEN: 'cf',
    NODE_OPTIONS: '--inspect',
    LC_lower: 'not a locale variable',
    API_KEY: 'the-programs-own',
  };

  test('only the allowlist is inherited', () => {
    expect(buildChildEnv({}, certpilotEnv)).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/var/lib/certpilot',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      LC_MESSAGES: 'C',
      TZ: 'UTC',
    });
  });

  test('pass copies named variables (when set); set wins over everything', () => {
    const env = buildChildEnv(
      { pass: ['API_KEY', 'UNSET'], set: { TZ: 'Europe/Paris', X: '1' } },
      certpilotEnv,
    );
    expect(env).toMatchObject({ API_KEY: 'the-programs-own', TZ: 'Europe/Paris', X: '1' });
    expect('UNSET' in env).toBe(false);
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
  });

  test('without PATH in certpilot, programs still find the basics', () => {
    expect(buildChildEnv({}, {}).PATH).toBe(FALLBACK_PATH);
  });
});

describe('runProcess', () => {
  test('argv elements reach the program as they are; no shell unless asked for', async () => {
    const r = await runProcess({
      argv: [
        process.execPath,
        '-e',
        'process.stdout.write(JSON.stringify(process.argv.slice(1)))',
        '$(id)',
        'a b;c',
      ],
      timeoutMs: 10_000,
    });
    expect(r).toMatchObject({ ok: true, exitCode: 0, timedOut: false, aborted: false });
    expect(JSON.parse(r.stdout)).toEqual(['$(id)', 'a b;c']);
    const sh = await runProcess({ argv: shellArgv('echo "$((1 + 2))"'), timeoutMs: 10_000 });
    expect(sh.stdout).toBe('3\n');
  });

  test('output is bounded to its end, with the dropped byte count in front', async () => {
    const r = await runProcess({
      argv: [process.execPath, '-e', "process.stderr.write('a'.repeat(5000) + 'END')"],
      timeoutMs: 10_000,
      maxOutputBytes: 100,
    });
    expect(r.stderr).toBe(`[4903 bytes dropped]...${'a'.repeat(97)}END`);
  });

  test('an abort stops the running program and says so', async () => {
    const ac = new AbortController();
    const r = await runProcess({
      argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
      timeoutMs: 60_000,
      killGraceMs: 200,
      signal: ac.signal,
      // Abort once the program is running.
      onSpawn: () => ac.abort(),
    });
    expect(r).toMatchObject({ ok: false, aborted: true, timedOut: false, signal: 'SIGTERM' });
  });

  test('an already aborted signal stops the program at once', async () => {
    const r = await runProcess({
      argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
      timeoutMs: 60_000,
      killGraceMs: 200,
      signal: AbortSignal.abort(),
    });
    expect(r).toMatchObject({ ok: false, aborted: true });
  });

  test('a program that cannot be started is a result, not an exception', async () => {
    const r = await runProcess({ argv: ['/nonexistent/program'], timeoutMs: 10_000 });
    expect(r.ok).toBe(false);
    expect(r.spawnError?.code).toBe('ENOENT');
  });
});
