import { CERTIFICATE_NAME_PATTERN, isCertificateName } from '../../src/core/names';

describe('certificate names', () => {
  test.each([
    ['www', true],
    ['www.example.com', true],
    ['a_b-c.1', true],
    ['0', true],
    ['a'.repeat(64), true],
    ['a'.repeat(65), false],
    ['', false],
    ['.hidden', false],
    ['..', false],
    ['-flag', false],
    ['_x', false],
    ['a/b', false],
    ['../etc', false],
    ['a b', false],
    ['WWW', false],
    ['www\n', false],
  ])('%j -> %s', (name, ok) => {
    expect(isCertificateName(name)).toBe(ok);
  });

  test('non-strings are not names', () => {
    expect(isCertificateName(undefined)).toBe(false);
    expect(isCertificateName(12)).toBe(false);
  });

  test('the pattern is anchored (no partial match lets a separator through)', () => {
    expect(CERTIFICATE_NAME_PATTERN.test('ok/../../etc')).toBe(false);
  });
});
