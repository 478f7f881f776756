import { fixedClock } from '../../src/core/clock';
import { formatReport } from '../../src/cli/renew';
import { certificateProblems } from '../../src/config/problems';
import type { AgentConfig } from '../../src/config/types';
import { settingsFingerprint } from '../../src/renew/fingerprint';
import { runRenew, type RenewReport } from '../../src/renew/run';
import { emptyState, type CertState } from '../../src/state/store';
import { makeCa, makeCertificate } from '../helpers/certs';
import { NOW, World, certInfo, config } from './fakes';

/**
 * Why a certificate is not renewed now, and what is said about it (issue #12): certificate
 * problems fail one certificate, a backoff recorded under settings changed since is void, the
 * exact-set guard alerts once per period and says how to get out, and a rolled-back version
 * is deployed again instead of being ordered again.
 */
const DAY = 86_400_000;
const MINUTE = 60_000;

function failedState(
  name: string,
  fingerprint: string,
  over: Partial<CertState['failures']> = {},
): CertState {
  return {
    ...emptyState(name),
    failures: {
      count: 2,
      nextRetryAt: new Date(NOW.getTime() + 9 * MINUTE),
      lastError: 'rfc2136: REFUSED (TSIG BADSIG)',
      fingerprint,
      ...over,
    },
  };
}

describe('certificate problems (item 4)', () => {
  test('a name without a DNS provider fails that certificate alone, before any order; the others renew', async () => {
    const w = new World();
    const cfg = config(['alpha', 'bravo', 'charlie']);
    const bravo = { ...cfg.certificates[1]!, dnsProvider: undefined };
    const withProblem = { ...cfg, certificates: [cfg.certificates[0]!, bravo, cfg.certificates[2]!] };
    const report = await w.run(withProblem, {}, undefined, certificateProblems(withProblem));
    expect(report.outcomes.map((o) => [o.name, o.status])).toEqual([
      ['alpha', 'renewed'],
      ['bravo', 'failed'],
      ['charlie', 'renewed'],
    ]);
    expect(report.ok).toBe(false);
    expect(report.outcomes[1]).toMatchObject({
      errorCode: 'CONFIG_INVALID',
      error:
        'configuration: no DNS provider for bravo.example.test: set dns.provider or dns.domains on this certificate, and configure an instance under dns.providers',
    });
    expect(w.acme.requests.map((r) => r.name).sort()).toEqual(['alpha', 'charlie']);
    // Only bravo is alerted: its failure, and (nothing usable installed) the critical one.
    expect(w.alerts.map((a) => [a.cert, a.kind])).toEqual([
      ['bravo', 'renewal-failed'],
      ['bravo', 'critical'],
    ]);
    expect(w.alerts[0]!.message).toBe(report.outcomes[1]!.error);
    // The plan says the same, with the same exit status, and alerts nobody.
    const planner = new World();
    const dry = await planner.run(withProblem, { dryRun: true }, undefined, certificateProblems(withProblem));
    expect(dry.outcomes.map((o) => o.status)).toEqual(['planned', 'failed', 'planned']);
    expect(dry.ok).toBe(false);
    expect(planner.alerts).toEqual([]);
  });
});

describe('backoff after a fixed configuration (item 7)', () => {
  test('a failure recorded under other settings holds nothing back: the fixed certificate is ordered now', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.states.states.set('www', failedState('www', 'fingerprint-of-the-broken-settings'));
    const report = await w.run(cfg);
    expect(report.outcomes[0]).toMatchObject({ status: 'renewed' });
    expect(w.acme.requests).toHaveLength(1);
    expect(w.states.states.get('www')!.failures).toEqual({ count: 0 });
  });

  test('under the same settings it waits, and says until when and how to retry now', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.store.put('www', certInfo(['www.example.test'], 70));
    w.states.states.set('www', failedState('www', settingsFingerprint(cfg, cfg.certificates[0]!)));
    const report = await w.run(cfg);
    expect(w.acme.requests).toHaveLength(0);
    expect(report.outcomes[0]!.status).toBe('waiting');
    expect(report.outcomes[0]!.decision.detail).toMatch(
      /held back until 2026-11-01T00:09:00Z after 2 failed attempt\(s\) \(last error: rfc2136: REFUSED \(TSIG BADSIG\)\); to retry now: certpilot renew --force www$/,
    );
    expect(report.ok).toBe(true);
    const forced = await w.run(cfg, { force: true });
    expect(forced.outcomes[0]!.status).toBe('renewed');
  });

  test('a failed order stores the fingerprint of the settings it ran with (a hash, no secret in clear)', async () => {
    const w = new World();
    const cfg = config(['www'], {
      dns: {
        resolvers: [],
        nameserverPort: 53,
        queryTimeoutMs: 1000,
        providers: {
          fake: {
            name: 'fake',
            type: 'rfc2136',
            options: { tsigSecret: 'c2VjcmV0LXRzaWcta2V5LWRvLW5vdC1zdG9yZQ==' },
            zones: [],
            ttl: 60,
            propagationTimeoutMs: 1000,
            propagationIntervalMs: 100,
          },
        },
      },
    });
    w.acme.failures.set('www', new Error('boom'));
    await w.run(cfg);
    const state = w.states.states.get('www')!;
    expect(state.failures.fingerprint).toBe(settingsFingerprint(cfg, cfg.certificates[0]!));
    expect(state.failures.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(state)).not.toContain('c2VjcmV0');
    // A new secret is a new fingerprint: the next run does not wait for the old failure.
    const fixed = structuredClone(cfg) as typeof cfg;
    (fixed.dns.providers.fake!.options as Record<string, unknown>).tsigSecret = 'bmV3LXNlY3JldA==';
    expect(settingsFingerprint(fixed, fixed.certificates[0]!)).not.toBe(state.failures.fingerprint);
    w.acme.failures.delete('www');
    expect((await w.run(fixed)).outcomes[0]!.status).toBe('renewed');
  });

  test('--dry-run gives the exit status of the real run for a held-back certificate', async () => {
    // Nothing installed and backing off: the real run fails (no usable certificate); so does the plan.
    const cfg = config(['www']);
    const fp = settingsFingerprint(cfg, cfg.certificates[0]!);
    const real = new World();
    real.states.states.set('www', failedState('www', fp));
    const dry = new World();
    dry.states.states.set('www', failedState('www', fp));
    const [r, d] = [await real.run(cfg), await dry.run(cfg, { dryRun: true })];
    expect(r.outcomes[0]!.status).toBe('waiting');
    expect(d.outcomes[0]!.status).toBe('waiting');
    expect(r.ok).toBe(false);
    expect(d.ok).toBe(false);
  });
});

describe('the exact-set guard (item 8)', () => {
  const threeOrders = (ca?: string): CertState['orders'] =>
    [3, 2, 1].map((d) => ({
      at: new Date(NOW.getTime() - d * DAY),
      names: ['www.example.test'],
      ...(ca ? { ca } : {}),
    }));

  test('one alert per guarded period, persisted; the line says it once, with the setting, the date and the way out', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.store.put('www', certInfo(['www.example.test'], 70));
    w.states.states.set('www', { ...emptyState('www'), orders: threeOrders() });
    const first = await w.run(cfg);
    const second = await w.run(cfg);
    expect(w.acme.requests).toHaveLength(0);
    for (const r of [first, second])
      expect(r.outcomes[0]).toMatchObject({ status: 'failed', errorCode: 'GUARDED' });
    expect(w.alerts.filter((a) => a.cert === 'www')).toHaveLength(1);
    expect(w.alerts[0]).toMatchObject({ kind: 'renewal-failed', notAfter: first.outcomes[0]!.notAfter });
    expect(w.states.states.get('www')!.guard).toEqual({ alertedUntil: new Date(NOW.getTime() + 4 * DAY) });

    const line = formatReport(first);
    expect(line.match(/already issued/g)).toHaveLength(1);
    expect(line).toContain('defaults.renewal.maxOrdersPerWeek is 3');
    expect(line).toContain('no order before 2026-11-05T00:00:00Z');
    expect(line).toContain('certpilot renew --override-guard www');
    expect(line).not.toContain(' error: ');

    // A new guarded period (later orders) alerts again, once.
    w.states.states.set('www', {
      ...w.states.states.get('www')!,
      orders: threeOrders().map((o) => ({ ...o, at: new Date(o.at.getTime() + DAY / 2) })),
    });
    await w.run(cfg);
    await w.run(cfg);
    expect(w.alerts.filter((a) => a.cert === 'www')).toHaveLength(2);
  });

  test('orders from a loopback test CA do not count against another CA; overrideGuard orders anyway', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.store.put('www', certInfo(['www.example.test'], 70));
    w.states.states.set('www', { ...emptyState('www'), orders: threeOrders('https://127.0.0.1:14000/dir') });
    const other = await w.run(cfg);
    expect(other.outcomes[0]!.status).toBe('renewed');
    expect(w.states.states.get('www')!.orders.at(-1)).toMatchObject({ ca: cfg.acme.directoryUrl });

    const w2 = new World();
    w2.store.put('www', certInfo(['www.example.test'], 70));
    w2.states.states.set('www', { ...emptyState('www'), orders: threeOrders(cfg.acme.directoryUrl) });
    expect((await w2.run(cfg)).outcomes[0]!.status).toBe('failed');
    expect((await w2.run(cfg, { overrideGuard: true })).outcomes[0]!.status).toBe('renewed');
  });
});

describe('a rolled-back version (item 9)', () => {
  const ca = makeCa();
  function keptPair(names: string[], lifetimeDays: number) {
    const pair = makeCertificate({
      names,
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + lifetimeDays * DAY),
      issuer: ca,
    });
    return { cert: pair.certPem, chain: ca.certPem, fullchain: pair.certPem + ca.certPem, key: pair.keyPem };
  }

  test('a failed deploy enters backoff; the kept version is deployed afterwards without a new order', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.store.put('www', certInfo(['www.example.test'], 70)); // due
    w.deploy.withWork.add('www');
    w.deploy.run = async () => ({
      ok: false,
      status: 'rolled-back',
      error: 'deploy[0] (nginx) reload exited with status 1',
      errorCode: 'HOOK_FAILED',
      serial: 'OLD',
      notAfter: new Date(NOW.getTime() + 20 * DAY),
      endpoints: {},
      rolledBack: { from: 'NEW', to: 'OLD', step: 'deploy' },
    });
    const first = await w.run(cfg);
    expect(first.outcomes[0]).toMatchObject({ status: 'failed', deploy: { status: 'rolled-back' } });
    expect(formatReport(first)).toContain(
      'deploy: rolled-back (new serial NEW failed deploy; rolled back to OLD)',
    );
    const state = w.states.states.get('www')!;
    expect(state.failures).toMatchObject({
      count: 1,
      lastError: 'deploy[0] (nginx) reload exited with status 1',
    });
    expect(state.failures.nextRetryAt!.getTime()).toBeGreaterThan(NOW.getTime());
    expect(w.acme.requests).toHaveLength(1);

    // What the real rollback keeps (src/deploy/deploy.ts), and the deploy fixed.
    const kept = keptPair(['www.example.test'], 89);
    w.deploy.keptVersions.set('www', { ...kept, serial: 'NEW' });
    delete (w.deploy as { run?: unknown }).run;

    // Within the backoff: waiting, no order, and the line says what happens when.
    const held = await w.run(cfg);
    expect(held.outcomes[0]!.status).toBe('waiting');
    expect(held.outcomes[0]!.decision.detail).toMatch(
      /^new serial [0-9A-F]+ was rolled back \(last error: .*\); deployed again without a new order after .*; to deploy it now: certpilot renew --force www$/,
    );
    expect(w.acme.requests).toHaveLength(1);

    // After it: the kept version is installed and deployed; no order.
    const later = new Date(NOW.getTime() + 2 * MINUTE);
    const after = await runAt(w, cfg, later);
    expect(after.outcomes[0]).toMatchObject({ status: 'deployed', deploy: { status: 'verified' } });
    expect(w.acme.requests).toHaveLength(1);
    expect(w.store.installs).toEqual(['www', 'www']);
    expect(w.deploy.runs.at(-1)).toMatchObject({ name: 'www', installed: true });
    expect(w.deploy.keptVersions.has('www')).toBe(false);
    expect(w.states.states.get('www')!.failures).toEqual({ count: 0 });
  });

  test('a kept version that no longer fits (names changed) is not deployed: a new order follows', async () => {
    const w = new World();
    const cfg = config(['www']);
    w.store.put('www', certInfo(['www.example.test'], 70));
    w.deploy.keptVersions.set('www', { ...keptPair(['old.example.test'], 89), serial: 'X' });
    const report = await w.run(cfg);
    expect(report.outcomes[0]!.status).toBe('renewed');
    expect(w.acme.requests).toHaveLength(1);
  });
});

function runAt(w: World, cfg: AgentConfig, at: Date): Promise<RenewReport> {
  return runRenew(cfg, {}, { ...w.deps(), clock: fixedClock(at) }, w.overrides());
}
