import {
  challengeName,
  isSubdomain,
  normalizeName,
  parentName,
  toFqdn,
  toRelative,
} from '../../src/dns/names';

describe('normalizeName', () => {
  test.each([
    ['Example.TEST.', 'example.test'],
    [' www.example.test ', 'www.example.test'],
    ['.', ''],
    ['', ''],
  ])('%j -> %j', (input, expected) => expect(normalizeName(input)).toBe(expected));
});

describe('isSubdomain', () => {
  test.each([
    ['example.test', 'example.test', true],
    ['www.example.test', 'example.test', true],
    ['WWW.Example.Test.', 'example.test.', true],
    ['a.b.sub.example.test', 'sub.example.test', true],
    ['badexample.test', 'example.test', false],
    ['example.test', 'www.example.test', false],
    ['anything.test', '', true],
  ])('%j under %j is %j', (name, ancestor, expected) => expect(isSubdomain(name, ancestor)).toBe(expected));
});

describe('zone-relative names', () => {
  test.each([
    ['_acme-challenge.www.example.test', 'example.test', '_acme-challenge.www'],
    ['_acme-challenge.example.test', 'example.test', '_acme-challenge'],
    ['example.test', 'example.test', '@'],
    ['Example.Test.', 'example.test', '@'],
    ['_ACME-challenge.WWW.example.test.', 'EXAMPLE.test.', '_acme-challenge.www'],
    ['_acme-challenge.x.sub.example.test', 'sub.example.test', '_acme-challenge.x'],
    ['www.example.test', '', 'www.example.test'],
  ])('toRelative(%j, %j) = %j', (fqdn, zone, relative) => expect(toRelative(fqdn, zone)).toBe(relative));

  test.each([
    ['www.other.test', 'example.test'],
    ['badexample.test', 'example.test'],
    ['example.test', 'sub.example.test'],
  ])('toRelative(%j, %j) throws: the name is not in the zone', (fqdn, zone) => {
    expect(() => toRelative(fqdn, zone)).toThrow(/is not in zone/);
  });

  test.each([
    ['_acme-challenge.www', 'example.test', '_acme-challenge.www.example.test'],
    ['@', 'example.test', 'example.test'],
    ['', 'example.test.', 'example.test'],
    ['_ACME-Challenge', 'Example.Test', '_acme-challenge.example.test'],
    ['www.example.test.', 'example.test', 'www.example.test'],
    ['www', '', 'www'],
  ])('toFqdn(%j, %j) = %j', (relative, zone, fqdn) => expect(toFqdn(relative, zone)).toBe(fqdn));

  test('toFqdn rejects an absolute name outside the zone', () => {
    expect(() => toFqdn('www.other.test.', 'example.test')).toThrow(/is not in zone/);
  });

  test.each([
    ['_acme-challenge.www', 'example.test'],
    ['@', 'example.test'],
    ['_acme-challenge.a.b', 'sub.example.test'],
  ])('round trip %j in %j', (relative, zone) =>
    expect(toRelative(toFqdn(relative, zone), zone)).toBe(relative),
  );
});

describe('challengeName', () => {
  test.each([
    ['example.test', '_acme-challenge.example.test'],
    ['*.example.test', '_acme-challenge.example.test'],
    ['WWW.Example.Test.', '_acme-challenge.www.example.test'],
    ['*.sub.example.test', '_acme-challenge.sub.example.test'],
  ])('%j -> %j', (domain, expected) => expect(challengeName(domain)).toBe(expected));
});

describe('parentName', () => {
  test.each([
    ['www.example.test', 'example.test'],
    ['test', ''],
    ['', ''],
  ])('%j -> %j', (name, expected) => expect(parentName(name)).toBe(expected));
});
