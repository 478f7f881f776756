import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors';
import { certificateFiles, keyTypeOf, readOptional, readText, toPkcs8 } from './files';
import {
  toCertificateName,
  type ImportedAccount,
  type ImportedCertificate,
  type ImportedProvider,
  type ImportedProviderType,
  type ImportSource,
} from './types';

/**
 * lego's --path directory (default ./.lego):
 *   accounts/<CA host_port>/<email>/account.json ("registration.uri"), keys/<email>.key (PEM);
 *   certificates/<domain>.crt (the bundle unless --no-bundle), .issuer.crt, .key, .json (certUrl).
 * lego records neither the directory URL (only its host) nor the DNS provider and its settings
 * (they were flags and environment): the directory comes from --ca or the configuration, the
 * provider from --provider and the same environment lego ran with.
 */

export interface LegoOptions {
  /** The ACME directory URL, when known (--ca, the configuration). */
  directoryUrl?: string;
  /** certpilot provider type for lego's --dns; guessed from the environment when absent. */
  provider?: string;
  env: NodeJS.ProcessEnv;
}

const KNOWN_DIRECTORIES: Record<string, string> = {
  'acme-v02.api.letsencrypt.org': 'https://acme-v02.api.letsencrypt.org/directory',
  'acme-staging-v02.api.letsencrypt.org': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

/** lego's name for a CA's account folder: the URL's host with ':' as '_'. */
function legoHostDir(url: string): string {
  return new URL(url).host.replace(/:/g, '_');
}

export async function readLego(
  dir: string,
  names: readonly string[],
  opts: LegoOptions,
): Promise<ImportSource> {
  const hosts = await readdir(path.join(dir, 'accounts')).catch(() => [] as string[]);
  const directoryUrl = opts.directoryUrl ?? (hosts.length === 1 ? KNOWN_DIRECTORIES[hosts[0]!] : undefined);
  if (!directoryUrl) {
    throw new UsageError(
      `certpilot import lego: lego does not record the ACME directory URL; pass --ca URL (accounts in ${path.join(dir, 'accounts')}: ${hosts.join(', ') || 'none'})`,
    );
  }
  const notes: string[] = [];
  const accounts = await readAccounts(dir, directoryUrl, notes);
  const certificates = await readCertificates(dir, names, directoryUrl, notes);
  const provider = await legoProvider(opts, notes);
  for (const c of certificates) c.provider = provider;
  return { tool: 'lego', certificates, accounts, notes };
}

async function readAccounts(dir: string, directoryUrl: string, notes: string[]): Promise<ImportedAccount[]> {
  const hostDir = path.join(dir, 'accounts', legoHostDir(directoryUrl));
  const emails = (await readdir(hostDir).catch(() => [] as string[])).sort();
  if (emails.length === 0) {
    notes.push(`no lego account for ${directoryUrl} in ${hostDir}: certpilot will register a new one`);
    return [];
  }
  if (emails.length > 1) notes.push(`several lego accounts in ${hostDir}; importing ${emails[0]}`);
  const email = emails[0]!;
  const accountDir = path.join(hostDir, email);
  const account = JSON.parse(await readText(path.join(accountDir, 'account.json'), 'lego account')) as {
    email?: string;
    registration?: { uri?: string };
  };
  const keyFile = path.join(accountDir, 'keys', `${email}.key`);
  const uri = account.registration?.uri;
  if (!uri) {
    notes.push(`${accountDir}/account.json has no registration.uri: certpilot will register a new account`);
    return [];
  }
  const keyPem = toPkcs8(await readText(keyFile, 'lego account key'), keyFile);
  return [
    { directoryUrl, url: uri, keyPem, ...(account.email ? { email: account.email } : {}), from: accountDir },
  ];
}

async function readCertificates(
  dir: string,
  names: readonly string[],
  directoryUrl: string,
  notes: string[],
): Promise<ImportedCertificate[]> {
  const certDir = path.join(dir, 'certificates');
  const files = await readdir(certDir).catch(() => {
    throw new UsageError(`certpilot import lego: ${certDir} is not readable (is ${dir} lego's --path?)`);
  });
  const domains = files
    .filter((f) => f.endsWith('.crt') && !f.endsWith('.issuer.crt'))
    .map((f) => f.slice(0, -'.crt'.length))
    .sort();
  const unknown = names.filter((n) => !domains.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `certpilot import lego: no certificate ${unknown.map((n) => `"${n}"`).join(', ')} in ${certDir}`,
    );
  }
  const caHost = new URL(directoryUrl).host;
  const out: ImportedCertificate[] = [];
  for (const domain of domains.filter((d) => names.length === 0 || names.includes(d))) {
    const base = path.join(certDir, domain);
    const meta = JSON.parse((await readOptional(`${base}.json`, 'lego certificate metadata')) ?? '{}') as {
      certUrl?: string;
    };
    if (meta.certUrl && new URL(meta.certUrl).host !== caHost) {
      notes.push(`${base}.crt was issued by ${new URL(meta.certUrl).host}, not ${caHost}: skipped`);
      continue;
    }
    const [crt, issuer, key] = await Promise.all([
      readText(`${base}.crt`, 'certificate'),
      readOptional(`${base}.issuer.crt`, 'issuer certificate'),
      readText(`${base}.key`, 'private key'),
    ]);
    const { files: pem, info } = certificateFiles(crt, issuer ?? '', key, `${base}.crt`);
    const keyType = keyTypeOf(info);
    out.push({
      // lego writes a wildcard's file as _.example.com.
      name: toCertificateName(domain.replace(/^_\./, 'wildcard.')),
      sourceName: domain,
      from: `${base}.crt`,
      directoryUrl,
      files: pem,
      info,
      keyType,
      reuseKey: false,
      hooks: { pre: [], deploy: [], post: [] },
      notes: keyType ? [] : [`key type ${info.keyType} is not one certpilot orders: the default applies`],
    });
  }
  return out;
}

/** lego's variables, or their _FILE form (lego reads both). */
async function envValue(env: NodeJS.ProcessEnv, name: string): Promise<string | undefined> {
  if (env[name]) return env[name];
  const file = env[`${name}_FILE`];
  return file ? (await readText(file, `${name}_FILE`)).trim() : undefined;
}

const PROVIDER_ENV: Record<ImportedProviderType, string> = {
  rfc2136: 'RFC2136_NAMESERVER',
  cloudflare: 'CLOUDFLARE_DNS_API_TOKEN',
  route53: 'AWS_REGION',
};

function guessProvider(env: NodeJS.ProcessEnv): ImportedProviderType | undefined {
  const found = (Object.keys(PROVIDER_ENV) as ImportedProviderType[]).filter(
    (t) =>
      env[PROVIDER_ENV[t]] || env[`${PROVIDER_ENV[t]}_FILE`] || (t === 'cloudflare' && env.CF_DNS_API_TOKEN),
  );
  return found.length === 1 ? found[0] : undefined;
}

/** lego's RFC2136_NAMESERVER: host, host:port, [v6]:port or a bare IPv6 address. */
function splitHostPort(value: string): { host: string; port: number } {
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(value);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : 53 };
  const parts = value.split(':');
  return parts.length === 2 ? { host: parts[0]!, port: Number(parts[1]) } : { host: value, port: 53 };
}

/** lego's --dns provider from the environment it ran with (lego itself records none of it). */
async function legoProvider(opts: LegoOptions, notes: string[]): Promise<ImportedProvider | undefined> {
  const { env } = opts;
  const type = opts.provider ?? guessProvider(env);
  switch (type) {
    case 'rfc2136': {
      const nameserver = env.RFC2136_NAMESERVER;
      const key = env.RFC2136_TSIG_KEY;
      const secret = await envValue(env, 'RFC2136_TSIG_SECRET');
      if (!nameserver || !key || !secret) {
        notes.push(
          'rfc2136: RFC2136_NAMESERVER, RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET must be set as for lego',
        );
        return undefined;
      }
      const { host, port } = splitHostPort(nameserver);
      const algorithm = (env.RFC2136_TSIG_ALGORITHM ?? 'hmac-md5.sig-alg.reg.int.')
        .toLowerCase()
        .replace(/\.$/, '');
      return {
        type: 'rfc2136',
        options: {
          server: host,
          port,
          tsigKeyName: key.replace(/\.$/, ''),
          tsigAlgorithm: algorithm,
        },
        secret: { option: 'tsigSecret', value: secret },
        from: 'the environment (RFC2136_*)',
      };
    }
    case 'cloudflare': {
      const token =
        (await envValue(env, 'CLOUDFLARE_DNS_API_TOKEN')) ?? (await envValue(env, 'CF_DNS_API_TOKEN'));
      if (!token) {
        notes.push(
          'cloudflare: certpilot needs a scoped API token (CLOUDFLARE_DNS_API_TOKEN); no DNS provider imported',
        );
        return undefined;
      }
      return {
        type: 'cloudflare',
        options: {},
        secret: { option: 'apiToken', value: token },
        from: 'the environment (CLOUDFLARE_DNS_API_TOKEN)',
      };
    }
    case 'route53': {
      const options: Record<string, unknown> = {};
      if (env.AWS_REGION) options.region = env.AWS_REGION;
      if (env.AWS_PROFILE) options.profile = env.AWS_PROFILE;
      if (env.AWS_HOSTED_ZONE_ID) options.hostedZoneId = env.AWS_HOSTED_ZONE_ID;
      if (env.AWS_ACCESS_KEY_ID) {
        notes.push(
          'route53: static AWS keys are not copied; certpilot uses the AWS SDK chain (give it a profile or role)',
        );
      }
      return { type: 'route53', options, from: 'the environment (AWS_*)' };
    }
    case undefined:
      notes.push(
        'lego does not record its DNS provider: pass --provider rfc2136|route53|cloudflare with the environment lego ran with',
      );
      return undefined;
    default:
      throw new UsageError(
        `certpilot import lego: --provider must be rfc2136, route53 or cloudflare (got "${type}")`,
      );
  }
}
