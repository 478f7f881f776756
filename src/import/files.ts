import { createPrivateKey, type JsonWebKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors';
import { KEY_TYPES, type KeyType } from '../config/types';
import type { CertificateFiles } from '../store/cert-store';
import { parseCertificate, splitPemChain, type CertInfo } from '../x509';

/** Reading the other tools' files: every failure names the file, and none quotes its content. */

export async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`certpilot import: cannot read ${what} ${file} (${code})`);
  }
}

/** A missing file is null; any other failure is an error naming it. */
export async function readOptional(file: string, what: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return readText(file, what);
  }
}

/**
 * certbot's renewal configuration and its credentials files are configobj INI: `key = value`
 * lines, `#` comments, `[section]` headers. Only the keys matter here, so sections are flattened
 * (certbot's key names do not repeat across its sections).
 */
export function parseIni(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && /^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    out.set(line.slice(0, eq).trim(), value);
  }
  return out;
}

/** The four PEM values certpilot stores, from a leaf (or a bundle starting with it) and its chain. */
export function certificateFiles(
  certOrBundle: string,
  chainPem: string,
  keyPem: string,
  from: string,
): { files: CertificateFiles; info: CertInfo } {
  const blocks = splitPemChain(certOrBundle);
  if (blocks.length === 0) throw new UsageError(`certpilot import: ${from} holds no certificate`);
  const leaf = blocks[0]!;
  // A bundle carries its own chain; a leaf alone takes the separate chain file.
  const chain = blocks.length > 1 ? blocks.slice(1) : splitPemChain(chainPem);
  let info: CertInfo;
  try {
    info = parseCertificate(leaf);
  } catch (err) {
    throw new UsageError(`certpilot import: ${from}: ${(err as Error).message}`);
  }
  return {
    files: { cert: leaf, chain: chain.join(''), fullchain: [leaf, ...chain].join(''), key: keyPem },
    info,
  };
}

export function keyTypeOf(info: CertInfo): KeyType | undefined {
  return (KEY_TYPES as readonly string[]).includes(info.keyType) ? (info.keyType as KeyType) : undefined;
}

/** Any private key PEM (PKCS#1, SEC 1, PKCS#8) as PKCS#8, the form certpilot writes. */
export function toPkcs8(keyPem: string, from: string): string {
  try {
    return createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch {
    throw new UsageError(`certpilot import: ${from} is not a private key certpilot can read`);
  }
}

/** certbot's account key: a JWK (josepy writes it without `kty`), as PKCS#8 PEM. */
export function jwkToPkcs8(text: string, from: string): string {
  try {
    const jwk = JSON.parse(text) as JsonWebKey;
    const kty = jwk.kty ?? (jwk.crv ? 'EC' : 'RSA');
    return createPrivateKey({ key: { ...jwk, kty }, format: 'jwk' })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString();
  } catch {
    throw new UsageError(`certpilot import: ${from} is not a private JWK certpilot can read`);
  }
}
