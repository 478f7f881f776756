import {
  absolutePath,
  knownKeys,
  oneOfShapes,
  optional,
  text,
  valueAt,
  type ValueParser,
} from './combinators';
import { parsePort } from './formats';
import { childPath, type IssueList } from './issues';
import type { KeyDocs } from './key-docs';
import type { Endpoint } from './types';

/**
 * A TLS endpoint: where deploy verification and `certpilot check` connect. One parser for
 * `certificates[].endpoints` and `watch.endpoints`, so both accept the same shapes: the
 * "host" / "host:port" shorthand, or a mapping with host, port, servername, connectAddress,
 * caBundle and starttls. A section with keys of its own (watch: name, names, thresholds)
 * passes them as `extraKeys` and parses them itself.
 */

export const ENDPOINT_KEYS = ['host', 'port', 'servername', 'connectAddress', 'caBundle', 'starttls'];

export const ENDPOINT_KEY_DOCS: KeyDocs = {
  host: {
    type: 'host name or IP',
    default: 'required',
    doc: 'Name the endpoint is known by: SNI and name checks.',
  },
  port: { type: 'port', default: '`443` (`25` with starttls)', doc: 'TCP port.' },
  servername: { type: 'host name', default: '`host`', doc: 'SNI name when it differs from `host`.' },
  connectAddress: {
    type: 'host or IP',
    doc: 'Connect here instead of resolving `host` (one node behind a balancer or CDN).',
  },
  caBundle: { type: 'absolute path', default: 'system CAs', doc: 'PEM CA certificates to judge trust with.' },
  starttls: { type: '`smtp`', doc: 'Speak SMTP up to STARTTLS (RFC 3207) before the handshake.' },
};
/** HTTPS unless the endpoint says otherwise. */
const DEFAULT_TLS_PORT = 443;
/** SMTP's STARTTLS port (submission servers on 587 must set it). */
const DEFAULT_SMTP_PORT = 25;
const SHORTHAND = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/;

/** A host name or address as written (lenient: the TLS probe reports what does not resolve). */
export const parseEndpointHost: ValueParser<string> = (v) => {
  const s = text(v).trim().toLowerCase();
  if (!/^[a-z0-9.:[\]_-]+$/.test(s)) throw new Error(`${JSON.stringify(s)} is not a host name or address`);
  return s.replace(/^\[(.*)\]$/, '$1');
};

function parseShorthand(raw: string, path: string, issues: IssueList): Endpoint | undefined {
  const m = SHORTHAND.exec(raw.trim());
  if (!m) {
    issues.add(path, `${JSON.stringify(raw)} must be "host" or "host:port"`);
    return undefined;
  }
  const host = valueAt(m[1], path, issues, parseEndpointHost);
  const port = m[2] === undefined ? DEFAULT_TLS_PORT : valueAt(Number(m[2]), path, issues, parsePort);
  return host !== undefined && port !== undefined ? { host, port } : undefined;
}

const parseStarttls: ValueParser<'smtp'> = (v) => {
  if (v !== 'smtp') throw new Error('must be "smtp" (the only STARTTLS protocol supported)');
  return v;
};

function parseEndpointMapping(
  o: Record<string, unknown>,
  path: string,
  issues: IssueList,
  extraKeys: readonly string[],
): Endpoint | undefined {
  knownKeys(o, [...ENDPOINT_KEYS, ...extraKeys], path, issues);
  const before = issues.size;
  const starttls = optional(o, 'starttls', path, issues, parseStarttls);
  const host = valueAt(o.host, childPath(path, 'host'), issues, parseEndpointHost);
  const port =
    optional(o, 'port', path, issues, parsePort) ?? (starttls ? DEFAULT_SMTP_PORT : DEFAULT_TLS_PORT);
  const servername = optional(o, 'servername', path, issues, parseEndpointHost);
  const connectAddress = optional(o, 'connectAddress', path, issues, parseEndpointHost);
  const caBundle = optional(o, 'caBundle', path, issues, absolutePath);
  if (issues.size > before || host === undefined) return undefined;
  return {
    host,
    port,
    ...(servername !== undefined ? { servername } : {}),
    ...(connectAddress !== undefined ? { connectAddress } : {}),
    ...(caBundle !== undefined ? { caBundle } : {}),
    ...(starttls ? { starttls } : {}),
  };
}

/** "host", "host:port" or a mapping; `extraKeys` are allowed in the mapping and left to the caller. */
export function parseEndpoint(
  raw: unknown,
  path: string,
  issues: IssueList,
  extraKeys: readonly string[] = [],
): Endpoint | undefined {
  return oneOfShapes(raw, path, issues, '"host:port" or a mapping with host', {
    string: (s) => parseShorthand(s, path, issues),
    mapping: (m) => parseEndpointMapping(m, path, issues, extraKeys),
  });
}
