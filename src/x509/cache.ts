import { parseCertificate, type CertInfo } from './index';

/**
 * parseCertificate with a memory of recent results, keyed by the PEM text. An inventory parses
 * the same intermediates over and over: 1,000 fullchain files or endpoints from one CA carry one
 * intermediate 1,000 times, and the chain checks read it again. Parsing (OpenSSL decode plus a
 * signature check for self-signed detection) costs about 0.15 ms each, which made the chain
 * three quarters of `check`'s time over 1,000 files (bench/README.md).
 *
 * Results are shared: treat a returned CertInfo as read-only. Failures are not remembered.
 */

/** Enough for every distinct certificate of a large inventory; a few MB at most. */
const MAX_ENTRIES = 4096;

const cache = new Map<string, CertInfo>();

export function parseCertificateCached(pem: string): CertInfo {
  const hit = cache.get(pem);
  if (hit) {
    // Least recently used goes first: re-inserting moves a hit to the end of the Map's order,
    // so intermediates shared by many leaves stay while one-off leaves age out.
    cache.delete(pem);
    cache.set(pem, hit);
    return hit;
  }
  const info = parseCertificate(pem);
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(pem, info);
  return info;
}

const derCache = new Map<string, CertInfo>();

/** The normalised PEM of a DER certificate, as splitPemChain writes it (64-column base64). */
function pemOfBase64(base64: string): string {
  let body = '';
  for (let i = 0; i < base64.length; i += 64) body += `${base64.slice(i, i + 64)}\n`;
  return `-----BEGIN CERTIFICATE-----\n${body || '\n'}-----END CERTIFICATE-----\n`;
}

/**
 * parseCertificateCached for a certificate in DER (as a TLS peer presents it), remembered by
 * its DER: a probe of 1,000 endpoints serving one intermediate looks it up instead of writing
 * its PEM out 1,000 times.
 */
export function parseCertificateDerCached(der: Buffer): CertInfo {
  const key = der.toString('base64');
  const hit = derCache.get(key);
  if (hit) {
    derCache.delete(key);
    derCache.set(key, hit);
    return hit;
  }
  const info = parseCertificateCached(pemOfBase64(key));
  if (derCache.size >= MAX_ENTRIES) derCache.delete(derCache.keys().next().value as string);
  derCache.set(key, info);
  return info;
}
