import type { PropagationPolicy } from '../../src/config/types';
import { CertpilotError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/logger';
import {
  DEFAULT_PROPAGATION_POLICY,
  waitForPropagation,
  type PropagationOptions,
} from '../../src/dns/propagation';
import { Rfc2136Provider } from '../../src/dns/providers/rfc2136/provider';
import { DnsResolver } from '../../src/dns/resolver';
import { type BindServer, startBind } from '../helpers/bind';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger';
import { closedPort } from '../helpers/tls-servers';
import { baseConfig, load, loadError, makeTempDir, paths, removeDir, writeConfig } from '../config/helpers';

/**
 * dns.propagation against a real BIND. Each zone has two nameservers: ns1 (BIND itself, on
 * 127.0.0.1) and one whose address nothing listens on: 127.0.0.2 in `silent.test` (an IPv4
 * address this host cannot get an answer from) and ::1 in `v6.test` (BIND does not listen on
 * IPv6, so it stands for an IPv6 address this host cannot use). Every policy is run against
 * both, with the record written on the one server that answers.
 */

let bind: BindServer;
let resolver: DnsResolver;

beforeAll(async () => {
  bind = await startBind({
    zones: [
      { name: 'silent.test', records: ['@ IN NS ns2.silent.test.', 'ns2 IN A 127.0.0.2'] },
      { name: 'v6.test', records: ['@ IN NS ns6.v6.test.', 'ns6 IN AAAA ::1'] },
    ],
  });
  resolver = new DnsResolver({
    resolvers: [`127.0.0.1:${bind.port}`],
    nameserverPort: bind.port,
    queryTimeoutMs: 500,
  });
  const provider = new Rfc2136Provider(
    { server: '127.0.0.1', port: bind.port, tsigKeyName: bind.tsig.name, tsigSecret: bind.tsig.secret },
    { log: silentLogger, instance: 'bind', requestTimeoutMs: 5000 },
  );
  const signal = AbortSignal.timeout(10_000);
  await provider.appendRecords('silent.test', [{ name: '_acme-challenge', value: 'here', ttl: 60 }], signal);
  await provider.appendRecords('v6.test', [{ name: '_acme-challenge', value: 'here', ttl: 60 }], signal);
}, 30_000);

afterAll(async () => {
  await bind?.stop();
});

const policy = (p: Partial<PropagationPolicy>): PropagationPolicy => ({
  ...DEFAULT_PROPAGATION_POLICY,
  ...p,
});

function wait(
  zone: string,
  p: Partial<PropagationPolicy>,
  extra: Partial<PropagationOptions> & { log?: MemoryLogger; values?: string[] } = {},
): Promise<unknown> {
  return waitForPropagation({ [`_acme-challenge.${zone}`]: extra.values ?? ['here'] }, zone, {
    resolver,
    timeoutMs: 2_500,
    intervalMs: 100,
    signal: AbortSignal.timeout(20_000),
    log: extra.log ?? silentLogger,
    policy: policy(p),
    ...(extra.hasIpv6 ? { hasIpv6: extra.hasIpv6 } : {}),
  }).then(
    () => 'propagated',
    (e: unknown) => e,
  );
}

const warnings = (log: MemoryLogger): string[] =>
  log.records.filter((r) => r.level === 'warn').map((r) => r.message);

describe('an IPv4 nameserver address that does not answer (127.0.0.2)', () => {
  test('unreachable: fail (the default) waits for it and times out naming it, with a hint', async () => {
    const err = (await wait('silent.test', {})) as CertpilotError;
    expect(err).toBeInstanceOf(CertpilotError);
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
    expect(err.message).toContain('ns2.silent.test (127.0.0.2) lacks "here"');
    expect(err.message).not.toContain('ns1.silent.test');
    expect(err.message).toContain(
      'gave no answer at all; if this host cannot reach them, see dns.propagation',
    );
  });

  test('unreachable: skip confirms through the server that answers, with a warning naming the skipped one', async () => {
    const log = memoryLogger();
    expect(await wait('silent.test', { unreachable: 'skip' }, { log })).toBe('propagated');
    const warn = log.records.find((r) => r.level === 'warn');
    expect(warn?.message).toBe('propagation confirmed without nameserver addresses that did not answer');
    expect(String(warn?.meta.skipped)).toContain('ns2.silent.test (127.0.0.2)');
  });

  test('unreachable: skip never skips a value that no server confirmed', async () => {
    const err = (await wait(
      'silent.test',
      { unreachable: 'skip' },
      { values: ['never-written'] },
    )) as CertpilotError;
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
    // The server that answers lacks it: that is a real lag, reported as one.
    expect(err.message).toContain('ns1.silent.test (127.0.0.1) lacks "never-written"');
    expect(err.message).not.toContain('see dns.propagation');
  });
});

describe('an IPv6 nameserver address this host cannot use (::1, nothing listening)', () => {
  test('ipv6: on (the default) asks it and times out', async () => {
    const err = (await wait('v6.test', { ipv6: 'on' })) as CertpilotError;
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
    expect(err.message).toContain('ns6.v6.test (::1) lacks "here"');
  });

  test('ipv6: off leaves it out (a warning says the IPv6-only nameserver was not checked)', async () => {
    const log = memoryLogger();
    expect(await wait('v6.test', { ipv6: 'off' }, { log })).toBe('propagated');
    expect(warnings(log)).toEqual(['nameserver not checked: it has only IPv6 addresses']);
  });

  test('ipv6: auto asks IPv6 addresses only when this host has a global IPv6 address', async () => {
    expect(await wait('v6.test', { ipv6: 'auto' }, { hasIpv6: () => false })).toBe('propagated');
    const err = (await wait('v6.test', { ipv6: 'auto' }, { hasIpv6: () => true })) as CertpilotError;
    expect(err.code).toBe('DNS_PROPAGATION_TIMEOUT');
  });

  test('ipv6: on with unreachable: skip also confirms through the IPv4 server', async () => {
    expect(await wait('v6.test', { ipv6: 'on', unreachable: 'skip' })).toBe('propagated');
  });

  test('ipv6: off with every nameserver IPv6-only fails at once, not at the timeout', async () => {
    // The BIND helper always gives a zone an IPv4 ns1, so this NS set comes from a stand-in
    // resolver; nothing is asked of it after the NS lookup.
    const only6 = {
      nameserverPort: bind.port,
      nameservers: () => Promise.resolve([{ name: 'ns6.v6.test', addresses: ['::1'] }]),
    } as unknown as DnsResolver;
    const started = Date.now();
    const err = (await waitForPropagation({ '_acme-challenge.v6.test': ['here'] }, 'v6.test', {
      resolver: only6,
      timeoutMs: 10_000,
      intervalMs: 100,
      signal: AbortSignal.timeout(20_000),
      log: silentLogger,
      policy: policy({ ipv6: 'off' }),
    }).catch((e: unknown) => e)) as CertpilotError;
    expect(err.message).toBe(
      'dns: no nameserver of v6.test can be asked: all have only IPv6 addresses and dns.propagation.ipv6 is off',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('mode: wait (no DNS egress)', () => {
  test('asks nothing and resolves after the fixed wait, with a warning', async () => {
    // Every query would go to a closed port: the wait must not depend on any answer.
    const port = await closedPort();
    const noDns = new DnsResolver({
      resolvers: [`127.0.0.1:${port}`],
      nameserverPort: port,
      queryTimeoutMs: 200,
    });
    const log = memoryLogger();
    const started = Date.now();
    await waitForPropagation({ '_acme-challenge.silent.test': ['never-written'] }, 'silent.test', {
      resolver: noDns,
      timeoutMs: 100,
      intervalMs: 50,
      signal: AbortSignal.timeout(20_000),
      log,
      policy: policy({ mode: 'wait', waitMs: 400 }),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(warnings(log)).toEqual([
      'propagation not checked (dns.propagation.mode: wait): waiting a fixed time',
    ]);
  });

  test("the caller's cancellation ends the wait", async () => {
    const ac = new AbortController();
    const p = waitForPropagation({ '_acme-challenge.silent.test': ['x'] }, 'silent.test', {
      resolver,
      timeoutMs: 100,
      intervalMs: 50,
      signal: ac.signal,
      log: { ...silentLogger, warn: () => ac.abort() },
      policy: policy({ mode: 'wait', waitMs: 60_000 }),
    });
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('configuration', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
  });
  afterAll(() => removeDir(dir));

  test('defaults: every address, IPv6 included, each waited for', async () => {
    const config = await load(writeConfig(dir, baseConfig(dir)));
    expect(config.dns.propagation).toEqual(DEFAULT_PROPAGATION_POLICY);
  });

  test('dns.propagation is read, and a bad value is reported at its path', async () => {
    const c = baseConfig(dir);
    c.dns.propagation = { mode: 'wait', unreachable: 'skip', ipv6: 'auto', wait: '90s' };
    expect((await load(writeConfig(dir, c))).dns.propagation).toEqual({
      mode: 'wait',
      unreachable: 'skip',
      ipv6: 'auto',
      waitMs: 90_000,
    });
    c.dns.propagation = { mode: 'guess', ipv6: true };
    const err = await loadError(writeConfig(dir, c));
    expect(paths(err.issues)).toEqual(['dns.propagation.ipv6', 'dns.propagation.mode']);
    expect(err.message).toContain('must be one of authoritative, wait');
  });
});
