import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { query } from '../../src/dns/wire';

export interface Unbound {
  port: number;
  address: string;
  stop(): Promise<void>;
}

/**
 * A real recursive resolver (Debian `unbound`) on a free loopback port, with stub zones that
 * point at the test BIND. Pebble's validator and an authoritative-only BIND do not follow
 * CNAMEs across zones; a recursive resolver in front of Pebble does, as public resolvers do
 * for real CAs. Caching is cut to a second so changing TXT values are seen.
 */
export async function startUnbound(opts: { zones: string[]; upstream: string }): Promise<Unbound> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-unbound-'));
  const port = await freePort();
  const stubs = opts.zones
    .map((z) => `stub-zone:\n  name: "${z}"\n  stub-addr: ${opts.upstream.replace(':', '@')}\n`)
    .join('');
  const conf = [
    'server:',
    `  interface: 127.0.0.1@${port}`,
    '  port: ' + port,
    '  do-ip6: no',
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${path.join(dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  access-control: 127.0.0.0/8 allow',
    // The stubs live on 127.0.0.1: unbound refuses to query localhost unless told.
    '  do-not-query-localhost: no',
    // Test zones are unsigned and there is no root to validate against.
    '  module-config: "iterator"',
    '  cache-max-ttl: 1',
    '  cache-max-negative-ttl: 1',
    '  infra-host-ttl: 1',
    ...opts.zones.map((z) => `  domain-insecure: "${z}"`),
    // unbound answers special-use TLDs (RFC 6761: test, invalid, localhost) itself by default.
    ...[...new Set(opts.zones.map((z) => z.split('.').pop()!))].map(
      (tld) => `  local-zone: "${tld}." nodefault`,
    ),
    '',
    stubs,
    'remote-control:',
    '  control-enable: no',
  ].join('\n');
  const confPath = path.join(dir, 'unbound.conf');
  await writeFile(confPath, conf + '\n');

  const child: ChildProcess = spawn('/usr/sbin/unbound', ['-d', '-c', confPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Ready when it answers a query (unbound prints nothing reliable on start at verbosity 1).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`unbound exited before it was ready:\n${output}`);
    try {
      await query({
        server: { host: '127.0.0.1', port },
        name: opts.zones[0]!,
        type: 'SOA',
        recursionDesired: true,
        signal: AbortSignal.timeout(500),
        timeoutMs: 500,
      });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`unbound not answering on 127.0.0.1:${port}: ${String(err)}\n${output}`, {
          cause: err,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    port,
    address: '127.0.0.1',
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
