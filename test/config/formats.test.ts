import {
  parseCertificateDomain,
  parseDuration,
  parseKeyType,
  parseMode,
  parseResolver,
} from '../../src/config/formats';

describe('parseDuration', () => {
  test.each([
    [1500, 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
  ])('%p -> %p ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  test.each([['30'], ['30 s'], ['-5s'], [0], [1.5], ['30d'], [true], ['25d']])('%p is refused', (input) => {
    expect(() => parseDuration(input)).toThrow();
  });
});

describe('parseResolver', () => {
  test.each(['192.0.2.1', '192.0.2.1:53', '[2001:db8::1]:5353', '2001:db8::1', '[::1]'])(
    '%s is accepted',
    (r) => {
      expect(parseResolver(r)).toBe(r);
    },
  );
  test.each(['dns.google', '192.0.2.1:0', '192.0.2.1:70000', '[192.0.2.1]:53', '300.1.1.1', ''])(
    '%p is refused',
    (r) => {
      expect(() => parseResolver(r)).toThrow();
    },
  );
});

describe('parseMode', () => {
  test.each([
    ['0644', 0o644],
    ['644', 0o644],
    ['0o600', 0o600],
    ['0400', 0o400],
    [420, 0o644],
    [0, 0],
  ])('%p -> %s', (input, mode) => expect(parseMode(input)).toBe(mode));
  test.each([['0888'], ['rw-r--r--'], ['4755'], [644], [-1], [true]])('%p is refused', (input) => {
    expect(() => parseMode(input)).toThrow();
  });
});

describe('parseCertificateDomain', () => {
  test.each([
    ['Example.COM.', 'example.com'],
    ['*.example.com', '*.example.com'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    [`${'a'.repeat(63)}.example.com`, `${'a'.repeat(63)}.example.com`],
  ])('%s -> %s', (input, name) => expect(parseCertificateDomain(input)).toBe(name));

  test.each([
    ['-a.example.com'],
    ['a-.example.com'],
    ['example.123'],
    [`${'a.'.repeat(127)}com`],
    ['*example.com'],
    ['[::1]'],
    ['.example.com'],
  ])('%s is refused', (input) => expect(() => parseCertificateDomain(input)).toThrow());
});

describe('parseKeyType', () => {
  test('explains why a key type is refused', () => {
    expect(() => parseKeyType('ed25519')).toThrow(
      "ed25519 is not supported: Let's Encrypt accepts only RSA 2048/3072/4096 and ECDSA P-256/P-384",
    );
    expect(() => parseKeyType('rsa-8192')).toThrow(/not supported/);
    expect(() => parseKeyType('dsa')).toThrow(/use one of ec-p256/);
    expect(parseKeyType('RSA-4096')).toBe('rsa-4096');
  });
});
