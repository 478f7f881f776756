import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StateStore } from '../../src/state/store';
import { startProfileProxy, type ProfileProxy } from '../helpers/profile-proxy';
import { runCli, startTestbed, type Testbed } from '../helpers/testbed';

/**
 * ACME profiles end to end through the CLI: Pebble 2.4 + BIND (testbed) behind
 * test/helpers/profile-proxy.ts, which offers `meta.profiles` and records the `profile` of
 * every newOrder. Pebble issues every certificate for 160 hours (its
 * certificateValidityPeriod) whatever the profile: right for `shortlived` (Let's Encrypt's
 * 160 hours), wrong for `classic` (90 days), which is how the lifetime check is provoked.
 *
 * Every case has its own state directory (certificate, scheduling state, directory cache).
 */

const HOUR = 3_600_000;
const VALIDITY_HOURS = 160;
const OFFERED = { classic: '90 days', shortlived: '160 hours', custom: 'a private profile' };

let tb: Testbed;
let proxy: ProfileProxy;

beforeAll(async () => {
  tb = await startTestbed({ certificateValidityPeriod: VALIDITY_HOURS * 3600 });
  proxy = await startProfileProxy(tb.pebble, OFFERED);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await tb?.stop();
});

interface Row {
  name: string;
  status: string;
  reason: string;
  detail: string;
  serial: string | null;
  notAfter: string | null;
  renewAt: string | null;
  error: string | null;
  errorCode: string | null;
  warnings: string[];
}

interface Renewed {
  code: number;
  rows: Row[];
  /** Log lines (JSON) of the run. */
  logs: { msg?: string; message?: string; [k: string]: unknown }[];
}

let n = 0;

/** A fresh state directory; `write` puts the given certificates in a config using it. */
function newCase(): { stateDir: string; write(certs: Record<string, unknown>[]): Promise<string> } {
  const stateDir = path.join(tb.dir, `state-profiles-${++n}`);
  return {
    stateDir,
    write: (certs) =>
      tb.writeConfig(certs, {
        acme: {
          directory: proxy.directoryUrl,
          caBundle: tb.pebble.tlsCaPath,
          termsAgreed: true,
          requestTimeout: '10s',
        },
        storage: { stateDir },
      }),
  };
}

function cert(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, domains: [`${name}.example.test`], ...extra };
}

async function renew(configPath: string): Promise<Renewed> {
  const res = await runCli(['renew', '--config', configPath, '--json', '--log-format', 'json']);
  expect(res.stderr).not.toMatch(/unexpected error/);
  const logs = res.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Renewed['logs'][number]);
  return { code: res.code, rows: (JSON.parse(res.stdout) as { certificates: Row[] }).certificates, logs };
}

const messageOf = (l: Renewed['logs'][number]): string => String(l.msg ?? l.message ?? '');

async function lastSuccess(stateDir: string, name: string) {
  return (await new StateStore(stateDir).read(name)).state.lastSuccess;
}

describe('certpilot renew with ACME profiles (Pebble behind a proxy that offers profiles)', () => {
  test('preferred and offered: the order names the profile; the lifetime matches; recorded with the version', async () => {
    const c = newCase();
    const config = await c.write([cert('pref-ok', { profile: 'shortlived', profileMode: 'preferred' })]);
    const from = proxy.orderCount();
    const r = await renew(config);
    expect(r.code).toBe(0);
    expect(r.rows[0]).toMatchObject({ name: 'pref-ok', status: 'renewed', reason: 'missing', warnings: [] });
    expect(proxy.profilesAsked(from)).toEqual(['shortlived']);
    expect(await lastSuccess(c.stateDir, 'pref-ok')).toMatchObject({
      serial: r.rows[0]!.serial,
      profile: 'shortlived',
    });

    // `certpilot certificates` shows what was asked for and what the version was issued with.
    const list = await runCli(['certificates', '--config', config, '--json']);
    expect(list.code).toBe(0);
    const [row] = (JSON.parse(list.stdout) as { certificates: Record<string, unknown>[] }).certificates;
    expect(row).toMatchObject({
      profile: 'shortlived',
      profileMode: 'preferred',
      issuedProfile: { name: 'shortlived' },
    });
    const text = await runCli(['certificates', '--config', config]);
    expect(text.stdout).toContain('profile: shortlived (preferred; issued with: shortlived)');
  }, 120_000);

  test('preferred and not offered: ordered without a profile, one warning per run naming the CA and the profile', async () => {
    const c = newCase();
    const config = await c.write([
      cert('pref-lack-a', { profile: 'tlsserver', profileMode: 'preferred' }),
      cert('pref-lack-b', { profile: 'tlsserver', profileMode: 'preferred' }),
    ]);
    const from = proxy.orderCount();
    const r = await renew(config);
    expect(r.code).toBe(0);
    expect(r.rows.map((x) => x.status)).toEqual(['renewed', 'renewed']);
    expect(proxy.profilesAsked(from)).toEqual([undefined, undefined]);
    for (const p of proxy.payloads(from)) expect(p).not.toHaveProperty('profile');

    const warned = r.logs.filter((l) => /preferred ACME profile not offered/.test(messageOf(l)));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ profile: 'tlsserver', directory: proxy.directoryUrl });
    for (const row of r.rows)
      expect(row.warnings).toEqual([
        `ordered without profile "tlsserver": the CA at ${proxy.directoryUrl} does not offer it (profileMode: preferred)`,
      ]);
    expect(await lastSuccess(c.stateDir, 'pref-lack-a')).toMatchObject({
      profile: null,
      profileUnavailable: 'tlsserver',
    });
    const text = await runCli(['certificates', '--config', config, 'pref-lack-a']);
    expect(text.stdout).toContain(
      'profile: tlsserver (preferred; issued with: none, the CA did not offer it)',
    );

    // The CA still lacks it: nothing to do on the next run.
    const again = await renew(config);
    expect(again.rows.map((x) => x.status)).toEqual(['valid', 'valid']);
    expect(proxy.orderCount()).toBe(from + 2);
  }, 120_000);

  test('required and not offered: the certificate fails before any order', async () => {
    const c = newCase();
    const config = await c.write([cert('req-lack', { profile: 'tlsserver' })]);
    const from = proxy.orderCount();
    const r = await renew(config);
    expect(r.code).toBe(1);
    expect(r.rows[0]).toMatchObject({ name: 'req-lack', status: 'failed', errorCode: 'ACME_PROBLEM' });
    expect(r.rows[0]!.error).toContain(
      `profile "tlsserver" is not offered by the CA at ${proxy.directoryUrl}`,
    );
    expect(proxy.orderCount()).toBe(from);
  }, 120_000);

  test('a changed profile renews once with the new profile; an unchanged one, or only a changed mode, is a no-op', async () => {
    const c = newCase();
    const first = await renew(await c.write([cert('change', { profile: 'shortlived' })]));
    expect(first.rows[0]).toMatchObject({ status: 'renewed' });
    const firstSerial = first.rows[0]!.serial;

    let from = proxy.orderCount();
    const same = await renew(await c.write([cert('change', { profile: 'shortlived' })]));
    expect(same.rows[0]).toMatchObject({ status: 'valid', serial: firstSerial });
    expect(proxy.orderCount()).toBe(from);

    const changed = await c.write([
      cert('change', { profile: 'custom', profileLifetime: `${VALIDITY_HOURS}h` }),
    ]);
    from = proxy.orderCount();
    const r = await renew(changed);
    expect(r.rows[0]).toMatchObject({
      status: 'renewed',
      reason: 'profile-changed',
      detail: 'profile changed from "shortlived" to "custom"',
      warnings: [],
    });
    expect(r.rows[0]!.serial).not.toBe(firstSerial);
    expect(proxy.profilesAsked(from)).toEqual(['custom']);

    from = proxy.orderCount();
    expect((await renew(changed)).rows[0]).toMatchObject({ status: 'valid', serial: r.rows[0]!.serial });
    const modeOnly = await c.write([
      cert('change', { profile: 'custom', profileMode: 'preferred', profileLifetime: `${VALIDITY_HOURS}h` }),
    ]);
    expect((await renew(modeOnly)).rows[0]).toMatchObject({ status: 'valid', serial: r.rows[0]!.serial });

    // Removing the profile renews too: the CA's default is another profile.
    const none = await renew(await c.write([cert('change')]));
    expect(none.rows[0]).toMatchObject({
      status: 'renewed',
      reason: 'profile-changed',
      detail: `profile changed from "custom" to none (the CA's default)`,
    });
    expect(proxy.profilesAsked(from)).toEqual([undefined]);
  }, 180_000);

  test('a lifetime other than the promised one: a warning in the report and the log, a check finding; renewal follows the real lifetime', async () => {
    const c = newCase();
    const config = await c.write([cert('short-classic', { profile: 'classic' })]);
    const r = await renew(config);
    expect(r.code).toBe(0);
    const row = r.rows[0]!;
    const expected =
      `profile "classic" promised a lifetime of 90d (Let's Encrypt's published lifetime), the CA issued ` +
      `${VALIDITY_HOURS}h; renewal follows the real lifetime; set profileLifetime if this CA means otherwise`;
    expect(row).toMatchObject({ status: 'renewed', warnings: [expected] });
    expect(
      r.logs.filter((l) => /lifetime differs from what its profile promised/.test(messageOf(l))),
    ).toHaveLength(1);
    // The schedule uses the certificate's own dates: half of 160 hours before notAfter, not a
    // third of 90 days.
    const renewAt = Date.parse(row.renewAt!);
    const notAfter = Date.parse(row.notAfter!);
    expect(Math.abs(notAfter - renewAt - (VALIDITY_HOURS / 2) * HOUR)).toBeLessThan(HOUR);

    const check = await runCli(['check', '--config', config, '--json', 'short-classic']);
    const results = (
      JSON.parse(check.stdout) as {
        results: { findings: { code: string; severity: string; message: string }[] }[];
      }
    ).results;
    expect(results[0]!.findings).toContainEqual({
      code: 'profile-lifetime',
      severity: 'warning',
      message: expected,
    });

    // A stated lifetime that matches the CA: no warning, no finding.
    const stated = await c.write([cert('short-stated', { profile: 'classic', profileLifetime: '160h' })]);
    expect((await renew(stated)).rows[0]).toMatchObject({ status: 'renewed', warnings: [] });
    const ok = await runCli(['check', '--config', stated, '--json', 'short-stated']);
    const okRows = (JSON.parse(ok.stdout) as { results: { findings: { code: string }[] }[] }).results;
    expect(okRows[0]!.findings.map((f) => f.code)).not.toContain('profile-lifetime');
  }, 180_000);

  test('preferred, ordered without it, and later offered: renewed once the directory is read after that order', async () => {
    const c = newCase();
    const later = { ...OFFERED, later: 'offered from now on' };
    proxy.setProfiles(later);
    try {
      // Issued without a profile; its run caches the directory, which offers "later".
      const first = await renew(await c.write([cert('later')]));
      expect(first.rows[0]).toMatchObject({ status: 'renewed' });

      // The CA withdraws "later" just before the operator prefers it: the order falls back.
      proxy.setProfiles(OFFERED);
      const config = await c.write([cert('later', { profile: 'later', profileMode: 'preferred' })]);
      let from = proxy.orderCount();
      const fellBack = await renew(config);
      expect(fellBack.rows[0]).toMatchObject({ status: 'renewed', reason: 'profile-changed' });
      expect(proxy.profilesAsked(from)).toEqual([undefined]);
      expect(await lastSuccess(c.stateDir, 'later')).toMatchObject({
        profile: null,
        profileUnavailable: 'later',
      });

      // The cached directory (read before that order) still lists "later": trusting it would
      // order again on every run while the CA lacks it. No order.
      from = proxy.orderCount();
      expect((await renew(config)).rows[0]).toMatchObject({ status: 'valid' });
      expect(proxy.orderCount()).toBe(from);

      // The CA offers it again; a day later the directory has been read again: renewed with it.
      proxy.setProfiles(later);
      const file = path.join(c.stateDir, 'state', 'later.json');
      const doc = JSON.parse(await readFile(file, 'utf8')) as { lastSuccess: { at: string } };
      doc.lastSuccess.at = new Date(Date.parse(doc.lastSuccess.at) - 25 * HOUR).toISOString();
      await writeFile(file, JSON.stringify(doc), { mode: 0o600 });
      await rm(path.join(c.stateDir, 'cache'), { recursive: true, force: true });
      from = proxy.orderCount();
      const r = await renew(config);
      expect(r.rows[0]).toMatchObject({
        status: 'renewed',
        reason: 'profile-changed',
        detail: 'preferred profile "later" is now offered by the CA; this version was ordered without it',
      });
      expect(proxy.profilesAsked(from)).toEqual(['later']);
      expect(await lastSuccess(c.stateDir, 'later')).toMatchObject({ profile: 'later' });
      expect(await lastSuccess(c.stateDir, 'later')).not.toHaveProperty('profileUnavailable');
    } finally {
      proxy.setProfiles(OFFERED);
    }
  }, 180_000);
});
