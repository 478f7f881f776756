import { DerError, childrenOf, decodeOid, decodeTime, readDer, TAG } from '../../src/x509/der';

const time = (tag: number, text: string): Buffer =>
  Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')]);

describe('der', () => {
  it.each([
    { desc: 'UTCTime 20xx', der: time(TAG.UTC_TIME, '261130235959Z'), iso: '2026-11-30T23:59:59.000Z' },
    {
      desc: 'UTCTime 19xx (YY >= 50)',
      der: time(TAG.UTC_TIME, '500101000000Z'),
      iso: '1950-01-01T00:00:00.000Z',
    },
    {
      desc: 'GeneralizedTime',
      der: time(TAG.GENERALIZED_TIME, '20500101000000Z'),
      iso: '2050-01-01T00:00:00.000Z',
    },
    {
      desc: 'GeneralizedTime with fraction',
      der: time(TAG.GENERALIZED_TIME, '20260101000000.5Z'),
      iso: '2026-01-01T00:00:00.500Z',
    },
  ])('decodeTime: $desc', ({ der, iso }) => {
    expect(decodeTime(readDer(der)).toISOString()).toBe(iso);
  });

  it.each([
    { desc: 'no Z', der: time(TAG.UTC_TIME, '2611302359590') },
    { desc: 'February 31st', der: time(TAG.UTC_TIME, '260231000000Z') },
    { desc: 'hour 24', der: time(TAG.GENERALIZED_TIME, '20260101240000Z') },
    { desc: 'not a time', der: Buffer.from([TAG.INTEGER, 1, 1]) },
  ])('decodeTime rejects $desc', ({ der }) => {
    expect(() => decodeTime(readDer(der))).toThrow(DerError);
  });

  it('reads long lengths and children, and rejects truncated or indefinite encodings', () => {
    const content = Buffer.alloc(300, 0);
    const long = Buffer.concat([Buffer.from([TAG.OCTET_STRING, 0x82, 0x01, 0x2c]), content]);
    expect(readDer(long).content.length).toBe(300);
    const seq = Buffer.from([0x30, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0xff]);
    expect(childrenOf(readDer(seq)).map((c) => c.tag)).toEqual([TAG.INTEGER, TAG.BOOLEAN]);
    expect(() => readDer(long.subarray(0, 100))).toThrow(DerError);
    expect(() => readDer(Buffer.from([0x30, 0x80, 0x00, 0x00]))).toThrow(DerError);
    expect(() => readDer(Buffer.from([0x1f, 0x01, 0x00]))).toThrow(DerError);
  });

  it('decodes OIDs', () => {
    expect(decodeOid(Buffer.from([0x55, 0x1d, 0x11]))).toBe('2.5.29.17');
    expect(decodeOid(Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]))).toBe(
      '1.2.840.113549.1.1.11',
    );
  });
});
