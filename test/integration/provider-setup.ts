import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startCloudflareServer, type CloudflareTestServer } from '../helpers/cloudflare-server';
import { startRoute53Server, type Route53TestServer } from '../helpers/route53-server';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { createBindBackend, type BindBackend } from '../providers/bind-backend';

/**
 * A world for full issuances through the API providers: Pebble validating against a real BIND
 * serving example.test and other.test, plus the Route 53 and Cloudflare test servers, each
 * mirroring every committed change into that BIND (nsupdate), and recording every change it
 * mirrored (so a test can see what a record set held in between).
 */

export const ZONES = ['example.test', 'other.test'] as const;
export const R53_ZONES = [
  { id: 'Z1EXAMPLE', name: 'example.test' },
  { id: 'Z2OTHER', name: 'other.test' },
] as const;
export const FAKE_ACCESS_KEY = 'AKIAFAKEPROVIDERSIT';
export const CF_TOKEN = 'cf-test-token-providers-issue';
export const EXEC_HOOK = path.join(__dirname, '..', 'fixtures', 'exec', 'nsupdate-hook.sh');

/** Short propagation polling against the local BIND (the provider defaults are minutes). */
export const FAST_PROPAGATION = { propagationTimeout: '20s', propagationInterval: '100ms' };

/** One change mirrored into BIND: the full TXT set at `fqdn` afterwards (`[]` = gone). */
export interface MirroredChange {
  readonly zone: string;
  readonly zoneId?: string;
  readonly fqdn: string;
  readonly values: readonly string[];
}

export interface ProviderWorld {
  readonly tb: Testbed;
  readonly backend: BindBackend;
  readonly r53: Route53TestServer;
  readonly cf: CloudflareTestServer;
  readonly r53Changes: MirroredChange[];
  readonly cfChanges: MirroredChange[];
  route53Provider(extra?: Record<string, unknown>): Record<string, unknown>;
  cloudflareProvider(extra?: Record<string, unknown>): Record<string, unknown>;
  execProvider(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Values left at `fqdn` anywhere: BIND, the Route 53 server, the Cloudflare server. */
  leftovers(fqdns: readonly string[]): Promise<Record<string, string[]>>;
  stop(): Promise<void>;
}

export async function startProviderWorld(): Promise<ProviderWorld> {
  // The SDK must never look for real credentials or reach AWS.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  const tb = await startTestbed({ zones: ZONES.map((name) => ({ name })) });
  const r53Changes: MirroredChange[] = [];
  const cfChanges: MirroredChange[] = [];
  let backend: BindBackend | undefined;
  let r53: Route53TestServer | undefined;
  let cf: CloudflareTestServer | undefined;
  try {
    const b = await createBindBackend(tb.bind);
    backend = b;
    r53 = await startRoute53Server({
      zones: R53_ZONES,
      onChange: async (zone, fqdn, values, spec) => {
        r53Changes.push({ zone, zoneId: spec.id, fqdn, values: [...values] });
        await b.apply(zone, fqdn, values);
      },
      // INSYNC at the first GetChange: the provider's 5 s INSYNC poll would dominate the run.
      pendingPolls: 0,
    });
    cf = await startCloudflareServer({
      token: CF_TOKEN,
      zones: ZONES.map((name) => ({ name })),
      // Small pages: zone and record lookups go through pagination.
      maxPerPage: 1,
      onChange: async (zone, fqdn, values) => {
        cfChanges.push({ zone, fqdn, values: [...values] });
        await b.apply(zone, fqdn, values);
      },
    });
  } catch (err) {
    await cf?.stop();
    await r53?.stop();
    await backend?.close();
    await tb.stop();
    throw err;
  }
  const tokenFile = path.join(tb.dir, 'cloudflare.token');
  await writeFile(tokenFile, CF_TOKEN + '\n', { mode: 0o600 });
  const r53Server = r53;
  const cfServer = cf;
  const bindBackend = backend;
  return {
    tb,
    backend: bindBackend,
    r53: r53Server,
    cf: cfServer,
    r53Changes,
    cfChanges,
    route53Provider: (extra = {}) => ({
      type: 'route53',
      endpoint: r53Server.endpoint,
      region: 'us-east-1',
      accessKeyId: FAKE_ACCESS_KEY,
      secretAccessKey: 'fake-secret-access-key-providers-it',
      // hostedZoneId omitted: zones are discovered with ListHostedZonesByName.
      ...FAST_PROPAGATION,
      ...extra,
    }),
    cloudflareProvider: (extra = {}) => ({
      type: 'cloudflare',
      apiToken_file: tokenFile,
      baseUrl: cfServer.baseUrl,
      ...FAST_PROPAGATION,
      ...extra,
    }),
    execProvider: (extra = {}) => ({
      type: 'exec',
      command: EXEC_HOOK,
      args: [bindBackend.keyFile, String(tb.bind.port)],
      timeout: 20,
      ...FAST_PROPAGATION,
      ...extra,
    }),
    async leftovers(fqdns) {
      const out: Record<string, string[]> = {};
      for (const fqdn of fqdns) {
        const values = [...(await tb.bind.queryTxt(fqdn)), ...r53Server.txt(fqdn), ...cfServer.txt(fqdn)];
        if (values.length > 0) out[fqdn] = values;
      }
      return out;
    },
    async stop() {
      await Promise.allSettled([r53Server.stop(), cfServer.stop()]);
      await bindBackend.close();
      await tb.stop();
    },
  };
}

export function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^DNS:/, ''))
    .sort();
}

/**
 * The stored certificate `name` holds exactly `domains`, matches its key, and chains through
 * the stored intermediate to Pebble's issuing root. Returns the leaf.
 */
export async function expectIssued(
  tb: Testbed,
  stateDir: string,
  name: string,
  domains: readonly string[],
): Promise<X509Certificate> {
  const dir = path.join(stateDir, 'certs', name);
  const [leafPem, chainPem, keyPem, rootPem] = await Promise.all([
    readFile(path.join(dir, 'cert.pem'), 'utf8'),
    readFile(path.join(dir, 'chain.pem'), 'utf8'),
    readFile(path.join(dir, 'privkey.pem'), 'utf8'),
    tb.pebble.issuingRoot(),
  ]);
  const leaf = new X509Certificate(leafPem);
  const intermediate = new X509Certificate(chainPem);
  const root = new X509Certificate(rootPem);
  expect(sanNames(leaf)).toEqual([...domains].sort());
  expect(leaf.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
  expect(leaf.checkIssued(intermediate)).toBe(true);
  expect(leaf.verify(intermediate.publicKey)).toBe(true);
  expect(intermediate.checkIssued(root)).toBe(true);
  expect(intermediate.verify(root.publicKey)).toBe(true);
  return leaf;
}

/** `_acme-challenge.<name>` for each domain (a wildcard shares its base name's). */
export function challengeNames(domains: readonly string[]): string[] {
  return [...new Set(domains.map((d) => `_acme-challenge.${d.replace(/^\*\./, '')}`))];
}
