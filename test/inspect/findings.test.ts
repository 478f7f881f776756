import {
  DEFAULT_THRESHOLDS,
  assessCertificate,
  compareNames,
  nameCovers,
  normalizeName,
  statusOf,
  type AssessContext,
  type AssessedStatus,
  type FindingCode,
  type Thresholds,
} from '../../src/inspect/findings';
import { parseCertificate } from '../../src/x509';
import { makeCertificate } from '../helpers/certs';
import { DAY_MS, NAMES, makePki, type Pki } from './fixtures';

const NOW = new Date('2026-11-15T12:00:00Z');
const DAYS_ONLY: Thresholds = { warningDays: 21, criticalDays: 7 };

let pki: Pki;
beforeAll(() => {
  pki = makePki(NOW);
});

describe('assessCertificate', () => {
  interface Row {
    name: string;
    cert: (p: Pki) => { certPem: string; keyPem: string };
    ctx?: (p: Pki) => Partial<AssessContext>;
    status: AssessedStatus;
    codes: FindingCode[];
  }
  const full = (p: Pki): Partial<AssessContext> => ({ chainPems: [p.intermediate.certPem, p.root.certPem] });
  const rows: Row[] = [
    {
      name: '60 days left, full chain, matching key',
      cert: (p) => p.valid,
      ctx: (p) => ({ ...full(p), keyPem: p.valid.keyPem }),
      status: 'ok',
      codes: [],
    },
    { name: '15 days left', cert: (p) => p.fifteenDays, status: 'warning', codes: ['warning'] },
    { name: '2 days left', cert: (p) => p.twoDays, status: 'critical', codes: ['critical'] },
    { name: 'expired', cert: (p) => p.expired, status: 'critical', codes: ['expired'] },
    { name: 'not yet valid', cert: (p) => p.notYetValid, status: 'critical', codes: ['not-yet-valid'] },
    { name: 'wrong SAN', cert: (p) => p.wrongSan, status: 'warning', codes: ['names-differ'] },
    {
      name: 'self-signed (no chain needed)',
      cert: (p) => p.selfSigned,
      ctx: () => ({ chainPems: [] }),
      status: 'warning',
      codes: ['self-signed'],
    },
    {
      name: 'incomplete chain: leaf only',
      cert: (p) => p.valid,
      ctx: () => ({ chainPems: [] }),
      status: 'warning',
      codes: ['chain-missing'],
    },
    {
      name: 'incomplete chain: root without intermediate',
      cert: (p) => p.valid,
      ctx: (p) => ({ chainPems: [p.root.certPem] }),
      status: 'warning',
      codes: ['chain-missing'],
    },
    {
      name: 'chain in wrong order',
      cert: (p) => p.valid,
      ctx: (p) => ({ chainPems: [p.root.certPem, p.intermediate.certPem] }),
      status: 'warning',
      codes: ['chain-order'],
    },
    {
      name: 'chain without the root is complete',
      cert: (p) => p.valid,
      ctx: (p) => ({ chainPems: [p.intermediate.certPem] }),
      status: 'ok',
      codes: [],
    },
    {
      name: 'key mismatch',
      cert: (p) => p.valid,
      ctx: (p) => ({ keyPem: p.twoDays.keyPem }),
      status: 'critical',
      codes: ['key-mismatch'],
    },
    {
      name: 'unreadable key',
      cert: (p) => p.valid,
      ctx: () => ({ keyPem: 'not a key' }),
      status: 'critical',
      codes: ['key-mismatch'],
    },
  ];

  it.each(rows)('$name', ({ cert, ctx, status, codes }) => {
    const info = parseCertificate(cert(pki).certPem);
    const result = assessCertificate(info, {
      now: NOW,
      thresholds: DAYS_ONLY,
      expectedNames: NAMES,
      ...ctx?.(pki),
    });
    expect(result.findings.map((f) => f.code)).toEqual(codes);
    expect(result.status).toBe(status);
  });

  it('reports days and lifetime left', () => {
    const r = assessCertificate(parseCertificate(pki.valid.certPem), { now: NOW, thresholds: DAYS_ONLY });
    expect(r.daysLeft).toBeCloseTo(60, 5);
    expect(r.lifetimeLeftRatio).toBeCloseTo(60 / 90, 5);
    const e = assessCertificate(parseCertificate(pki.expired.certPem), { now: NOW, thresholds: DAYS_ONLY });
    expect(e.daysLeft).toBeCloseTo(-10, 5);
    expect(e.lifetimeLeftRatio).toBe(0);
  });

  it('expires exactly at notAfter (the boundary is expired, not "0 days left")', () => {
    const info = parseCertificate(pki.valid.certPem);
    const r = assessCertificate(info, { now: info.notAfter, thresholds: DAYS_ONLY });
    expect(r.findings.map((f) => f.code)).toEqual(['expired']);
  });

  it('never puts the private key in a finding', () => {
    const r = assessCertificate(parseCertificate(pki.valid.certPem), {
      now: NOW,
      thresholds: DAYS_ONLY,
      keyPem: pki.twoDays.keyPem,
    });
    expect(JSON.stringify(r)).not.toContain('PRIVATE KEY');
  });

  describe('ratio thresholds for short-lived certificates', () => {
    const sixDay = (daysLeft: number): ReturnType<typeof parseCertificate> =>
      parseCertificate(
        makeCertificate({
          names: ['short.test'],
          notBefore: new Date(NOW.getTime() - (6 - daysLeft) * DAY_MS),
          notAfter: new Date(NOW.getTime() + daysLeft * DAY_MS),
          issuer: pki.intermediate,
        }).certPem,
      );

    it.each([
      { daysLeft: 3, thresholds: DEFAULT_THRESHOLDS, status: 'ok' },
      { daysLeft: 1, thresholds: DEFAULT_THRESHOLDS, status: 'warning' },
      { daysLeft: 0.5, thresholds: DEFAULT_THRESHOLDS, status: 'critical' },
      // Without ratios a 6-day certificate is always below the 7-day critical threshold.
      { daysLeft: 3, thresholds: DAYS_ONLY, status: 'critical' },
    ])('6-day certificate with $daysLeft days left → $status', ({ daysLeft, thresholds, status }) => {
      expect(assessCertificate(sixDay(daysLeft), { now: NOW, thresholds }).status).toBe(status);
    });

    it('leaves 90-day certificates to the day thresholds (21/7)', () => {
      const info = parseCertificate(pki.fifteenDays.certPem);
      expect(assessCertificate(info, { now: NOW, thresholds: DEFAULT_THRESHOLDS }).status).toBe('warning');
      const two = parseCertificate(pki.twoDays.certPem);
      expect(assessCertificate(two, { now: NOW, thresholds: DEFAULT_THRESHOLDS }).status).toBe('critical');
    });
  });

  it('reports names only in the certificate as info (status stays ok)', () => {
    const r = assessCertificate(parseCertificate(pki.valid.certPem), {
      now: NOW,
      thresholds: DAYS_ONLY,
      expectedNames: ['example.test'],
    });
    expect(r.findings).toEqual([expect.objectContaining({ code: 'names-differ', severity: 'info' })]);
    expect(r.status).toBe('ok');
  });
});

describe('names', () => {
  it.each([
    ['*.example.test', 'a.example.test', true],
    ['*.example.test', 'example.test', false],
    ['*.example.test', 'a.b.example.test', false],
    ['*.example.test', '*.example.test', true],
    ['a.example.test', '*.example.test', false],
    ['Example.TEST.', 'example.test', true],
    ['xn--bcher-kva.test', 'bücher.test', true],
  ])('%s covers %s: %s', (certName, name, expected) => {
    expect(nameCovers(certName, name)).toBe(expected);
  });

  it('compares as sets: order, case, trailing dots and duplicates do not matter', () => {
    expect(compareNames(['B.test.', 'a.test', 'a.test'], ['a.test', 'b.test'])).toEqual({
      missing: [],
      extra: [],
    });
  });

  it('counts a covering wildcard as covering but still as an extra name', () => {
    expect(compareNames(['www.example.test'], ['*.example.test'])).toEqual({
      missing: [],
      extra: ['*.example.test'],
    });
    expect(compareNames(['*.example.test', 'example.test'], ['*.example.test'])).toEqual({
      missing: ['example.test'],
      extra: [],
    });
  });

  it('normalises to A-labels', () => {
    expect(normalizeName('*.Bücher.test.')).toBe('*.xn--bcher-kva.test');
  });
});

describe('statusOf', () => {
  it('is the worst severity, info counting as ok', () => {
    expect(statusOf([])).toBe('ok');
    expect(statusOf([{ code: 'names-differ', severity: 'info', message: '' }])).toBe('ok');
    expect(
      statusOf([
        { code: 'warning', severity: 'warning', message: '' },
        { code: 'key-mismatch', severity: 'critical', message: '' },
      ]),
    ).toBe('critical');
  });
});
