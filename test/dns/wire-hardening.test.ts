import { randomBytes } from 'node:crypto';
import * as packet from 'dns-packet';
import { CertpilotError } from '../../src/core/errors';
import { CLASS, OPCODE_UPDATE, TYPE, encodeHeader, encodeName, readName } from '../../src/dns/message';
import { type TsigKey, findTsig, signMessage } from '../../src/dns/tsig';
import { type Protocol, query, sendUpdate } from '../../src/dns/wire';
import { type DnsResponder, type ReceivedRequest, startDnsResponder } from '../helpers/dns-responder';
import { type BindServer, startBind } from '../helpers/bind';

/**
 * The answer checks of the RFC 2136 client, against answers a real server never gives, sent by
 * a scripted responder on loopback over real UDP and TCP. Each malformed answer is otherwise
 * valid (correctly signed where it matters), so the one check under test is what rejects it.
 * The genuine paths run against BIND at the end.
 */

const ZONE = 'example.test';
const KEY: TsigKey = {
  name: 'hardening-key',
  algorithm: 'hmac-sha256',
  secret: randomBytes(32).toString('base64'),
};
const UPDATES = [{ action: 'add', name: `_acme-challenge.${ZONE}`, value: 'v', ttl: 60 }] as const;

interface AnswerOptions {
  readonly rcode?: number;
  /** Zone section to echo; default the request's. */
  readonly zone?: string;
  /** Sign with this key (the MAC covers the request's MAC). */
  readonly key?: TsigKey;
  /** Sign a second time: two valid TSIG records in a row. */
  readonly twoTsig?: boolean;
}

/** The answer to an UPDATE request, built byte by byte. */
function updateAnswer(req: ReceivedRequest, opts: AnswerOptions = {}): Buffer {
  const zone = opts.zone ?? readName(req.message, 12);
  const header = encodeHeader({
    id: req.id,
    flags: 0x8000 | (OPCODE_UPDATE << 11) | (opts.rcode ?? 0),
    qd: 1,
    an: 0,
    ns: 0,
    ar: 0,
  });
  let msg: Buffer = Buffer.concat([header, encodeName(zone), Buffer.from([0, TYPE.SOA, 0, CLASS.IN])]);
  if (opts.key) {
    const requestMac = findTsig(req.message)!.record.mac;
    msg = signMessage(msg, opts.key, { requestMac }).message;
    if (opts.twoTsig) msg = signMessage(msg, opts.key, { requestMac }).message;
  }
  return msg;
}

let responder: DnsResponder;

beforeAll(async () => {
  responder = await startDnsResponder(() => undefined);
});
afterAll(async () => {
  await responder?.stop();
});

function update(protocol: Protocol, timeoutMs = 3000): Promise<{ signed: boolean }> {
  return sendUpdate({
    server: { host: responder.address, port: responder.port },
    zone: ZONE,
    updates: UPDATES,
    tsig: KEY,
    signal: AbortSignal.timeout(15_000),
    timeoutMs,
    protocol,
  });
}

async function rejection(p: Promise<unknown>): Promise<CertpilotError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return err as CertpilotError;
}

describe.each(['tcp', 'udp'] as const)(
  'signed UPDATE over %s: the answer must match and be signed',
  (protocol) => {
    test('control: a signed answer echoing our zone is accepted', async () => {
      responder.handle((req) => updateAnswer(req, { key: KEY }));
      await expect(update(protocol)).resolves.toMatchObject({ signed: true });
    });

    test('an unsigned NOERROR is rejected (anyone on the path could forge it)', async () => {
      responder.handle((req) => updateAnswer(req));
      const err = await rejection(update(protocol));
      expect(err.code).toBe('DNS_UPDATE_FAILED');
      expect(err.message).toBe(
        `rfc2136: update of zone ${ZONE} at 127.0.0.1:${responder.port}: the answer is not signed`,
      );
      // It may have been applied: the solver must still clean up.
      expect(err.details.nothingWritten).toBeUndefined();
    });

    test('an answer with two TSIG records is rejected, though each verifies', async () => {
      responder.handle((req) => updateAnswer(req, { key: KEY, twoTsig: true }));
      const err = await rejection(update(protocol));
      expect(err.message).toMatch(/: malformed answer \(NOERROR\): dns: 2 TSIG records in one message$/);
    });

    test('an unsigned REFUSED (PowerDNS, wrong key) names the TSIG key and says nothing was written', async () => {
      responder.handle((req) => updateAnswer(req, { rcode: 5 }));
      const err = await rejection(update(protocol));
      expect(err.message).toMatch(
        /failed: REFUSED \(the refusal is not signed, so the server probably did not accept the TSIG key: check tsigKeyName, tsigAlgorithm and tsigSecret \(PowerDNS/,
      );
      expect(err.details).toMatchObject({ rcode: 'REFUSED', nothingWritten: true });
    });
  },
);

describe('the zone section of an UPDATE answer', () => {
  test('over TCP a correctly signed answer for another zone is rejected at once', async () => {
    responder.handle((req) => updateAnswer(req, { key: KEY, zone: 'other.test' }));
    const started = Date.now();
    const err = await rejection(update('tcp', 10_000));
    expect(err.message).toBe(
      `rfc2136: update of zone ${ZONE} at 127.0.0.1:${responder.port} failed: invalid answer: its zone section is other.test type 6 class 1, not ${ZONE} type 6 class 1`,
    );
    expect(err.retryable).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('over UDP such a datagram is ignored (it may be spoofed) and named when nothing else comes', async () => {
    responder.handle((req) => updateAnswer(req, { key: KEY, zone: 'other.test' }));
    const err = await rejection(update('udp', 1_500));
    expect(err.message).toBe(
      `rfc2136: update of zone ${ZONE} at 127.0.0.1:${responder.port} failed: no answer within 1500 ms (ignored an answer: its zone section is other.test type 6 class 1, not ${ZONE} type 6 class 1)`,
    );
  });

  test('over UDP the genuine answer after a foreign one is accepted', async () => {
    responder.handle((req) => [
      updateAnswer(req, { key: KEY, zone: 'other.test' }),
      updateAnswer(req, { key: KEY }),
    ]);
    await expect(update('udp')).resolves.toMatchObject({ signed: true });
  });
});

describe('UDP retransmissions', () => {
  test('every UPDATE retransmission has a fresh ID; a late answer to the first copy still counts', async () => {
    const before = responder.requests.length;
    // Silent for two transmissions, then answers the *first* one (signed over its own MAC).
    responder.handle((_req, index) =>
      index === before + 2 ? updateAnswer(responder.requests[before], { key: KEY }) : undefined,
    );
    await expect(update('udp', 5_000)).resolves.toMatchObject({ signed: true });
    const ids = responder.requests.slice(before).map((r) => r.id);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
  });

  test('every query retransmission has a fresh ID', async () => {
    const before = responder.requests.length;
    responder.handle((req, index) => {
      if (index < before + 2) return undefined;
      const q = packet.decode(req.message);
      return packet.encode({
        type: 'response',
        id: req.id,
        flags: packet.AUTHORITATIVE_ANSWER,
        questions: q.questions,
        answers: [{ type: 'TXT', name: 'x.example.test', ttl: 60, data: ['hello'] }],
      });
    });
    const r = await query({
      server: { host: responder.address, port: responder.port },
      name: 'x.example.test',
      type: 'TXT',
      recursionDesired: false,
      signal: AbortSignal.timeout(15_000),
      timeoutMs: 5_000,
      protocol: 'udp',
    });
    expect(r.answers.map((a) => a.data)).toEqual(['hello']);
    const ids = responder.requests.slice(before).map((r) => r.id);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
  });
});

describe('genuine answers from BIND', () => {
  let bind: BindServer;
  beforeAll(async () => {
    bind = await startBind({ zones: [{ name: ZONE }] });
  });
  afterAll(async () => {
    await bind?.stop();
  });

  test.each(['tcp', 'udp'] as const)('over %s BIND signs its answer and we verify it', async (protocol) => {
    const tsig = { ...bind.tsig, algorithm: 'hmac-sha256' as const };
    const result = await sendUpdate({
      server: { host: bind.address, port: bind.port },
      zone: ZONE,
      updates: [{ action: 'add', name: `_acme-challenge.genuine.${ZONE}`, value: protocol, ttl: 60 }],
      tsig,
      signal: AbortSignal.timeout(15_000),
      timeoutMs: 5_000,
      protocol,
    });
    expect(result).toEqual({ server: `127.0.0.1:${bind.port}`, rcode: 'NOERROR', signed: true });
    expect(await bind.queryTxt(`_acme-challenge.genuine.${ZONE}`)).toContain(protocol);
  });

  test('a refusal by BIND with a key it accepted is signed: the hint does not blame the key alone', async () => {
    await bind.freeze(ZONE);
    try {
      const err = await rejection(
        sendUpdate({
          server: { host: bind.address, port: bind.port },
          zone: ZONE,
          updates: UPDATES,
          tsig: { ...bind.tsig, algorithm: 'hmac-sha256' },
          signal: AbortSignal.timeout(15_000),
          timeoutMs: 5_000,
        }),
      );
      expect(err.message).toMatch(/failed: REFUSED \(the server refused the update: .*frozen.*TSIG key/);
      expect(err.message).not.toContain('not signed');
      expect(err.details).toMatchObject({ rcode: 'REFUSED', nothingWritten: true });
    } finally {
      await bind.thaw(ZONE);
    }
  });
});
