import type { CertificateSpec, KeyType, RenewalPolicy } from '../../src/config/types';
import {
  DEFAULT_RENEWAL_POLICY,
  planRenewals,
  renewalTime,
  type Decision,
  type RenewReason,
} from '../../src/plan';
import type { CertInfo } from '../../src/x509';

const policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string): Date => new Date(iso);

function spec(over: Partial<CertificateSpec> = {}): CertificateSpec {
  return {
    name: 'site',
    domains: ['example.test', 'www.example.test'],
    keyType: 'ec-p256',
    reuseKey: false,
    domainProviders: {},
    outputs: [],
    ...over,
  };
}

function info(over: {
  notBefore: Date;
  notAfter: Date;
  names?: string[];
  keyType?: KeyType | 'unknown';
}): CertInfo {
  return {
    pem: '',
    serial: '01',
    names: over.names ?? ['example.test', 'www.example.test'],
    subject: 'CN=example.test',
    issuer: 'CN=test CA',
    fingerprint256: '00',
    keyType: over.keyType ?? 'ec-p256',
    selfSigned: false,
    notBefore: over.notBefore,
    notAfter: over.notAfter,
  };
}

// A 90-day certificate: the window opens with 30 days left, on 2026-10-31.
const NINETY = { notBefore: at('2026-09-01T00:00:00Z'), notAfter: at('2026-11-30T00:00:00Z') };
// Let's Encrypt's `shortlived` profile: 160 hours; half rule, window opens after 80 hours.
const SHORT_160H = {
  notBefore: at('2026-11-01T00:00:00Z'),
  notAfter: new Date(Date.parse('2026-11-01T00:00:00Z') + 160 * HOUR),
};
// A 6-day certificate: half rule, window opens on day 3.
const SIX_DAYS = { notBefore: at('2026-11-01T00:00:00Z'), notAfter: at('2026-11-07T00:00:00Z') };

describe('renewalTime', () => {
  const cases: { desc: string; notBefore: string; lifetimeMs: number; expected: string }[] = [
    {
      desc: '90 days: a third left',
      notBefore: '2026-09-01T00:00:00Z',
      lifetimeMs: 90 * DAY,
      expected: '2026-10-31T00:00:00.000Z',
    },
    // Real certificates: validity is inclusive, so "90 days" is 90 days minus a second.
    {
      desc: '90 days - 1 s (as issued)',
      notBefore: '2026-09-01T00:00:00Z',
      lifetimeMs: 90 * DAY - 1000,
      expected: '2026-10-30T23:59:59.333Z',
    },
    {
      desc: '45 days',
      notBefore: '2026-09-01T00:00:00Z',
      lifetimeMs: 45 * DAY,
      expected: '2026-10-01T00:00:00.000Z',
    },
    {
      desc: '6 days: half left',
      notBefore: '2026-11-01T00:00:00Z',
      lifetimeMs: 6 * DAY,
      expected: '2026-11-04T00:00:00.000Z',
    },
    {
      desc: '160 hours: half left',
      notBefore: '2026-11-01T00:00:00Z',
      lifetimeMs: 160 * HOUR,
      expected: '2026-11-04T08:00:00.000Z',
    },
    {
      desc: 'just under 10 days: half',
      notBefore: '2026-11-01T00:00:00Z',
      lifetimeMs: 10 * DAY - 1000,
      expected: '2026-11-05T23:59:59.500Z',
    },
    {
      desc: 'exactly 10 days: not short, a third',
      notBefore: '2026-11-01T00:00:00Z',
      lifetimeMs: 10 * DAY,
      expected: '2026-11-07T16:00:00.000Z',
    },
    {
      desc: 'zero lifetime: at notAfter',
      notBefore: '2026-11-01T00:00:00Z',
      lifetimeMs: 0,
      expected: '2026-11-01T00:00:00.000Z',
    },
  ];
  it.each(cases)('$desc', ({ notBefore, lifetimeMs, expected }) => {
    const nb = at(notBefore);
    expect(
      renewalTime({ notBefore: nb, notAfter: new Date(nb.getTime() + lifetimeMs) }, policy).toISOString(),
    ).toBe(expected);
  });

  it('uses the ratios from the policy', () => {
    const custom: RenewalPolicy = {
      renewRatio: 0.5,
      shortLifetimeRatio: 0.75,
      shortLifetimeDays: 7,
      maxOrdersPerWeek: 3,
    };
    expect(renewalTime(NINETY, custom).toISOString()).toBe('2026-10-16T00:00:00.000Z');
    expect(renewalTime(SIX_DAYS, custom).toISOString()).toBe('2026-11-02T12:00:00.000Z');
  });
});

describe('planRenewals', () => {
  interface Row {
    desc: string;
    spec?: Partial<CertificateSpec>;
    cert: CertInfo | null;
    now: string;
    force?: boolean;
    reason: RenewReason;
  }
  const rows: Row[] = [
    { desc: 'nothing installed', cert: null, now: '2026-10-01T00:00:00Z', reason: 'missing' },
    { desc: '90-day, day 1', cert: info(NINETY), now: '2026-09-02T00:00:00Z', reason: 'valid' },
    {
      desc: '90-day, 1 ms before window',
      cert: info(NINETY),
      now: '2026-10-30T23:59:59.999Z',
      reason: 'valid',
    },
    { desc: '90-day, window opens', cert: info(NINETY), now: '2026-10-31T00:00:00Z', reason: 'in-window' },
    { desc: '90-day, 1 day left', cert: info(NINETY), now: '2026-11-29T00:00:00Z', reason: 'in-window' },
    {
      desc: '90-day, at notAfter (still valid)',
      cert: info(NINETY),
      now: '2026-11-30T00:00:00Z',
      reason: 'in-window',
    },
    {
      desc: '90-day, 1 ms after notAfter',
      cert: info(NINETY),
      now: '2026-11-30T00:00:00.001Z',
      reason: 'expired',
    },
    {
      desc: '6-day, 1 ms before half-life',
      cert: info(SIX_DAYS),
      now: '2026-11-03T23:59:59.999Z',
      reason: 'valid',
    },
    {
      desc: '6-day, half-life: window opens',
      cert: info(SIX_DAYS),
      now: '2026-11-04T00:00:00Z',
      reason: 'in-window',
    },
    // The third rule would wait until 2026-11-05T00:00Z; the half rule is already renewing.
    { desc: '6-day, 3.5 days in', cert: info(SIX_DAYS), now: '2026-11-04T12:00:00Z', reason: 'in-window' },
    { desc: '160-hour, 79 h in', cert: info(SHORT_160H), now: '2026-11-04T07:00:00Z', reason: 'valid' },
    { desc: '160-hour, 80 h in', cert: info(SHORT_160H), now: '2026-11-04T08:00:00Z', reason: 'in-window' },
    {
      desc: 'forced while valid',
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      force: true,
      reason: 'forced',
    },
    {
      desc: 'name added',
      spec: { domains: ['example.test', 'www.example.test', 'api.example.test'] },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'names-changed',
    },
    {
      desc: 'name removed',
      spec: { domains: ['example.test'] },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'names-changed',
    },
    {
      desc: 'same names, other order',
      spec: { domains: ['www.example.test', 'example.test'] },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'valid',
    },
    {
      desc: 'same names, other case',
      cert: info({ ...NINETY, names: ['EXAMPLE.test', 'www.Example.TEST'] }),
      now: '2026-09-02T00:00:00Z',
      reason: 'valid',
    },
    {
      desc: 'wildcard is not the apex',
      spec: { domains: ['example.test', '*.example.test'] },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'names-changed',
    },
    {
      desc: 'key type changed',
      spec: { keyType: 'rsa-2048' },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'key-changed',
    },
    {
      desc: 'EC curve changed',
      spec: { keyType: 'ec-p384' },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'key-changed',
    },
    {
      desc: 'unknown key type',
      cert: info({ ...NINETY, keyType: 'unknown' }),
      now: '2026-09-02T00:00:00Z',
      reason: 'key-changed',
    },
    // Precedence: missing > forced > expired > names-changed > key-changed > in-window > valid
    { desc: 'missing beats forced', cert: null, now: '2026-09-02T00:00:00Z', force: true, reason: 'missing' },
    {
      desc: 'forced beats expired',
      cert: info(NINETY),
      now: '2027-01-01T00:00:00Z',
      force: true,
      reason: 'forced',
    },
    {
      desc: 'expired beats names-changed',
      spec: { domains: ['other.test'] },
      cert: info(NINETY),
      now: '2027-01-01T00:00:00Z',
      reason: 'expired',
    },
    {
      desc: 'names-changed beats key-changed',
      spec: { domains: ['other.test'], keyType: 'rsa-2048' },
      cert: info(NINETY),
      now: '2026-09-02T00:00:00Z',
      reason: 'names-changed',
    },
    {
      desc: 'key-changed beats in-window',
      spec: { keyType: 'rsa-2048' },
      cert: info(NINETY),
      now: '2026-11-01T00:00:00Z',
      reason: 'key-changed',
    },
  ];

  it.each(rows)('$desc -> $reason', ({ spec: over, cert, now, force, reason }) => {
    const s = spec(over);
    const [d] = planRenewals([s], new Map([[s.name, cert]]), at(now), policy, { force });
    expect(d.name).toBe('site');
    expect(d.reason).toBe(reason);
    expect(d.renew).toBe(reason !== 'valid');
    expect(d.detail.length).toBeGreaterThan(0);
    if (cert) {
      expect(d.notAfter).toEqual(cert.notAfter);
      expect(d.renewAt).toEqual(renewalTime(cert, policy));
    } else {
      expect(d.renewAt).toBeUndefined();
    }
  });

  it('keeps spec order, treats an absent map entry as missing, and writes readable details', () => {
    const specs = [
      spec({ name: 'a' }),
      spec({ name: 'b' }),
      spec({ name: 'c', domains: ['example.test', 'new.example.test'] }),
      spec({ name: 'd', keyType: 'rsa-3072' }),
    ];
    const current = new Map<string, CertInfo | null>([
      ['a', info(NINETY)],
      ['c', info(NINETY)],
      ['d', info({ ...NINETY, keyType: 'rsa-2048' })],
    ]);
    const ds = planRenewals(specs, current, at('2026-11-01T12:00:00Z'), policy);
    expect(ds.map((d: Decision) => [d.name, d.reason])).toEqual([
      ['a', 'in-window'],
      ['b', 'missing'],
      ['c', 'names-changed'],
      ['d', 'key-changed'],
    ]);
    expect(ds[0].detail).toBe('expires 2026-11-30T00:00:00Z, renewal window opened 2026-10-31T00:00:00Z');
    expect(ds[1].detail).toBe('no certificate installed');
    expect(ds[2].detail).toBe('configured names differ: adds new.example.test; removes www.example.test');
    expect(ds[3].detail).toBe('certificate key is rsa-2048, configured rsa-3072');
    const [valid] = planRenewals(
      [spec()],
      new Map([['site', info(NINETY)]]),
      at('2026-09-02T00:00:00Z'),
      policy,
    );
    expect(valid.detail).toBe('expires 2026-11-30T00:00:00Z, renewal window opens 2026-10-31T00:00:00Z');
    const [expired] = planRenewals(
      [spec()],
      new Map([['site', info(NINETY)]]),
      at('2026-12-01T00:00:00Z'),
      policy,
    );
    expect(expired.detail).toBe('expired 2026-11-30T00:00:00Z');
  });

  it('does not mutate its inputs', () => {
    const s = spec({ domains: ['b.test', 'a.test'] });
    const cert = info({ ...NINETY, names: ['a.test', 'b.test'] });
    const frozen = Object.freeze({ ...cert, names: Object.freeze([...cert.names]) as string[] });
    planRenewals([Object.freeze(s)], new Map([[s.name, frozen]]), at('2026-09-02T00:00:00Z'), policy);
    expect(s.domains).toEqual(['b.test', 'a.test']);
  });
});
