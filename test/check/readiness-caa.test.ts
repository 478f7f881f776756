import { parseDirectoryInfo } from '../../src/acme/ari';
import { findRelevantCaa, judgeCaa, type CaaProperty } from '../../src/inspect/caa';
import { canaryValue } from '../../src/inspect/readiness';
import { startBind, type BindServer } from '../helpers/bind';
import { DnsResolver } from '../../src/dns/resolver';

/** RFC 8659 decisions (pure), and the tree climb through a real BIND. */

const issue = (value: string, flags = 0): CaaProperty => ({ flags, tag: 'issue', value });
const issuewild = (value: string): CaaProperty => ({ flags: 0, tag: 'issuewild', value });
const at = (...properties: CaaProperty[]): { foundAt: string; properties: CaaProperty[] } => ({
  foundAt: 'example.test',
  properties,
});
const CA = ['letsencrypt.org'];

describe('judgeCaa', () => {
  test('no CAA anywhere: any CA may issue', () => {
    expect(judgeCaa('a.example.test', { properties: [] }, CA).allowed).toBe(true);
  });

  test('issue naming the CA allows it, with parameters and in any case', () => {
    expect(
      judgeCaa('a.example.test', at(issue('LetsEncrypt.org; validationmethods=dns-01')), CA),
    ).toMatchObject({
      allowed: true,
    });
  });

  test('issue naming only another CA refuses, and says which', () => {
    const v = judgeCaa('a.example.test', at(issue('otherca.test')), CA);
    expect(v).toMatchObject({ allowed: false });
    expect(v.reason).toBe(
      'CAA at example.test allows issue only by otherca.test, not this CA (letsencrypt.org)',
    );
  });

  test('issue ";" allows nobody', () => {
    expect(judgeCaa('a.example.test', at(issue(';')), CA).allowed).toBe(false);
  });

  test('issuewild governs wildcards when present; issue governs them otherwise', () => {
    const set = at(issue('letsencrypt.org'), issuewild(';'));
    expect(judgeCaa('*.example.test', set, CA).allowed).toBe(false);
    expect(judgeCaa('example.test', set, CA).allowed).toBe(true);
    expect(judgeCaa('*.example.test', at(issue('otherca.test')), CA).allowed).toBe(false);
    expect(judgeCaa('*.example.test', at(issue('letsencrypt.org')), CA).allowed).toBe(true);
  });

  test('only iodef: nothing restricts issuance', () => {
    expect(
      judgeCaa('a.example.test', at({ flags: 0, tag: 'iodef', value: 'mailto:x@example.test' }), CA).allowed,
    ).toBe(true);
  });

  test('an unknown property with the critical flag forbids issuance', () => {
    const v = judgeCaa(
      'a.example.test',
      at(issue('letsencrypt.org'), { flags: 128, tag: 'futuretag', value: 'x' }),
      CA,
    );
    expect(v.allowed).toBe(false);
    expect(v.reason).toMatch(/critical property "futuretag"/);
  });

  test('a CA without identities cannot be matched: allowed but undecided, with the reason', () => {
    const v = judgeCaa('a.example.test', at(issue('otherca.test')), undefined);
    expect(v).toMatchObject({ allowed: true, undecided: true });
    expect(v.reason).toMatch(/publishes no caaIdentities/);
  });
});

test('the directory caaIdentities are read, lower-cased; junk is ignored', () => {
  expect(parseDirectoryInfo({ meta: { caaIdentities: ['LetsEncrypt.org', 3, ''] } }).caaIdentities).toEqual([
    'letsencrypt.org',
  ]);
  expect(parseDirectoryInfo({ meta: {} }).caaIdentities).toBeUndefined();
});

test('canary values are distinct and recognisable', () => {
  const a = canaryValue();
  expect(a).toMatch(/^certpilot-readiness-[0-9a-f]{16}$/);
  expect(canaryValue()).not.toBe(a);
});

describe('findRelevantCaa through BIND', () => {
  let bind: BindServer;
  let resolver: DnsResolver;
  beforeAll(async () => {
    bind = await startBind({
      zones: [
        {
          name: 'example.test',
          records: ['@ 60 IN CAA 0 issue "apex-ca.test"', 'own 60 IN CAA 0 issuewild "own-ca.test"'],
        },
      ],
    });
    resolver = new DnsResolver({
      resolvers: [`127.0.0.1:${bind.port}`],
      nameserverPort: bind.port,
      queryTimeoutMs: 2_000,
    });
  }, 30_000);
  afterAll(async () => {
    await bind?.stop();
  });

  test('the closest name with CAA records decides: the name itself, else its nearest ancestor', async () => {
    const signal = AbortSignal.timeout(10_000);
    expect(await findRelevantCaa('own.example.test', resolver, signal)).toEqual({
      foundAt: 'own.example.test',
      properties: [{ flags: 0, tag: 'issuewild', value: 'own-ca.test' }],
    });
    expect(await findRelevantCaa('*.a.b.example.test', resolver, signal)).toEqual({
      foundAt: 'example.test',
      properties: [{ flags: 0, tag: 'issue', value: 'apex-ca.test' }],
    });
  });
});
