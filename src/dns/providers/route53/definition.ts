import type { ProviderDefinition } from '../../provider';
import { ROUTE53_DEFAULT_MAX_RETRIES } from './options';

/** Route 53 answers INSYNC usually within a minute; authoritative servers follow shortly after. */
const ROUTE53_PROPAGATION_TIMEOUT_MS = 180_000;
/** Route 53's control plane is rate limited (5 requests/s per account); polling DNS is not, but stay polite. */
const ROUTE53_PROPAGATION_INTERVAL_MS = 4_000;

const HOSTED_ZONE_ID = /^(\/hostedzone\/)?[A-Z0-9]{1,32}$/;

/** Amazon Route 53 through the official AWS SDK v3 (loaded only when an instance is created). */
export const route53Definition: ProviderDefinition = {
  code: 'route53',
  aliases: ['aws', 'aws-route53'],
  title: 'Amazon Route 53',
  description:
    'Amazon Route 53 hosted zones through the AWS SDK. Credentials come from the options or the SDK default chain ' +
    '(environment, shared config/credentials files with profile, SSO, web identity, container and instance roles); ' +
    'an optional role is assumed through STS. See docs/providers/route53.md for the least-privilege IAM policy.',
  options: {
    region: {
      doc: 'AWS region used to sign requests (Route 53 is global; us-east-1 is its signing region).',
      format: 'string',
      default: 'us-east-1',
    },
    profile: { doc: 'Named profile from the shared AWS config/credentials files.', format: 'string' },
    accessKeyId: {
      doc: 'Static access key id. Prefer the SDK default chain (instance/container roles, SSO, profiles).',
      format: 'string',
      sensitive: true,
    },
    secretAccessKey: {
      doc: 'Static secret access key (with accessKeyId).',
      format: 'string',
      sensitive: true,
    },
    sessionToken: {
      doc: 'Session token for temporary static credentials.',
      format: 'string',
      sensitive: true,
    },
    roleArn: { doc: 'IAM role to assume through STS before calling Route 53.', format: 'string' },
    externalId: { doc: 'External id required by the role trust policy (with roleArn).', format: 'string' },
    sessionName: {
      doc: 'Role session name shown in CloudTrail (with roleArn).',
      format: 'string',
      default: 'certpilot',
    },
    stsEndpoint: {
      doc: 'STS endpoint URL for roleArn (VPC endpoints, tests). Default: the regional STS endpoint.',
      format: 'url',
    },
    endpoint: {
      doc: 'Route 53 API endpoint URL (VPC endpoints, tests). Default: the public endpoint.',
      format: 'url',
    },
    hostedZoneId: {
      doc: 'Hosted zone id to write into (e.g. Z0123456789ABC). Default: the deepest hosted zone containing the record name.',
      format: 'string',
    },
    privateZone: {
      doc: 'Use private hosted zones (preferred over a public zone of the same name). Default: private zones are skipped.',
      format: 'boolean',
      default: false,
    },
    maxRetries: {
      doc: "Retries of a throttled or failed request on top of the SDK's own 3 attempts (exponential backoff, full jitter).",
      format: 'nat',
      default: ROUTE53_DEFAULT_MAX_RETRIES,
    },
  },
  defaults: {
    ttl: 60,
    propagationTimeoutMs: ROUTE53_PROPAGATION_TIMEOUT_MS,
    propagationIntervalMs: ROUTE53_PROPAGATION_INTERVAL_MS,
    // An API call with the SDK's own retries needs more than a DNS query's 5 s: a call cut short
    // may still land after we gave up, and its value would escape the cleanup.
    requestTimeoutMs: 30_000,
  },
  example: [
    'type: route53',
    'region: us-east-1',
    '# credentials: SDK default chain (instance role, AWS_PROFILE, SSO, ...)',
    'roleArn: arn:aws:iam::123456789012:role/certpilot-dns',
  ].join('\n'),
  validate(options) {
    const problems: [string, string][] = [];
    const has = (k: string): boolean => options[k] !== undefined && options[k] !== null && options[k] !== '';
    if (has('accessKeyId') !== has('secretAccessKey')) {
      problems.push([
        has('accessKeyId') ? 'secretAccessKey' : 'accessKeyId',
        'accessKeyId and secretAccessKey go together',
      ]);
    }
    if (has('sessionToken') && !has('accessKeyId')) {
      problems.push(['sessionToken', 'needs accessKeyId and secretAccessKey']);
    }
    if (has('profile') && has('accessKeyId')) {
      problems.push(['profile', 'give either a profile or static keys, not both']);
    }
    if (has('externalId') && !has('roleArn')) problems.push(['externalId', 'only used with roleArn']);
    if (has('stsEndpoint') && !has('roleArn')) problems.push(['stsEndpoint', 'only used with roleArn']);
    if (has('roleArn') && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/.test(String(options.roleArn))) {
      problems.push(['roleArn', `not an IAM role ARN: "${String(options.roleArn)}"`]);
    }
    if (has('hostedZoneId') && !HOSTED_ZONE_ID.test(String(options.hostedZoneId))) {
      problems.push(['hostedZoneId', `not a hosted zone id: "${String(options.hostedZoneId)}"`]);
    }
    return problems;
  },
  create(options, ctx) {
    // Loaded lazily: the AWS SDK is large, and listing providers or validating config must not load it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Route53Provider } = require('./provider') as typeof import('./provider');
    return new Route53Provider(options, ctx);
  },
};
