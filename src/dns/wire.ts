import net from 'node:net';
import * as packet from 'dns-packet';
import { CertpilotError, abortError } from '../core/errors';
import {
  CLASS,
  HEADER_BYTES,
  OPCODE_QUERY,
  OPCODE_UPDATE,
  TYPE,
  encodeHeader,
  encodeName,
  encodeRecord,
  encodeTxtRdata,
  rcodeName,
  readName,
  skipName,
} from './message';
import { normalizeName } from './names';
import { NOTHING_WRITTEN } from './provider';
import { type Protocol, TransportFailure, exchange } from './transport';
import { type TsigKey, signMessage, verifyMessage } from './tsig';

/**
 * A small DNS client spoken straight from Node (see docs/decisions.md, "Speak DNS from Node"):
 * plain queries with a chosen RD bit and no cache (propagation checks ask each authoritative
 * server directly) and TSIG-signed RFC 2136 updates. Every call takes an AbortSignal and a
 * timeout. Nothing here logs; errors carry the server and RCODE and never the TSIG secret.
 */

export type QueryType = 'A' | 'AAAA' | 'NS' | 'SOA' | 'TXT' | 'CNAME' | 'CAA';
export type { Protocol } from './transport';
export { UDP_RETRANSMIT_MS } from './transport';

export interface DnsServer {
  /** IPv4 or IPv6 literal (no brackets), or a host name where the caller resolves it first. */
  readonly host: string;
  readonly port: number;
}

export const DNS_PORT = 53;
/**
 * EDNS(0) UDP payload size we advertise: 1232 avoids IP fragmentation on any path (DNS Flag
 * Day 2020); larger answers come back truncated and are re-asked over TCP.
 */
export const EDNS_UDP_PAYLOAD = 1232;

/** Parses "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal. */
export function parseServer(spec: string, defaultPort = DNS_PORT): DnsServer {
  const s = spec.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) return { host: bracketed[1], port: parsePort(bracketed[2], defaultPort, spec) };
  if (net.isIPv6(s)) return { host: s, port: defaultPort };
  const hostPort = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!hostPort || hostPort[1] === '') throw new RangeError(`dns: invalid server address "${spec}"`);
  return { host: hostPort[1], port: parsePort(hostPort[2], defaultPort, spec) };
}

function parsePort(text: string | undefined, fallback: number, spec: string): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new RangeError(`dns: invalid port in "${spec}"`);
  return port;
}

/** "127.0.0.1:53", "[::1]:53": the form used in messages and logs. */
export function formatServer(server: DnsServer): string {
  return net.isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly minimum: number;
}

export interface DnsRecord {
  /** Owner name, lower-case, no trailing dot. */
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /**
   * A/AAAA: the address; NS/CNAME: the target (normalised); TXT: the character-strings joined
   * (how ACME servers read a value); SOA: the primary server name; others: ''.
   */
  readonly data: string;
  /** TXT only: the character-strings as sent. */
  readonly txt?: readonly string[];
  readonly soa?: SoaData;
  /** CAA only (RFC 8659 section 4.1): flags, property tag (lower-case) and value. */
  readonly caa?: { readonly flags: number; readonly tag: string; readonly value: string };
}

export interface DnsResponse {
  readonly server: DnsServer;
  readonly protocol: Protocol;
  readonly id: number;
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... */
  readonly rcode: string;
  readonly flags: {
    readonly aa: boolean;
    readonly tc: boolean;
    readonly rd: boolean;
    readonly ra: boolean;
    readonly ad: boolean;
  };
  readonly answers: readonly DnsRecord[];
  readonly authorities: readonly DnsRecord[];
  /** Without the EDNS OPT pseudo-record. */
  readonly additionals: readonly DnsRecord[];
}

export interface QueryOptions {
  readonly server: DnsServer;
  readonly name: string;
  readonly type: QueryType;
  /** RD bit: true for recursive resolvers, false when asking an authoritative server directly. */
  readonly recursionDesired: boolean;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Default 'udp', with a TCP retry when the answer is truncated. */
  readonly protocol?: Protocol;
}

/**
 * Sends one query and returns the decoded answer. Any RCODE is an answer (NXDOMAIN is
 * information); only no answer, a malformed answer or cancellation throw.
 */
export async function query(opts: QueryOptions): Promise<DnsResponse> {
  const name = normalizeName(opts.name);
  const what = `${opts.type} query for ${name || '.'} to ${formatServer(opts.server)}`;
  const build = (id: number): Buffer =>
    packet.encode({
      type: 'query',
      id,
      flags: opts.recursionDesired ? packet.RECURSION_DESIRED : 0,
      questions: [{ name: name || '.', type: opts.type, class: 'IN' }],
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: EDNS_UDP_PAYLOAD,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    });
  const check = (buf: Buffer): string | undefined =>
    checkQuestionSection(buf, OPCODE_QUERY, name, TYPE[opts.type], 'question');
  const run = async (protocol: Protocol): Promise<DnsResponse> => {
    try {
      const raw = await exchange({
        server: opts.server,
        protocol,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
        build,
        check,
        component: 'dns',
      });
      return decodeResponse(raw, opts.server, protocol);
    } catch (err) {
      throw toComponentError(err, 'DNS_QUERY_FAILED', `dns: ${what} failed`, {
        server: formatServer(opts.server),
        name,
        type: opts.type,
      });
    }
  };
  const first = await run(opts.protocol ?? 'udp');
  // RFC 7766: a truncated UDP answer must be asked again over TCP to get the full answer.
  if (first.protocol === 'udp' && first.flags.tc) return run('tcp');
  return first;
}

/**
 * An answer must repeat what it answers: the opcode, and the question (a query) or the zone
 * section (an UPDATE, RFC 2136 section 3.8: ZNAME, SOA, IN). A datagram that echoes another
 * name is not the answer to ours, however its ID matched. Returns why not, or undefined.
 */
function checkQuestionSection(
  buf: Buffer,
  opcode: number,
  name: string,
  type: number,
  section: 'question' | 'zone',
): string | undefined {
  const flags = buf.readUInt16BE(2);
  if (((flags >> 11) & 0xf) !== opcode) return `opcode ${(flags >> 11) & 0xf}, not ${opcode}`;
  const count = buf.readUInt16BE(4);
  // Some servers drop the question from error answers (FORMERR, NOTIMP); accept those by ID.
  if (count === 0 && (flags & 0xf) !== 0) return undefined;
  if (count !== 1) return `${count} entries in the ${section} section, not 1`;
  const got = readName(buf, HEADER_BYTES);
  const off = skipName(buf, HEADER_BYTES);
  if (off + 4 > buf.length) return `truncated ${section} section`;
  const gotType = buf.readUInt16BE(off);
  const gotClass = buf.readUInt16BE(off + 2);
  if (got !== name || gotType !== type || gotClass !== CLASS.IN) {
    return `its ${section} section is ${got || '.'} type ${gotType} class ${gotClass}, not ${name || '.'} type ${type} class ${CLASS.IN}`;
  }
  return undefined;
}

function decodeResponse(raw: Buffer, server: DnsServer, protocol: Protocol): DnsResponse {
  const p = packet.decode(raw);
  const flags = raw.readUInt16BE(2);
  const opt = (p.additionals ?? []).find((a): a is packet.OptAnswer => a.type === 'OPT');
  // The full RCODE has 12 bits: 4 in the header, 8 more in the OPT record (RFC 6891 section 6.1.3).
  const rcode = ((opt?.extendedRcode ?? 0) << 4) | (flags & 0xf);
  return {
    server,
    protocol,
    id: raw.readUInt16BE(0),
    rcode: rcodeName(rcode),
    flags: {
      aa: p.flag_aa,
      tc: p.flag_tc,
      rd: p.flag_rd,
      ra: p.flag_ra,
      ad: p.flag_ad,
    },
    answers: (p.answers ?? []).map(toRecord),
    authorities: (p.authorities ?? []).map(toRecord),
    additionals: (p.additionals ?? []).filter((a) => a.type !== 'OPT').map(toRecord),
  };
}

function toRecord(a: packet.Answer): DnsRecord {
  const base = { name: normalizeName(a.name), type: a.type, ttl: 'ttl' in a ? (a.ttl ?? 0) : 0 };
  switch (a.type) {
    case 'A':
    case 'AAAA':
      return { ...base, data: a.data };
    case 'NS':
    case 'CNAME':
    case 'DNAME':
    case 'PTR':
      return { ...base, data: normalizeName(a.data) };
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data];
      const txt = parts.map((d) => (Buffer.isBuffer(d) ? d.toString('utf8') : d));
      return { ...base, data: txt.join(''), txt };
    }
    case 'SOA':
      return {
        ...base,
        data: normalizeName(a.data.mname),
        soa: {
          mname: normalizeName(a.data.mname),
          rname: normalizeName(a.data.rname),
          serial: a.data.serial ?? 0,
          minimum: a.data.minimum ?? 0,
        },
      };
    case 'CAA': {
      const caa = { flags: a.data.flags ?? 0, tag: String(a.data.tag).toLowerCase(), value: a.data.value };
      return { ...base, data: `${caa.flags} ${caa.tag} "${caa.value}"`, caa };
    }
    default:
      return { ...base, data: '' };
  }
}

/** The TXT values at `fqdn` in the answer section of `response`. */
export function txtValues(response: DnsResponse, fqdn: string): string[] {
  const n = normalizeName(fqdn);
  return response.answers.filter((r) => r.type === 'TXT' && r.name === n).map((r) => r.data);
}

/** One change to a TXT RRset, by FQDN. */
export type TxtUpdate =
  | { readonly action: 'add'; readonly name: string; readonly value: string; readonly ttl: number }
  /** Without `value`, deletes the whole TXT RRset at `name` (RFC 2136 section 2.5.2). */
  | { readonly action: 'delete'; readonly name: string; readonly value?: string };

export interface UpdateOptions {
  readonly server: DnsServer;
  /** The zone (apex FQDN) the update is for; every name must lie in it. */
  readonly zone: string;
  readonly updates: readonly TxtUpdate[];
  readonly tsig?: TsigKey;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Default 'tcp': updates can exceed a UDP datagram, and TCP makes a lost answer an error, not a resend. */
  readonly protocol?: Protocol;
}

export interface UpdateResult {
  readonly server: string;
  readonly rcode: 'NOERROR';
  /** True when the answer carried a TSIG that verified. */
  readonly signed: boolean;
}

/** Builds the unsigned RFC 2136 UPDATE message. Exported for tests. */
export function buildUpdateMessage(id: number, zone: string, updates: readonly TxtUpdate[]): Buffer {
  const z = normalizeName(zone);
  const zoneSection = Buffer.concat([encodeName(z), Buffer.from([0, TYPE.SOA, 0, CLASS.IN])]);
  const records = updates.map((u) => {
    const name = normalizeName(u.name);
    if (name !== z && !name.endsWith('.' + z)) throw new RangeError(`rfc2136: ${name} is not in zone ${z}`);
    if (u.action === 'add') return encodeRecord(name, TYPE.TXT, CLASS.IN, u.ttl, encodeTxtRdata(u.value));
    // RFC 2136 section 2.5.4: class NONE, TTL 0 deletes exactly this value;
    // section 2.5.2: class ANY, TTL 0, empty RDATA deletes the RRset.
    if (u.value === undefined) return encodeRecord(name, TYPE.TXT, CLASS.ANY, 0, Buffer.alloc(0));
    return encodeRecord(name, TYPE.TXT, CLASS.NONE, 0, encodeTxtRdata(u.value));
  });
  // Header: opcode UPDATE; ZOCOUNT 1, PRCOUNT 0, UPCOUNT = changes, ADCOUNT 0 (RFC 2136 section 2.2).
  const header = encodeHeader({ id, flags: OPCODE_UPDATE << 11, qd: 1, an: 0, ns: records.length, ar: 0 });
  return Buffer.concat([header, zoneSection, ...records]);
}

const RCODE_HINTS: Record<string, string> = {
  REFUSED:
    'the server refused the update: its update-policy does not let this key change these names, the zone is frozen or not a primary, or it did not accept the TSIG key (check tsigKeyName, tsigAlgorithm and tsigSecret)',
  NOTAUTH: 'the server is not authoritative for the zone, or did not accept the TSIG key',
  NOTZONE: 'a name is outside the zone',
  SERVFAIL: 'the server failed to apply the update',
  FORMERR: 'the server could not parse the update',
  NOTIMP: 'the server does not support dynamic updates',
};

/**
 * A signed request refused without a signature: the server did not use (so probably did not
 * accept) the key. BIND signs its refusals when the key verified; PowerDNS answers a wrong key
 * name or secret with exactly this plain REFUSED.
 */
const UNSIGNED_REFUSED_HINT =
  'the refusal is not signed, so the server probably did not accept the TSIG key: check tsigKeyName, tsigAlgorithm and tsigSecret (PowerDNS answers a wrong key or secret this way); otherwise its update-policy does not let this key change these names, or the zone is frozen or not a primary';

const TSIG_HINTS: Record<string, string> = {
  BADSIG: 'the server could not verify the signature: check tsigSecret and tsigAlgorithm',
  BADKEY: 'the server does not know this key name with this algorithm: check tsigKeyName and tsigAlgorithm',
  BADTIME: "the clocks of this host and the server differ by more than the TSIG fudge: check the host's time",
  BADTRUNC: 'the server rejected a truncated MAC',
};

/**
 * Sends a (TSIG-signed) RFC 2136 UPDATE of TXT records and resolves when the primary answers
 * NOERROR. Throws DNS_UPDATE_FAILED (message `rfc2136: ...` with server, RCODE and TSIG error),
 * or ABORTED/TIMEOUT when `signal` fires. An error whose details say `nothingWritten` comes from
 * the server's own refusal (an UPDATE is applied whole or not at all, RFC 2136 section 3) or
 * from before anything was sent.
 */
export async function sendUpdate(opts: UpdateOptions): Promise<UpdateResult> {
  const server = formatServer(opts.server);
  const zone = normalizeName(opts.zone);
  const what = `update of zone ${zone} at ${server}`;
  const details = { server, zone, changes: opts.updates.length };
  if (opts.signal.aborted) throw abortError('rfc2136', opts.signal);
  // Every transmission has its own ID, so its own signature; the answer is checked against the
  // MAC of the request whose ID it carries.
  const requestMacs = new Map<number, Buffer>();
  const build = (id: number): Buffer => {
    const unsigned = buildUpdateMessage(id, zone, opts.updates);
    if (!opts.tsig) return unsigned;
    try {
      const { message, mac } = signMessage(unsigned, opts.tsig);
      requestMacs.set(id, mac);
      return message;
    } catch (err) {
      // The only way signing fails is a malformed secret or key name; the message says which
      // without quoting either.
      throw new CertpilotError(
        'DNS_UPDATE_FAILED',
        `rfc2136: cannot sign ${what}: ${(err as Error).message}`,
        { details: { ...details, [NOTHING_WRITTEN]: true } },
      );
    }
  };
  let raw: Buffer;
  try {
    raw = await exchange({
      server: opts.server,
      protocol: opts.protocol ?? 'tcp',
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      build,
      check: (buf) => checkQuestionSection(buf, OPCODE_UPDATE, zone, TYPE.SOA, 'zone'),
      component: 'rfc2136',
    });
  } catch (err) {
    throw toComponentError(err, 'DNS_UPDATE_FAILED', `rfc2136: ${what} failed`, details);
  }
  const signed = checkUpdateAnswer(raw, opts.tsig, requestMacs.get(raw.readUInt16BE(0)), what, details);
  return { server, rcode: 'NOERROR', signed };
}

/** Judges the server's answer to an UPDATE; returns whether it carried a verified TSIG. */
function checkUpdateAnswer(
  raw: Buffer,
  tsig: TsigKey | undefined,
  requestMac: Buffer | undefined,
  what: string,
  details: Record<string, unknown>,
): boolean {
  const rcode = rcodeName(raw.readUInt16BE(2) & 0xf);
  let verification;
  try {
    verification = tsig ? verifyMessage(raw, tsig, { requestMac }) : ({ status: 'unsigned' } as const);
  } catch (err) {
    throw new CertpilotError(
      'DNS_UPDATE_FAILED',
      `rfc2136: ${what}: malformed answer (${rcode}): ${(err as Error).message}`,
      { cause: err, details: { ...details, rcode } },
    );
  }
  const refused = { ...details, rcode, [NOTHING_WRITTEN]: true };
  if (verification.status === 'failed' && verification.record.error !== 0) {
    const tsigError = rcodeName(verification.record.error);
    throw new CertpilotError(
      'DNS_UPDATE_FAILED',
      `rfc2136: ${what} rejected: ${rcode}, TSIG error ${tsigError} (${TSIG_HINTS[tsigError] ?? 'TSIG failure'})`,
      { details: { ...refused, tsigError } },
    );
  }
  if (rcode !== 'NOERROR') {
    const hint =
      rcode === 'REFUSED' && tsig && verification.status === 'unsigned'
        ? UNSIGNED_REFUSED_HINT
        : RCODE_HINTS[rcode];
    throw new CertpilotError(
      'DNS_UPDATE_FAILED',
      `rfc2136: ${what} failed: ${rcode}${hint ? ` (${hint})` : ''}`,
      {
        retryable: rcode === 'SERVFAIL',
        details: refused,
      },
    );
  }
  if (tsig && verification.status !== 'ok') {
    // RFC 8945 section 5.3.4: a signed request's answer must be signed with the same key;
    // otherwise anyone on the path could have forged the NOERROR.
    const reason =
      verification.status === 'unsigned'
        ? 'the answer is not signed'
        : `the answer's TSIG is invalid: ${verification.reason}`;
    throw new CertpilotError('DNS_UPDATE_FAILED', `rfc2136: ${what}: ${reason}`, {
      details: { ...details, rcode },
    });
  }
  return verification.status === 'ok';
}

function toComponentError(
  err: unknown,
  code: 'DNS_QUERY_FAILED' | 'DNS_UPDATE_FAILED',
  head: string,
  details: Record<string, unknown>,
): CertpilotError {
  if (err instanceof CertpilotError) return err;
  if (err instanceof TransportFailure) {
    return new CertpilotError(code, `${head}: ${err.message}`, {
      cause: err.cause,
      // A server that answers wrongly will answer wrongly again; a lost answer may come next time.
      retryable: err.kind !== 'invalid',
      details,
    });
  }
  return new CertpilotError(code, `${head}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
    details,
  });
}
