import { findTsig, signMessage, verifyMessage, type TsigKey } from '../../src/dns/tsig';
import { buildUpdateMessage, parseServer, formatServer } from '../../src/dns/wire';

/**
 * A query signed by BIND 9.18's dig (`dig -y hmac-sha256:vector-key.example:<secret>
 * +noedns +nocookie +norecurse www.example.test TXT`), captured off the wire. An independent
 * implementation's bytes: our signer must reproduce them exactly and our verifier accept them.
 */
const DIG_KEY: TsigKey = {
  name: 'vector-key.example',
  algorithm: 'hmac-sha256',
  secret: 'c2VjcmV0LWtleS1mb3ItdHNpZy10ZXN0LXZlY3Rvcg==',
};
const DIG_SIGNED = Buffer.from(
  '77d80020000100000000000103777777076578616d706c65047465737400001000010a766563746f722d6b6579076578616d706c650000fa00ff00000000003d0b686d61632d7368613235360000006b09dd7f012c00202fa4816e2d774cc96e5409eabc4209829a9e4c15cc811644ec6f3918d558a78477d800000000',
  'hex',
);
const DIG_TIME = 0x6b09dd7f;

describe('TSIG (RFC 8945)', () => {
  test('verifies a message signed by dig', () => {
    const v = verifyMessage(DIG_SIGNED, DIG_KEY, { now: DIG_TIME + 10 });
    expect(v.status).toBe('ok');
  });

  test('reproduces dig’s signature byte for byte', () => {
    const found = findTsig(DIG_SIGNED);
    expect(found).toBeDefined();
    const unsigned = Buffer.from(DIG_SIGNED.subarray(0, found?.offset));
    unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
    const { message } = signMessage(unsigned, DIG_KEY, { timeSigned: DIG_TIME, fudge: 300 });
    expect(message.toString('hex')).toBe(DIG_SIGNED.toString('hex'));
  });

  test.each(['hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const)(
    '%s: sign then verify',
    (algorithm) => {
      const key: TsigKey = { name: 'k.example', algorithm, secret: Buffer.alloc(32, 7).toString('base64') };
      const msg = buildUpdateMessage(0x1234, 'example.test', [
        { action: 'add', name: '_acme-challenge.example.test', value: 'abc', ttl: 60 },
      ]);
      const { message, mac } = signMessage(msg, key, { timeSigned: 1_800_000_000 });
      expect(verifyMessage(message, key, { now: 1_800_000_000 }).status).toBe('ok');
      // A response MAC covers the request MAC: verifying with the wrong request MAC fails.
      const response = signMessage(msg, key, { timeSigned: 1_800_000_000, requestMac: mac }).message;
      expect(verifyMessage(response, key, { now: 1_800_000_000, requestMac: mac }).status).toBe('ok');
      expect(
        verifyMessage(response, key, { now: 1_800_000_000, requestMac: Buffer.alloc(mac.length) }).status,
      ).toBe('failed');
    },
  );

  test.each([
    ['tampered message', (m: Buffer) => m.writeUInt8(m[3] ^ 1, 3), 'MAC does not verify'],
    ['other key name', undefined, 'signed with another key or algorithm'],
  ])('rejects: %s', (_label, mutate, reason) => {
    const key: TsigKey = {
      name: 'k.example',
      algorithm: 'hmac-sha256',
      secret: Buffer.alloc(32, 1).toString('base64'),
    };
    const msg = buildUpdateMessage(1, 'example.test', [
      { action: 'delete', name: 'a.example.test', value: 'x' },
    ]);
    const { message } = signMessage(msg, key, { timeSigned: 1_800_000_000 });
    if (mutate) mutate(message);
    const verifyKey = mutate ? key : { ...key, name: 'other.example' };
    const v = verifyMessage(message, verifyKey, { now: 1_800_000_000 });
    expect(v).toMatchObject({ status: 'failed', reason });
  });

  test('rejects a signature outside the fudge window', () => {
    const key: TsigKey = {
      name: 'k',
      algorithm: 'hmac-sha256',
      secret: Buffer.alloc(16, 2).toString('base64'),
    };
    const { message } = signMessage(buildUpdateMessage(1, 'example.test', []), key, {
      timeSigned: 1_800_000_000,
    });
    expect(verifyMessage(message, key, { now: 1_800_000_000 + 301 })).toMatchObject({ status: 'failed' });
    expect(verifyMessage(message, key, { now: 1_800_000_000 + 300 }).status).toBe('ok');
  });

  test('an unsigned message is reported as such', () => {
    expect(verifyMessage(buildUpdateMessage(1, 'example.test', []), DIG_KEY).status).toBe('unsigned');
  });

  test('a malformed secret is refused without echoing it', () => {
    const key: TsigKey = { name: 'k', algorithm: 'hmac-sha256', secret: 'not base64 !!' };
    expect(() => signMessage(buildUpdateMessage(1, 'example.test', []), key)).toThrow(
      'TSIG secret is not valid base64',
    );
  });
});

describe('server addresses', () => {
  test.each([
    ['192.0.2.1', { host: '192.0.2.1', port: 53 }, '192.0.2.1:53'],
    ['192.0.2.1:5353', { host: '192.0.2.1', port: 5353 }, '192.0.2.1:5353'],
    ['2001:db8::1', { host: '2001:db8::1', port: 53 }, '[2001:db8::1]:53'],
    ['[2001:db8::1]', { host: '2001:db8::1', port: 53 }, '[2001:db8::1]:53'],
    ['[::1]:8053', { host: '::1', port: 8053 }, '[::1]:8053'],
    ['ns1.example.test', { host: 'ns1.example.test', port: 53 }, 'ns1.example.test:53'],
    ['ns1.example.test:54', { host: 'ns1.example.test', port: 54 }, 'ns1.example.test:54'],
  ])('%j', (spec, server, formatted) => {
    expect(parseServer(spec)).toEqual(server);
    expect(formatServer(parseServer(spec))).toBe(formatted);
  });

  test.each(['', '1.2.3.4:0', '1.2.3.4:70000', '[::1]:x'])('%j is invalid', (spec) => {
    expect(() => parseServer(spec)).toThrow(/invalid/);
  });
});
