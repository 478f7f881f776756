import type { ProviderDefinition } from '../../provider';
import { decodeTsigSecret } from '../../tsig';

export const TSIG_ALGORITHMS = [
  'hmac-sha256',
  'hmac-sha384',
  'hmac-sha512',
  'hmac-sha224',
  'hmac-sha1',
] as const;

/** RFC 2136 dynamic updates signed with TSIG (RFC 8945): BIND, Knot, PowerDNS, ... */
export const rfc2136Definition: ProviderDefinition = {
  code: 'rfc2136',
  aliases: ['nsupdate'],
  title: 'RFC 2136 (BIND, Knot, PowerDNS)',
  description:
    'Dynamic DNS updates (RFC 2136) sent straight to the primary nameserver, signed with a TSIG key (RFC 8945). See docs/providers/rfc2136.md.',
  options: {
    server: {
      doc: 'Address of the primary nameserver: IPv4 or IPv6 literal, or a host name (resolved through dns.resolvers when set).',
      format: 'host',
      required: true,
    },
    port: { doc: 'Port of the primary nameserver.', format: 'port', default: 53 },
    protocol: { doc: 'Transport for updates.', format: 'enum', values: ['udp', 'tcp'], default: 'tcp' },
    tsigKeyName: {
      doc: 'Name of the TSIG key, as configured on the server.',
      format: 'string',
      required: true,
    },
    tsigAlgorithm: {
      doc: 'TSIG algorithm.',
      format: 'enum',
      values: TSIG_ALGORITHMS,
      default: 'hmac-sha256',
    },
    tsigSecret: {
      doc: 'TSIG secret, base64 (as in the server\'s "secret" line).',
      format: 'string',
      required: true,
      sensitive: true,
      env: 'CERTPILOT_RFC2136_TSIG_SECRET',
    },
  },
  defaults: { ttl: 60, propagationTimeoutMs: 120_000, propagationIntervalMs: 1_000 },
  example: [
    'type: rfc2136',
    'server: 192.0.2.53',
    'tsigKeyName: certpilot',
    'tsigAlgorithm: hmac-sha256',
    'tsigSecret_file: /etc/certpilot/tsig.secret',
  ].join('\n'),
  validate(options) {
    // Checked at load time, not at the first update: `config check` must catch it.
    try {
      decodeTsigSecret(String(options.tsigSecret));
      return [];
    } catch {
      return [['tsigSecret', 'must be base64 (as in the server\'s "secret" line)']];
    }
  },
  create(options, ctx) {
    // Loaded lazily: listing providers must not load transport code.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Rfc2136Provider } = require('./provider') as typeof import('./provider');
    return new Rfc2136Provider(options, ctx);
  },
};
