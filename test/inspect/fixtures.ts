import type { ProbeOptions } from '../../src/inspect/remote';
import { makeCa, makeCertificate, type KeyPairPem } from '../helpers/certs';
import { LOOPBACK } from '../helpers/tls-servers';

/**
 * One small PKI shared by the inspect tests: root → intermediate → leaves in every state the
 * findings table needs. Dates are relative to `now` so the same set serves the pure tests (a
 * fixed, injected now) and the TLS tests (OpenSSL verifies against the real clock).
 */

export const DAY_MS = 86_400_000;

export interface Pki {
  now: Date;
  root: KeyPairPem;
  intermediate: KeyPairPem;
  /** 90-day certificate with 60 days left, for `names`. */
  valid: KeyPairPem;
  /** 90-day certificate with 2 days left. */
  twoDays: KeyPairPem;
  /** 90-day certificate with 15 days left. */
  fifteenDays: KeyPairPem;
  /** Expired ten days ago. */
  expired: KeyPairPem;
  /** Starts tomorrow. */
  notYetValid: KeyPairPem;
  /** Valid, but for other.test only. */
  wrongSan: KeyPairPem;
  selfSigned: KeyPairPem;
}

export const NAMES = ['example.test', 'www.example.test'];

export function makePki(now: Date): Pki {
  const t = now.getTime();
  const day = (n: number): Date => new Date(t + n * DAY_MS);
  const root = makeCa({ commonName: 'certpilot test root', notBefore: day(-365), notAfter: day(3650) });
  const intermediate = makeCertificate({
    names: [],
    isCA: true,
    issuer: root,
    commonName: 'certpilot test intermediate',
    notBefore: day(-365),
    notAfter: day(1825),
  });
  const leaf = (notBefore: Date, notAfter: Date, names = NAMES): KeyPairPem =>
    makeCertificate({ names, notBefore, notAfter, issuer: intermediate });
  return {
    now,
    root,
    intermediate,
    valid: leaf(day(-30), day(60)),
    twoDays: leaf(day(-88), day(2)),
    fifteenDays: leaf(day(-75), day(15)),
    expired: leaf(day(-100), day(-10)),
    notYetValid: leaf(day(1), day(91)),
    wrongSan: leaf(day(-30), day(60), ['other.test']),
    selfSigned: makeCertificate({ names: NAMES, notBefore: day(-30), notAfter: day(60) }),
  };
}

/**
 * Probe options for a loopback server presenting `pki`'s certificates: `example.test` is only a
 * name (SNI, verification), never resolved; the root is the trust store.
 */
export function probeTarget(pki: Pki, port: number, extra: Partial<ProbeOptions> = {}): ProbeOptions {
  return {
    host: 'example.test',
    port,
    connectAddress: LOOPBACK,
    caBundle: pki.root.certPem,
    connectTimeoutMs: 2000,
    handshakeTimeoutMs: 2000,
    ...extra,
  };
}
