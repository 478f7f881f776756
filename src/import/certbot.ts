import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors';
import { certificateFiles, jwkToPkcs8, keyTypeOf, parseIni, readOptional, readText } from './files';
import {
  toCertificateName,
  type ImportedAccount,
  type ImportedCertificate,
  type ImportedHooks,
  type ImportedProvider,
  type ImportSource,
} from './types';

/**
 * certbot's configuration directory (default /etc/letsencrypt):
 *   renewal/<lineage>.conf    paths of the live files, [renewalparams]: server, account,
 *                             authenticator and its settings, key_type, reuse_key, hooks;
 *   live/<lineage>/*.pem      symlinks to the current version in archive/;
 *   accounts/<server host>/<server path>/<id>/private_key.json (a JWK), regr.json ("uri").
 * The domains are read from the certificate itself: certbot's own record of them is the
 * certificate too.
 */

export const CERTBOT_DEFAULT_DIR = '/etc/letsencrypt';
/** certbot's default server when the renewal configuration names none. */
const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export async function readCertbot(dir: string, names: readonly string[]): Promise<ImportSource> {
  const renewalDir = path.join(dir, 'renewal');
  let entries: string[];
  try {
    entries = (await readdir(renewalDir)).filter((f) => f.endsWith('.conf')).sort();
  } catch {
    throw new UsageError(
      `certpilot import certbot: ${renewalDir} is not readable (is ${dir} certbot's --config-dir?)`,
    );
  }
  const lineages = entries.map((f) => f.slice(0, -'.conf'.length));
  const unknown = names.filter((n) => !lineages.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `certpilot import certbot: no lineage ${unknown.map((n) => `"${n}"`).join(', ')} in ${renewalDir}`,
    );
  }
  const certificates: ImportedCertificate[] = [];
  const accountIds = new Map<string, string>();
  for (const lineage of lineages.filter((l) => names.length === 0 || names.includes(l))) {
    const conf = parseIni(
      await readText(path.join(renewalDir, `${lineage}.conf`), 'certbot renewal configuration'),
    );
    certificates.push(await readLineage(dir, lineage, conf));
    const account = conf.get('account');
    if (account) accountIds.set(account, conf.get('server') ?? LETSENCRYPT_DIRECTORY);
  }
  const accounts: ImportedAccount[] = [];
  const notes: string[] = [];
  for (const [id, server] of accountIds) {
    const account = await readAccount(dir, id, server);
    if (account) accounts.push(account);
    else
      notes.push(
        `certbot account ${id} (${server}) not found under ${path.join(dir, 'accounts')}: certpilot will register a new one`,
      );
  }
  notes.push(...(await hookDirNotes(dir)));
  return { tool: 'certbot', certificates, accounts, notes };
}

async function readLineage(
  dir: string,
  lineage: string,
  conf: Map<string, string>,
): Promise<ImportedCertificate> {
  const live = path.join(dir, 'live', lineage);
  // The renewal configuration's paths, unless the directory was moved (then they point nowhere).
  const at = async (key: string, file: string, what: string): Promise<string> =>
    (await readOptional(conf.get(key) ?? '', what).catch(() => null)) ??
    readText(path.join(live, file), what);
  const [cert, chain, key] = await Promise.all([
    at('cert', 'cert.pem', 'certificate'),
    at('chain', 'chain.pem', 'chain'),
    at('privkey', 'privkey.pem', 'private key'),
  ]);
  const { files, info } = certificateFiles(cert, chain, key, live);
  const notes: string[] = [];
  const provider = await mapAuthenticator(conf, notes);
  const hooks: ImportedHooks = { pre: [], deploy: [], post: [] };
  const pre = conf.get('pre_hook');
  const post = conf.get('post_hook');
  const deploy = conf.get('renew_hook') ?? conf.get('deploy_hook');
  if (pre) hooks.pre.push(pre);
  if (post) hooks.post.push(post);
  // certbot tells a deploy hook what renewed through RENEWED_LINEAGE and RENEWED_DOMAINS; the
  // same values from certpilot's variables keep an existing script working unchanged.
  if (deploy) {
    hooks.deploy.push(
      'RENEWED_LINEAGE="$(dirname "$CERTPILOT_FULLCHAIN_PATH")" RENEWED_DOMAINS="$CERTPILOT_DOMAINS"; ' +
        `export RENEWED_LINEAGE RENEWED_DOMAINS; ${deploy}`,
    );
  }
  const keyType = keyTypeOf(info);
  if (!keyType) notes.push(`key type ${info.keyType} is not one certpilot orders: the default applies`);
  return {
    name: toCertificateName(lineage),
    sourceName: lineage,
    from: live,
    directoryUrl: conf.get('server') ?? LETSENCRYPT_DIRECTORY,
    files,
    info,
    keyType,
    reuseKey: /^true$/i.test(conf.get('reuse_key') ?? ''),
    provider,
    hooks,
    notes,
  };
}

/** certbot's DNS plugins that have a certpilot provider; anything else is noted, not guessed. */
async function mapAuthenticator(
  conf: Map<string, string>,
  notes: string[],
): Promise<ImportedProvider | undefined> {
  const authenticator = conf.get('authenticator') ?? '';
  switch (authenticator) {
    case 'dns-rfc2136': {
      const file = conf.get('dns_rfc2136_credentials');
      if (!file) break;
      const c = parseIni(await readText(file, 'certbot rfc2136 credentials'));
      const secret = c.get('dns_rfc2136_secret');
      if (!c.get('dns_rfc2136_server') || !c.get('dns_rfc2136_name') || !secret) {
        notes.push(`${file} lacks dns_rfc2136_server, _name or _secret: no DNS provider imported`);
        return undefined;
      }
      return {
        type: 'rfc2136',
        options: {
          server: c.get('dns_rfc2136_server'),
          port: Number(c.get('dns_rfc2136_port') ?? 53),
          tsigKeyName: c.get('dns_rfc2136_name')!.replace(/\.$/, ''),
          tsigAlgorithm: (c.get('dns_rfc2136_algorithm') ?? 'hmac-md5').toLowerCase().replace(/\.$/, ''),
        },
        secret: { option: 'tsigSecret', value: secret },
        from: file,
      };
    }
    case 'dns-route53':
      // The plugin takes its credentials from the AWS SDK chain, as certpilot's provider does.
      return { type: 'route53', options: {}, from: 'the AWS credential chain' };
    case 'dns-cloudflare': {
      const file = conf.get('dns_cloudflare_credentials');
      const c = file
        ? parseIni(await readText(file, 'certbot cloudflare credentials'))
        : new Map<string, string>();
      const token = c.get('dns_cloudflare_api_token');
      if (file && token)
        return { type: 'cloudflare', options: {}, secret: { option: 'apiToken', value: token }, from: file };
      notes.push(
        'cloudflare with the global API key: certpilot needs a scoped API token (apiToken); no DNS provider imported',
      );
      return undefined;
    }
  }
  notes.push(
    `authenticator "${authenticator || 'none'}" has no certpilot DNS provider: set dns.provider for this certificate`,
  );
  return undefined;
}

async function readAccount(dir: string, id: string, server: string): Promise<ImportedAccount | undefined> {
  const accountDir = await findDir(path.join(dir, 'accounts'), id, 4);
  if (!accountDir) return undefined;
  const keyFile = path.join(accountDir, 'private_key.json');
  const keyPem = jwkToPkcs8(await readText(keyFile, 'certbot account key'), keyFile);
  const regr = JSON.parse(await readText(path.join(accountDir, 'regr.json'), 'certbot account')) as {
    uri?: string;
    body?: { contact?: string[] };
  };
  if (!regr.uri) return undefined;
  const meta = JSON.parse(
    (await readOptional(path.join(accountDir, 'meta.json'), 'certbot account')) ?? '{}',
  ) as {
    creation_dt?: string;
  };
  const email = regr.body?.contact?.find((c) => c.startsWith('mailto:'))?.slice('mailto:'.length);
  return {
    directoryUrl: server,
    url: regr.uri,
    keyPem,
    ...(email ? { email } : {}),
    ...(meta.creation_dt ? { createdAt: new Date(meta.creation_dt).toISOString() } : {}),
    from: accountDir,
  };
}

/** The account directory named `id` somewhere below accounts/ (its depth follows the server URL). */
async function findDir(root: string, id: string, depth: number): Promise<string | undefined> {
  if (depth < 0) return undefined;
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries.filter((d) => d.isDirectory())) {
    if (e.name === id) return path.join(root, e.name);
    const found = await findDir(path.join(root, e.name), id, depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** certbot runs the programs in renewal-hooks/{pre,deploy,post} for every lineage. */
async function hookDirNotes(dir: string): Promise<string[]> {
  const notes: string[] = [];
  for (const kind of ['pre', 'deploy', 'post']) {
    const files = await readdir(path.join(dir, 'renewal-hooks', kind)).catch(() => [] as string[]);
    if (files.length > 0) {
      notes.push(
        `certbot runs ${files.map((f) => path.join(dir, 'renewal-hooks', kind, f)).join(', ')} as ${kind} hooks of every certificate: add them to hooks.${kind} if still needed`,
      );
    }
  }
  return notes;
}
