import { createHmac, timingSafeEqual } from 'node:crypto';
import { CLASS, TYPE, encodeName, encodeRecord, readName, recordPositions, skipName } from './message';

/**
 * TSIG (RFC 8945): HMAC over the message and the "TSIG variables", appended as the last
 * additional record. Written here rather than shelling out to nsupdate so the secret never
 * leaves this process (see docs/decisions.md). Only the full-length MAC is produced and
 * accepted; truncation (RFC 8945 section 5.2.2.1) is optional and BIND does not use it by default.
 */

/** TSIG algorithm names (RFC 8945 section 6) and the Node digest behind each. */
export const TSIG_DIGESTS = {
  'hmac-sha1': 'sha1',
  'hmac-sha224': 'sha224',
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
} as const;
export type TsigAlgorithm = keyof typeof TSIG_DIGESTS;

/** RFC 8945 section 5.2.3 recommends 300 seconds of allowed clock skew. */
export const TSIG_FUDGE_SECONDS = 300;

export interface TsigKey {
  /** Key name as configured on the server (a domain name, e.g. `certpilot` or `certpilot.key.`). */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  /** base64, as in BIND's `secret "..."` line. Never logged, never put in a message. */
  readonly secret: string;
}

export function isTsigAlgorithm(value: string): value is TsigAlgorithm {
  return Object.prototype.hasOwnProperty.call(TSIG_DIGESTS, value);
}

/** Decodes the base64 secret; throws without echoing it. */
export function decodeTsigSecret(secret: string): Buffer {
  const s = secret.trim();
  if (s === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 === 1) {
    throw new RangeError('TSIG secret is not valid base64');
  }
  return Buffer.from(s, 'base64');
}

export interface TsigRecord {
  readonly keyName: string;
  readonly algorithm: string;
  /** Seconds since the epoch. */
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Buffer;
  readonly originalId: number;
  /** Extended RCODE: 0, or BADSIG 16, BADKEY 17, BADTIME 18, BADTRUNC 22. */
  readonly error: number;
  readonly otherData: Buffer;
}

function writeUint48(value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(value / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE(value % 2 ** 32, 2);
  return b;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

/** RFC 8945 section 4.3.3: the TSIG variables that follow the message in the MAC input. */
function tsigVariables(
  keyName: string,
  algorithm: string,
  timeSigned: number,
  fudge: number,
  error: number,
  other: Buffer,
): Buffer {
  const classTtl = Buffer.alloc(6);
  classTtl.writeUInt16BE(CLASS.ANY, 0);
  classTtl.writeUInt32BE(0, 2);
  return Buffer.concat([
    encodeName(keyName),
    classTtl,
    encodeName(algorithm),
    writeUint48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function computeMac(
  key: TsigKey,
  secret: Buffer,
  message: Buffer,
  rec: Pick<TsigRecord, 'timeSigned' | 'fudge' | 'error' | 'otherData'>,
  requestMac?: Buffer,
): Buffer {
  const hmac = createHmac(TSIG_DIGESTS[key.algorithm], secret);
  // RFC 8945 section 4.3.1: a response's MAC also covers the request's MAC, prefixed by its length.
  if (requestMac) hmac.update(Buffer.concat([u16(requestMac.length), requestMac]));
  hmac.update(message);
  hmac.update(tsigVariables(key.name, key.algorithm, rec.timeSigned, rec.fudge, rec.error, rec.otherData));
  return hmac.digest();
}

export interface SignOptions {
  /** Seconds since the epoch; default now. Tests pass a fixed time. */
  readonly timeSigned?: number;
  readonly fudge?: number;
  /** For signing a response: the MAC of the request it answers. */
  readonly requestMac?: Buffer;
}

/** Appends a TSIG record to a complete unsigned message; returns the signed message and its MAC. */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  opts: SignOptions = {},
): { message: Buffer; mac: Buffer } {
  const secret = decodeTsigSecret(key.secret);
  const rec = {
    timeSigned: opts.timeSigned ?? Math.floor(Date.now() / 1000),
    fudge: opts.fudge ?? TSIG_FUDGE_SECONDS,
    error: 0,
    otherData: Buffer.alloc(0),
  };
  const mac = computeMac(key, secret, message, rec, opts.requestMac);
  const rdata = Buffer.concat([
    encodeName(key.algorithm),
    writeUint48(rec.timeSigned),
    u16(rec.fudge),
    u16(mac.length),
    mac,
    u16(message.readUInt16BE(0)),
    u16(rec.error),
    u16(0),
  ]);
  const signed = Buffer.concat([message, encodeRecord(key.name, TYPE.TSIG, CLASS.ANY, 0, rdata)]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: signed, mac };
}

/** The TSIG record of a message (it must be the last additional, RFC 8945 section 5.1) and its offset. */
export function findTsig(message: Buffer): { record: TsigRecord; offset: number } | undefined {
  const { answers, authorities, additionals } = recordPositions(message);
  // One TSIG, and only as the very last record (RFC 8945 section 5.1): a second one (or one
  // elsewhere) is a message we cannot say is signed, so it is malformed, never "unsigned".
  const tsigs = [...answers, ...authorities, ...additionals].filter((r) => r.type === TYPE.TSIG);
  const last = additionals[additionals.length - 1];
  if (tsigs.length > 1) throw new RangeError(`dns: ${tsigs.length} TSIG records in one message`);
  if (tsigs.length === 1 && tsigs[0] !== last)
    throw new RangeError('dns: TSIG record is not the last record');
  if (!last || last.type !== TYPE.TSIG) return undefined;
  let off = last.rdata;
  const algorithm = readName(message, off);
  off = skipName(message, off);
  const timeSigned = message.readUInt16BE(off) * 2 ** 32 + message.readUInt32BE(off + 2);
  const fudge = message.readUInt16BE(off + 6);
  const macSize = message.readUInt16BE(off + 8);
  off += 10;
  const mac = Buffer.from(message.subarray(off, off + macSize));
  off += macSize;
  const originalId = message.readUInt16BE(off);
  const error = message.readUInt16BE(off + 2);
  const otherLen = message.readUInt16BE(off + 4);
  const otherData = Buffer.from(message.subarray(off + 6, off + 6 + otherLen));
  if (off + 6 + otherLen !== last.end) throw new RangeError('dns: malformed TSIG record');
  return {
    record: {
      keyName: readName(message, last.start),
      algorithm,
      timeSigned,
      fudge,
      mac,
      originalId,
      error,
      otherData,
    },
    offset: last.start,
  };
}

export type TsigVerification =
  | { readonly status: 'unsigned' }
  | { readonly status: 'ok'; readonly record: TsigRecord }
  /** The peer reported a TSIG error (`record.error`), or the MAC, key or time did not check out. */
  | { readonly status: 'failed'; readonly reason: string; readonly record: TsigRecord };

export interface VerifyOptions {
  readonly requestMac?: Buffer;
  /** Seconds since the epoch; default now. */
  readonly now?: number;
}

/** Checks the TSIG of a received message against `key` (RFC 8945 section 5.3 / 5.4). */
export function verifyMessage(message: Buffer, key: TsigKey, opts: VerifyOptions = {}): TsigVerification {
  const found = findTsig(message);
  if (!found) return { status: 'unsigned' };
  const { record, offset } = found;
  if (record.keyName !== encodeNameText(key.name) || record.algorithm !== key.algorithm) {
    return { status: 'failed', reason: 'signed with another key or algorithm', record };
  }
  if (record.error !== 0) return { status: 'failed', reason: `peer reported TSIG error`, record };
  // The MAC covers the message as it was before the TSIG record was added: original ID,
  // ARCOUNT without the TSIG record (RFC 8945 section 4.3.2).
  const stripped = Buffer.from(message.subarray(0, offset));
  stripped.writeUInt16BE(record.originalId, 0);
  stripped.writeUInt16BE(stripped.readUInt16BE(10) - 1, 10);
  const expected = computeMac(key, decodeTsigSecret(key.secret), stripped, record, opts.requestMac);
  if (record.mac.length !== expected.length || !timingSafeEqual(record.mac, expected)) {
    return { status: 'failed', reason: 'MAC does not verify', record };
  }
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - record.timeSigned) > record.fudge) {
    return { status: 'failed', reason: 'time signed is outside the allowed clock skew', record };
  }
  return { status: 'ok', record };
}

function encodeNameText(name: string): string {
  return name.trim().replace(/\.$/, '').toLowerCase();
}
