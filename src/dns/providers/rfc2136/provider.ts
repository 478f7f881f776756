import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { raceSignal, throwIfAborted } from '../../../core/abort';
import { CertpilotError, describeError } from '../../../core/errors';
import { normalizeName, toFqdn } from '../../names';
import { type DnsProvider, type ProviderContext, type TxtRecord, NOTHING_WRITTEN } from '../../provider';
import { type TsigKey, decodeTsigSecret, isTsigAlgorithm } from '../../tsig';
import {
  type DnsServer,
  type Protocol,
  type TxtUpdate,
  DNS_PORT,
  formatServer,
  parseServer,
  sendUpdate,
} from '../../wire';

/**
 * RFC 2136 dynamic updates signed with TSIG, sent to the zone's primary. Appending and deleting
 * single values map one-to-one onto the protocol: an "add" of a value already present is a
 * no-op and a class-NONE delete of an absent value is a no-op (RFC 2136 section 3.4.2), and the
 * server applies each UPDATE atomically, so concurrent calls on one name need no locking here.
 */

interface Rfc2136Options {
  readonly server: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly tsig: TsigKey;
}

function parseOptions(options: Readonly<Record<string, unknown>>, instance: string): Rfc2136Options {
  const problems: string[] = [];
  const str = (key: string): string | undefined => {
    const v = options[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') problems.push(`${key} must be a string`);
    return typeof v === 'string' ? v.trim() : undefined;
  };
  const server = str('server');
  if (!server) problems.push('server is required');
  const portRaw = options.port ?? DNS_PORT;
  const port = typeof portRaw === 'string' ? Number(portRaw) : portRaw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    problems.push('port must be 1-65535');
  const protocol = str('protocol') ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') problems.push('protocol must be "tcp" or "udp"');
  const keyName = str('tsigKeyName');
  if (!keyName) problems.push('tsigKeyName is required');
  const algorithm = (str('tsigAlgorithm') ?? 'hmac-sha256').toLowerCase();
  if (!isTsigAlgorithm(algorithm)) problems.push(`tsigAlgorithm "${algorithm}" is not supported`);
  const secret = str('tsigSecret');
  if (!secret) problems.push('tsigSecret is required');
  else {
    try {
      decodeTsigSecret(secret);
    } catch {
      problems.push('tsigSecret is not valid base64');
    }
  }
  if (problems.length > 0 || !server || !keyName || !secret || !isTsigAlgorithm(algorithm)) {
    throw new CertpilotError('CONFIG_INVALID', `rfc2136: provider "${instance}": ${problems.join('; ')}`);
  }
  return {
    server,
    port: port as number,
    protocol: protocol as Protocol,
    tsig: { name: keyName, algorithm, secret },
  };
}

export class Rfc2136Provider implements DnsProvider {
  private readonly opts: Rfc2136Options;
  private readonly ctx: ProviderContext;

  constructor(options: Readonly<Record<string, unknown>>, ctx: ProviderContext) {
    this.opts = parseOptions(options, ctx.instance);
    this.ctx = ctx;
  }

  async appendRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    const updates = records.map((r): TxtUpdate => ({
      action: 'add',
      name: toFqdn(r.name, zone),
      value: r.value,
      ttl: r.ttl,
    }));
    await this.update(zone, updates, signal);
    return records;
  }

  async deleteRecords(
    zone: string,
    records: readonly TxtRecord[],
    signal: AbortSignal,
  ): Promise<readonly TxtRecord[]> {
    // Always with a value: a value-less delete would remove the whole RRset, including values
    // this call was not given.
    const updates = records.map((r): TxtUpdate => ({
      action: 'delete',
      name: toFqdn(r.name, zone),
      value: r.value,
    }));
    await this.update(zone, updates, signal);
    return records;
  }

  private async update(zone: string, updates: readonly TxtUpdate[], signal: AbortSignal): Promise<void> {
    throwIfAborted(signal, 'rfc2136');
    if (updates.length === 0) return;
    const server = await this.resolveServer(signal);
    const z = normalizeName(zone);
    const started = Date.now();
    await sendUpdate({
      server,
      zone: z,
      updates,
      tsig: this.opts.tsig,
      signal,
      timeoutMs: this.ctx.requestTimeoutMs,
      protocol: this.opts.protocol,
    });
    this.ctx.log.debug('rfc2136 update applied', {
      zone: z,
      server: formatServer(server),
      adds: updates.filter((u) => u.action === 'add').length,
      deletes: updates.filter((u) => u.action === 'delete').length,
      ms: Date.now() - started,
    });
  }

  /**
   * IP literals are used as they are. A host name goes through the configured resolvers when
   * there are any (never the system's: queries must not leave for a resolver the user did not
   * name), else through getaddrinfo like any other program on the host.
   */
  private async resolveServer(signal: AbortSignal): Promise<DnsServer> {
    const parsed = parseServer(this.opts.server, this.opts.port);
    if (net.isIP(parsed.host)) return parsed;
    const resolveHost = this.ctx.resolveHost;
    const via = resolveHost ? 'the configured resolvers' : 'the system resolver';
    try {
      const addresses = resolveHost
        ? await resolveHost(parsed.host, signal)
        : // getaddrinfo cannot be cancelled; stop waiting for it when the signal fires.
          [(await raceSignal(lookup(parsed.host), signal, 'rfc2136')).address];
      if (addresses.length === 0) throw new Error('no A or AAAA record');
      return { host: addresses[0], port: parsed.port };
    } catch (err) {
      if (err instanceof CertpilotError && (err.code === 'ABORTED' || err.code === 'TIMEOUT')) throw err;
      throw new CertpilotError(
        'DNS_UPDATE_FAILED',
        `rfc2136: cannot resolve server ${parsed.host} through ${via}: ${describeError(err)}`,
        {
          cause: err,
          retryable: true,
          details: { server: parsed.host, [NOTHING_WRITTEN]: true },
        },
      );
    }
  }
}
