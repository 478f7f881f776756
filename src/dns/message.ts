/**
 * Low-level DNS message pieces (RFC 1035 section 4) that dns-packet cannot express: class NONE
 * for RFC 2136 deletes, TSIG RDATA, and byte offsets of records (TSIG signs and verifies the
 * exact bytes before the TSIG record). dns-packet still decodes every response we read.
 */

export const HEADER_BYTES = 12;
export const OPCODE_QUERY = 0;
/** RFC 2136 section 1. */
export const OPCODE_UPDATE = 5;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  TSIG: 250,
  CAA: 257,
} as const;
/** RFC 2136 section 2.5 uses NONE (delete a value) and ANY (delete an RRset). */
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  19: 'BADMODE',
  20: 'BADNAME',
  21: 'BADALG',
  22: 'BADTRUNC',
  23: 'BADCOOKIE',
};

/** Name of an RCODE or TSIG error (RFC 8945 section 3, IANA DNS RCODEs registry). */
export function rcodeName(code: number): string {
  return RCODE_NAMES[code] ?? `RCODE_${code}`;
}

/**
 * Uncompressed wire form of `name` (RFC 1035 section 3.1), lower-cased: TSIG's MAC input wants
 * the canonical form (RFC 8945 section 4.3.3), and we never need compression for the few names
 * we write.
 */
export function encodeName(name: string): Buffer {
  const n = name.trim().replace(/\.$/, '').toLowerCase();
  const parts: Buffer[] = [];
  let total = 1;
  if (n !== '') {
    for (const label of n.split('.')) {
      const bytes = Buffer.from(label, 'utf8');
      if (bytes.length === 0 || bytes.length > 63)
        throw new RangeError(`dns: invalid label in name "${name}"`);
      parts.push(Buffer.from([bytes.length]), bytes);
      total += bytes.length + 1;
    }
  }
  if (total > 255) throw new RangeError(`dns: name too long: "${name}"`);
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Offset just past the (possibly compressed) name starting at `offset`. */
export function skipName(buf: Buffer, offset: number): number {
  let off = offset;
  for (;;) {
    if (off >= buf.length) throw new RangeError('dns: truncated name');
    const len = buf[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    if ((len & 0xc0) !== 0) throw new RangeError('dns: bad label type');
    off += len + 1;
  }
}

/** Reads a (possibly compressed) name as lower-case text without trailing dot. */
export function readName(buf: Buffer, offset: number): string {
  const labels: string[] = [];
  let off = offset;
  for (let hops = 0; hops < 128; hops++) {
    if (off >= buf.length) throw new RangeError('dns: truncated name');
    const len = buf[off];
    if (len === 0) return labels.join('.').toLowerCase();
    if ((len & 0xc0) === 0xc0) {
      off = ((len & 0x3f) << 8) | buf[off + 1];
      continue;
    }
    labels.push(buf.toString('utf8', off + 1, off + 1 + len));
    off += len + 1;
  }
  throw new RangeError('dns: name compression loop');
}

export interface RecordPosition {
  /** Offset of the owner name. */
  readonly start: number;
  readonly type: number;
  readonly klass: number;
  /** Offset of RDATA. */
  readonly rdata: number;
  readonly rdlength: number;
  /** Offset just past the record. */
  readonly end: number;
}

/** Positions of every record of the answer, authority and additional sections, in order. */
export function recordPositions(buf: Buffer): {
  answers: RecordPosition[];
  authorities: RecordPosition[];
  additionals: RecordPosition[];
} {
  if (buf.length < HEADER_BYTES) throw new RangeError('dns: message shorter than a header');
  let off = HEADER_BYTES;
  const qd = buf.readUInt16BE(4);
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const read = (count: number): RecordPosition[] => {
    const out: RecordPosition[] = [];
    for (let i = 0; i < count; i++) {
      const start = off;
      const fixed = skipName(buf, off);
      if (fixed + 10 > buf.length) throw new RangeError('dns: truncated record');
      const rdlength = buf.readUInt16BE(fixed + 8);
      const end = fixed + 10 + rdlength;
      if (end > buf.length) throw new RangeError('dns: truncated record data');
      out.push({
        start,
        type: buf.readUInt16BE(fixed),
        klass: buf.readUInt16BE(fixed + 2),
        rdata: fixed + 10,
        rdlength,
        end,
      });
      off = end;
    }
    return out;
  };
  const answers = read(buf.readUInt16BE(6));
  const authorities = read(buf.readUInt16BE(8));
  const additionals = read(buf.readUInt16BE(10));
  return { answers, authorities, additionals };
}

/** One resource record in wire form (RFC 1035 section 4.1.3). */
export function encodeRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(name), fixed, rdata]);
}

/**
 * TXT RDATA for one value: character-strings of at most 255 bytes (RFC 1035 section 3.3.14).
 * Longer values are split; resolvers and ACME servers join the strings back together.
 */
export function encodeTxtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
    if (bytes.length === 0) break;
  }
  return Buffer.concat(parts);
}

/** A 12-byte header. */
export function encodeHeader(h: {
  id: number;
  flags: number;
  qd: number;
  an: number;
  ns: number;
  ar: number;
}): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt16BE(h.id, 0);
  b.writeUInt16BE(h.flags, 2);
  b.writeUInt16BE(h.qd, 4);
  b.writeUInt16BE(h.an, 6);
  b.writeUInt16BE(h.ns, 8);
  b.writeUInt16BE(h.ar, 10);
  return b;
}
