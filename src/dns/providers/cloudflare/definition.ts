import type { ProviderDefinition } from '../../provider';
import { CLOUDFLARE_API_BASE, CLOUDFLARE_DEFAULT_MAX_RETRIES } from './options';

/** Cloudflare's authoritative servers pick up changes within seconds; allow for slow edges. */
const CLOUDFLARE_PROPAGATION_TIMEOUT_MS = 120_000;
const CLOUDFLARE_PROPAGATION_INTERVAL_MS = 2_000;

/** Cloudflare DNS through its v4 REST API with a scoped API token (Zone:Read, DNS:Edit). */
export const cloudflareDefinition: ProviderDefinition = {
  code: 'cloudflare',
  aliases: ['cf'],
  title: 'Cloudflare',
  description:
    'Cloudflare DNS through the v4 API. Use an API token limited to Zone:Read and DNS:Edit on the zones concerned ' +
    '(not the global API key). See docs/providers/cloudflare.md.',
  options: {
    apiToken: {
      doc: 'API token with Zone:Read and DNS:Edit permissions.',
      format: 'string',
      required: true,
      sensitive: true,
      env: 'CLOUDFLARE_DNS_API_TOKEN',
    },
    zoneId: {
      doc: 'Zone id to write into. Default: looked up by name (the deepest zone containing the record), which needs Zone:Read.',
      format: 'string',
    },
    baseUrl: { doc: 'API base URL (tests, proxies).', format: 'url', default: CLOUDFLARE_API_BASE },
    maxRetries: {
      doc: 'Retries after 429 Too Many Requests or a 5xx answer (waiting Retry-After, capped).',
      format: 'nat',
      default: CLOUDFLARE_DEFAULT_MAX_RETRIES,
    },
  },
  defaults: {
    // Cloudflare's minimum TTL outside Enterprise plans.
    ttl: 60,
    propagationTimeoutMs: CLOUDFLARE_PROPAGATION_TIMEOUT_MS,
    propagationIntervalMs: CLOUDFLARE_PROPAGATION_INTERVAL_MS,
    // An API call with the SDK's own retries needs more than a DNS query's 5 s: a call cut short
    // may still land after we gave up, and its value would escape the cleanup.
    requestTimeoutMs: 30_000,
  },
  example: ['type: cloudflare', 'apiToken_file: /etc/certpilot/cloudflare.token'].join('\n'),
  validate(options) {
    const problems: [string, string][] = [];
    if (
      typeof options.zoneId === 'string' &&
      options.zoneId !== '' &&
      !/^[0-9a-f]{32}$/i.test(options.zoneId)
    ) {
      problems.push(['zoneId', 'a Cloudflare zone id is 32 hexadecimal characters']);
    }
    return problems;
  },
  create(options, ctx) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { CloudflareProvider } = require('./provider') as typeof import('./provider');
    return new CloudflareProvider(options, ctx);
  },
};
