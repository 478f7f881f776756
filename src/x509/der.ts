/**
 * A minimal DER reader, just enough to walk an X.509 certificate.
 *
 * Why not only `crypto.X509Certificate`: on Node 20 it exposes no Authority Key Identifier,
 * no DER serial bytes (ARI, RFC 9773 §4.1, needs both), no `validToDate`, and SANs only as a
 * display string that must be split and unquoted. Reading those few fields from the DER
 * directly is exact and avoids guessing at a display format.
 *
 * Only definite-length, low-tag-number encodings are accepted: that is all DER (X.690 §10.1)
 * and RFC 5280 produce. Anything else is rejected rather than half-understood.
 */

export interface DerNode {
  /** The identifier octet (class, constructed bit and tag number together), e.g. 0x30 = SEQUENCE. */
  readonly tag: number;
  /** The content octets. */
  readonly content: Buffer;
  /** Identifier, length and content octets: the element exactly as encoded. */
  readonly raw: Buffer;
  /** raw.length, without making the view. */
  readonly size: number;
}

/**
 * An element as offsets into the buffer it was read from; its views are made when first asked
 * for. A walk reads the tag and size of every element but the content of few: a certificate
 * has about a hundred elements, and two Buffer views each made a no-op renew over 1,000
 * certificates allocate some 20 MB for the garbage collector to sweep.
 */
export class DerElement implements DerNode {
  private contentView: Buffer | undefined;
  constructor(
    readonly tag: number,
    private readonly buf: Buffer,
    private readonly start: number,
    private readonly body: number,
    private readonly end: number,
  ) {}
  get content(): Buffer {
    return (this.contentView ??= this.buf.subarray(this.body, this.end));
  }
  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }
  get size(): number {
    return this.end - this.start;
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Reads one element starting at `offset`; `end` bounds it (defaults to the buffer's end). */
export function readDer(buf: Buffer, offset = 0, end = buf.length): DerNode {
  if (offset + 2 > end) throw new DerError('truncated element');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in X.509');
  let pos = offset + 1;
  let length = buf[pos++];
  if (length & 0x80) {
    const count = length & 0x7f;
    // 0x80 is the BER indefinite form, never valid in DER; > 4 octets would be a > 4 GiB element.
    if (count === 0 || count > 4) throw new DerError('unsupported length encoding');
    if (pos + count > end) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++];
  }
  if (pos + length > end) throw new DerError('truncated content');
  return new DerElement(tag, buf, offset, pos, pos + length);
}

/** The elements inside a constructed element (SEQUENCE, SET, [n] EXPLICIT). */
export function childrenOf(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let offset = 0;
  const content = node.content;
  while (offset < content.length) {
    const child = readDer(content, offset);
    out.push(child);
    offset += child.size;
  }
  return out;
}

/** Dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19). */
export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d+)?Z$/;

/**
 * Decodes UTCTime / GeneralizedTime as RFC 5280 §4.1.2.5 requires them (seconds present, "Z").
 * UTCTime years 50-99 mean 19xx, 00-49 mean 20xx (§4.1.2.5.1).
 */
export function decodeTime(node: DerNode): Date {
  const text = node.content.toString('latin1');
  let year: number;
  let rest: string[];
  let fraction = '';
  if (node.tag === TAG.UTC_TIME) {
    const m = UTC_TIME.exec(text);
    if (!m) throw new DerError(`bad UTCTime "${text}"`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = m.slice(2, 7);
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    const m = GENERALIZED_TIME.exec(text);
    if (!m) throw new DerError(`bad GeneralizedTime "${text}"`);
    year = Number(m[1]);
    rest = m.slice(2, 7);
    fraction = m[7] ?? '';
  } else {
    throw new DerError(`expected a time, found tag 0x${node.tag.toString(16)}`);
  }
  const [month, day, hour, minute, second] = rest.map(Number);
  const ms = fraction ? Math.round(Number(`0${fraction}`) * 1000) : 0;
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const d = new Date(t);
  // Date.UTC silently rolls 2026-02-31 over into March; a certificate saying that is corrupt.
  if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new DerError(`invalid date "${text}"`);
  }
  return d;
}
