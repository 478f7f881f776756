import {
  chooseProfile,
  formatLifetime,
  lifetimeMatches,
  lifetimeMismatch,
  promisedLifetimeMs,
} from '../../src/acme/profiles';
import type { AgentConfig, CertificateSpec } from '../../src/config/types';
import { DEFAULT_SCHEDULE_POLICY, nextAction } from '../../src/plan/schedule';
import { settingsFingerprint } from '../../src/renew/fingerprint';
import { profileChange, recordedProfile, withIssuedProfile } from '../../src/renew/profile';
import { decodeState, emptyState, encodeState, type CertState } from '../../src/state/store';
import type { CertInfo } from '../../src/x509';
import { baseConfig, load, loadError, makeTempDir, paths, removeDir, writeConfig } from '../config/helpers';

/**
 * The rules behind ACME profiles, without a CA: the choice for newOrder (required, preferred),
 * the promised lifetimes and their tolerance, the configuration's checks, the record kept with
 * each version and when a difference renews. test/integration/profiles.test.ts runs the same
 * through the CLI against Pebble.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (s: string): Date => new Date(s);
const URL = 'https://ca.example/dir';

describe('chooseProfile', () => {
  const dir = { profiles: { classic: '', shortlived: '' } };

  test('no profile asked for: none sent, whatever the mode', () => {
    expect(chooseProfile(undefined, 'preferred', dir, URL)).toEqual({});
    expect(chooseProfile(undefined, undefined, { profiles: {} }, URL)).toEqual({});
  });

  test('offered: sent, in either mode', () => {
    expect(chooseProfile('shortlived', 'required', dir, URL)).toEqual({ profile: 'shortlived' });
    expect(chooseProfile('shortlived', 'preferred', dir, URL)).toEqual({ profile: 'shortlived' });
  });

  test('preferred and not offered: none sent, the missing name reported', () => {
    expect(chooseProfile('tlsserver', 'preferred', dir, URL)).toEqual({ unavailable: 'tlsserver' });
    // A name like an Object prototype member is not "offered" by accident.
    expect(chooseProfile('constructor', 'preferred', dir, URL)).toEqual({ unavailable: 'constructor' });
  });

  test('required (also the default) and not offered: ACME_PROBLEM naming the CA and what it offers', () => {
    for (const mode of ['required', undefined] as const) {
      expect(() => chooseProfile('tlsserver', mode, dir, URL)).toThrow(
        expect.objectContaining({
          code: 'ACME_PROBLEM',
          retryable: false,
          message: `acme: profile "tlsserver" is not offered by the CA at ${URL}; it offers: "classic", "shortlived"`,
        }),
      );
    }
  });
});

describe('promised lifetimes', () => {
  test("Let's Encrypt's published values, by the date the certificate was issued", () => {
    expect(promisedLifetimeMs('shortlived', at('2026-11-30T00:00:00Z'))).toEqual({
      lifetimeMs: 160 * HOUR,
      source: 'lets-encrypt',
    });
    expect(promisedLifetimeMs('classic', at('2026-11-30T00:00:00Z'))!.lifetimeMs).toBe(90 * DAY);
    expect(promisedLifetimeMs('classic', at('2027-02-10T00:00:00Z'))!.lifetimeMs).toBe(64 * DAY);
    expect(promisedLifetimeMs('classic', at('2028-03-01T00:00:00Z'))!.lifetimeMs).toBe(45 * DAY);
    expect(promisedLifetimeMs('tlsserver', at('2026-05-12T23:00:00Z'))!.lifetimeMs).toBe(90 * DAY);
    expect(promisedLifetimeMs('tlsserver', at('2026-05-13T00:00:00Z'))!.lifetimeMs).toBe(45 * DAY);
  });

  test('a stated lifetime wins; an unknown name without one promises nothing', () => {
    expect(promisedLifetimeMs('classic', at('2026-11-30T00:00:00Z'), 30 * DAY)).toEqual({
      lifetimeMs: 30 * DAY,
      source: 'configured',
    });
    expect(promisedLifetimeMs('custom', at('2026-11-30T00:00:00Z'))).toBeUndefined();
    expect(promisedLifetimeMs('toString', at('2026-11-30T00:00:00Z'))).toBeUndefined();
  });

  test('tolerance: one hour plus 5 % of the promise, either way', () => {
    const promise = 160 * HOUR; // tolerance 1 h + 8 h = 9 h
    expect(lifetimeMatches(promise - 1000, promise)).toBe(true); // notAfter inclusive: one second short
    expect(lifetimeMatches(promise + 9 * HOUR, promise)).toBe(true);
    expect(lifetimeMatches(promise - 9 * HOUR, promise)).toBe(true);
    expect(lifetimeMatches(promise + 9 * HOUR + 1000, promise)).toBe(false);
    expect(lifetimeMatches(promise - 9 * HOUR - 1000, promise)).toBe(false);
  });

  test('the mismatch sentence names the promise, its source and what was issued', () => {
    const issued = { notBefore: at('2026-11-30T00:00:00Z'), notAfter: at('2026-12-06T16:00:00Z') };
    expect(lifetimeMismatch('shortlived', issued)).toBeUndefined();
    expect(lifetimeMismatch('classic', issued)).toBe(
      `profile "classic" promised a lifetime of 90d (Let's Encrypt's published lifetime), the CA issued 160h; ` +
        'renewal follows the real lifetime; set profileLifetime if this CA means otherwise',
    );
    expect(lifetimeMismatch('custom', issued, 30 * DAY)).toBe(
      'profile "custom" promised a lifetime of 30d (profileLifetime), the CA issued 160h; renewal follows the real lifetime',
    );
    expect(lifetimeMismatch('custom', issued)).toBeUndefined();
    expect(formatLifetime(160 * HOUR - 1000)).toBe('160h');
  });
});

describe('configuration: profile, profileMode, profileLifetime', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
  });
  afterAll(() => removeDir(dir));

  function withCert(extra: Record<string, unknown>): string {
    const c = baseConfig(dir);
    Object.assign(c.certificates[0], extra);
    return writeConfig(dir, c);
  }

  test('a bare profile is required; the mode and a lifetime in hours or days are read', async () => {
    expect((await load(withCert({ profile: 'shortlived' }))).certificates[0]).toMatchObject({
      profile: 'shortlived',
      profileMode: 'required',
    });
    const spec = (
      await load(withCert({ profile: 'custom', profileMode: 'preferred', profileLifetime: '45d' }))
    ).certificates[0]!;
    expect(spec).toMatchObject({ profile: 'custom', profileMode: 'preferred', profileLifetimeMs: 45 * DAY });
    expect(
      (await load(withCert({ profile: 'custom', profileLifetime: '160h' }))).certificates[0]!
        .profileLifetimeMs,
    ).toBe(160 * HOUR);
    expect((await load(withCert({}))).certificates[0]).not.toHaveProperty('profileMode');
  });

  test.each([
    [{ profileMode: 'preferred' }, 'certificates[0].profileMode', /applies only with `profile`/],
    [{ profileLifetime: '45d' }, 'certificates[0].profileLifetime', /applies only with `profile`/],
    [{ profile: 'x', profileMode: 'sometimes' }, 'certificates[0].profileMode', /one of required, preferred/],
    [{ profile: 'x', profileLifetime: '45 days' }, 'certificates[0].profileLifetime', /"160h" or "45d"/],
    [{ profile: 'x', profileLifetime: 3600000 }, 'certificates[0].profileLifetime', /"160h" or "45d"/],
    [{ profile: 'x', profileLifetime: '0h' }, 'certificates[0].profileLifetime', /between 1h and 3650d/],
    [{ profile: 'no spaces' }, 'certificates[0].profile', /profile name/],
  ])('%j is refused at %s', async (extra, at, message) => {
    const err = await loadError(withCert(extra));
    expect(paths(err.issues)).toEqual([at]);
    expect(err.issues[0]!.message).toMatch(message);
  });
});

const SPEC: CertificateSpec = {
  name: 'www',
  domains: ['www.example.test'],
  keyType: 'ec-p256',
  reuseKey: false,
  domainProviders: {},
  outputs: [],
};

function info(serial = '01'): CertInfo {
  return {
    pem: '',
    serial,
    notBefore: at('2026-11-01T00:00:00Z'),
    notAfter: at('2027-01-30T00:00:00Z'),
    names: ['www.example.test'],
    subject: 'CN=www.example.test',
    issuer: 'CN=CA',
    fingerprint256: 'AA',
    keyType: 'ec-p256',
    selfSigned: false,
    serialDer: '01',
  };
}

function recorded(
  profile: string | null | undefined,
  extra: Partial<NonNullable<CertState['lastSuccess']>> = {},
): CertState {
  return {
    ...emptyState('www'),
    lastSuccess: {
      at: at('2026-11-01T00:00:00Z'),
      serial: '01',
      notAfter: at('2027-01-30T00:00:00Z'),
      ...(profile !== undefined ? { profile } : {}),
      ...extra,
    },
  };
}

describe('the profile recorded with a version, and when a difference renews', () => {
  const NOW = at('2026-11-05T00:00:00Z');
  let directoryReads = 0;
  const offered = (profiles: Record<string, string>) => async (): Promise<Record<string, string>> => {
    directoryReads++;
    return profiles;
  };
  const change = (spec: Partial<CertificateSpec>, state: CertState, now = NOW, dir = {}) =>
    profileChange({ ...SPEC, ...spec }, info(), state, now, offered(dir));

  beforeEach(() => {
    directoryReads = 0;
  });

  test('same profile, or only the mode changed: no renewal, and no directory read', async () => {
    expect(
      await change({ profile: 'shortlived', profileMode: 'required' }, recorded('shortlived')),
    ).toBeUndefined();
    expect(
      await change({ profile: 'shortlived', profileMode: 'preferred' }, recorded('shortlived')),
    ).toBeUndefined();
    expect(await change({}, recorded(null))).toBeUndefined();
    expect(directoryReads).toBe(0);
  });

  test('another profile, one added or one removed: renewal, saying from what to what', async () => {
    expect(await change({ profile: 'tlsserver', profileMode: 'required' }, recorded('shortlived'))).toBe(
      'profile changed from "shortlived" to "tlsserver"',
    );
    expect(await change({ profile: 'shortlived', profileMode: 'preferred' }, recorded(null))).toBe(
      `profile changed from none (the CA's default) to "shortlived"`,
    );
    expect(await change({}, recorded('shortlived'))).toBe(
      `profile changed from "shortlived" to none (the CA's default)`,
    );
    // A preferred profile that fell back, now another one preferred: a change too.
    expect(
      await change(
        { profile: 'tlsserver', profileMode: 'preferred' },
        recorded(null, { profileUnavailable: 'shortlived' }),
      ),
    ).toBe(`profile changed from none (the CA's default) to "tlsserver"`);
  });

  test('nothing recorded for the installed serial (older state, import, rollback): never a reason', async () => {
    expect(
      await change({ profile: 'shortlived', profileMode: 'required' }, recorded(undefined)),
    ).toBeUndefined();
    expect(
      await change({ profile: 'shortlived', profileMode: 'required' }, emptyState('www')),
    ).toBeUndefined();
    const otherSerial = recorded('classic', { serial: '02' });
    expect(await change({ profile: 'shortlived', profileMode: 'required' }, otherSerial)).toBeUndefined();
    expect(
      await profileChange({ ...SPEC, profile: 'shortlived' }, null, recorded('classic'), NOW, offered({})),
    ).toBeUndefined();
  });

  test('preferred, ordered without it: renewed once the CA offers it, judged a day after that order', async () => {
    const spec = { profile: 'shortlived', profileMode: 'preferred' as const };
    const fellBack = recorded(null, { profileUnavailable: 'shortlived', at: at('2026-11-04T12:00:00Z') });
    // Within the directory cache's day: the cached directory may predate the order. Not read.
    expect(await change(spec, fellBack, NOW, { shortlived: '' })).toBeUndefined();
    expect(directoryReads).toBe(0);
    const later = at('2026-11-05T12:00:00Z');
    expect(await change(spec, fellBack, later, { classic: '' })).toBeUndefined();
    expect(await change(spec, fellBack, later, { shortlived: '' })).toBe(
      'preferred profile "shortlived" is now offered by the CA; this version was ordered without it',
    );
    expect(directoryReads).toBe(2);
  });

  test('a profile reason is due now, after names and key, but still held back by backoff', () => {
    const opts = { profileChanged: 'profile changed from "classic" to "shortlived"' };
    const fresh = nextAction(
      SPEC,
      info(),
      emptyState('www'),
      at('2026-11-05T00:00:00Z'),
      DEFAULT_SCHEDULE_POLICY,
      undefined,
      opts,
    );
    expect(fresh).toMatchObject({ renewNow: true, reason: 'profile-changed', detail: opts.profileChanged });

    const failing: CertState = {
      ...emptyState('www'),
      failures: { count: 1, nextRetryAt: at('2026-11-05T00:10:00Z') },
    };
    const held = nextAction(
      SPEC,
      info(),
      failing,
      at('2026-11-05T00:00:00Z'),
      DEFAULT_SCHEDULE_POLICY,
      undefined,
      opts,
    );
    expect(held).toMatchObject({ renewNow: false, reason: 'backoff' });
    expect(held.detail).toContain('profile-changed');

    const renamed = nextAction(
      { ...SPEC, domains: ['www.example.test', 'api.example.test'] },
      info(),
      emptyState('www'),
      at('2026-11-05T00:00:00Z'),
      DEFAULT_SCHEDULE_POLICY,
      undefined,
      opts,
    );
    expect(renamed.reason).toBe('names-changed');
    // Nothing installed: missing, not a profile change.
    expect(
      nextAction(
        SPEC,
        null,
        emptyState('www'),
        at('2026-11-05T00:00:00Z'),
        DEFAULT_SCHEDULE_POLICY,
        undefined,
        opts,
      ).reason,
    ).toBe('missing');
  });

  test('switching a required profile to preferred voids the backoff of its failure; the default mode hashes as before', () => {
    const config = {
      dns: { providers: {} },
      acme: { directoryUrl: URL, requestTimeoutMs: 10_000 },
    } as unknown as AgentConfig;
    const print = (spec: Partial<CertificateSpec>): string =>
      settingsFingerprint(config, { ...SPEC, ...spec });
    const required = print({ profile: 'shortlived', profileMode: 'required' });
    expect(print({ profile: 'shortlived', profileMode: 'preferred' })).not.toBe(required);
    expect(print({ profile: 'shortlived' })).toBe(required);
    expect(print({ profile: 'shortlived', profileMode: 'required', profileLifetimeMs: DAY })).toBe(required);
  });

  test('the record survives the state file: null (none) is kept apart from absent (unknown)', () => {
    const now = at('2026-11-05T00:00:00Z');
    const roundTrip = (s: CertState): CertState => decodeState('www', JSON.parse(encodeState(s, now)));
    const none = withIssuedProfile(recorded(undefined), { unavailable: 'shortlived' });
    expect(roundTrip(none).lastSuccess).toMatchObject({ profile: null, profileUnavailable: 'shortlived' });
    expect(recordedProfile(roundTrip(none), '01')).toEqual({ name: null, unavailable: 'shortlived' });

    const used = withIssuedProfile(none, { profile: 'shortlived' });
    expect(roundTrip(used).lastSuccess).toMatchObject({ profile: 'shortlived' });
    expect(roundTrip(used).lastSuccess).not.toHaveProperty('profileUnavailable');

    expect(roundTrip(recorded(undefined)).lastSuccess).not.toHaveProperty('profile');
    expect(recordedProfile(roundTrip(recorded(undefined)), '01')).toBeNull();
    expect(recordedProfile(roundTrip(used), '02')).toBeNull();
  });
});
