import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { run } from '../../src/cli/main';
import { startBind, type BindServer } from './bind';
import { startPebble, type Pebble, type PebbleOptions } from './pebble';
import { startUnbound, type Unbound } from './unbound';

/**
 * A real local ACME world: BIND (authoritative for the test zones, RFC 2136 + TSIG) and Pebble
 * validating against it. Shared by integration tests, the demo and the benchmarks.
 */
export interface Testbed {
  bind: BindServer;
  pebble: Pebble;
  /** Present when started with `recursive: true`: Pebble validates through it. */
  unbound?: Unbound;
  dir: string;
  /** rfc2136 provider options for the test BIND, with overrides (e.g. `zones`). */
  bindProvider(overrides?: Record<string, unknown>): Record<string, unknown>;
  /**
   * Writes a config with the given certificates and returns its path. `extra` top-level keys
   * replace the defaults; `providers` replaces the single default `bind` provider instance.
   */
  writeConfig(
    certificates: unknown[],
    extra?: Record<string, unknown>,
    providers?: Record<string, unknown>,
  ): Promise<string>;
  stop(): Promise<void>;
}

export interface TestbedOptions {
  zones?: Parameters<typeof startBind>[0]['zones'];
  certificateValidityPeriod?: number;
  /**
   * Put a recursive resolver (unbound) between Pebble and BIND, so the CA's lookups follow
   * CNAMEs across zones as a real CA's do.
   */
  recursive?: boolean;
  /** Further Pebble options (EAB keys, environment such as PEBBLE_ALTERNATE_ROOTS). */
  pebble?: Pick<PebbleOptions, 'eabKeys' | 'env' | 'extraSans'>;
}

/** example.test with a delegated child zone sub.example.test (a real zone cut). */
export const DEFAULT_ZONES = [{ name: 'example.test' }, { name: 'sub.example.test' }];

export async function startTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  const zones = opts.zones ?? DEFAULT_ZONES;
  const bind = await startBind({ zones });
  let pebble: Pebble;
  let unbound: Unbound | undefined;
  try {
    if (opts.recursive) {
      unbound = await startUnbound({ zones: zones.map((z) => z.name), upstream: `127.0.0.1:${bind.port}` });
    }
    pebble = await startPebble({
      dnsServer: `127.0.0.1:${unbound ? unbound.port : bind.port}`,
      certificateValidityPeriod: opts.certificateValidityPeriod,
      ...opts.pebble,
    });
  } catch (err) {
    await unbound?.stop();
    await bind.stop();
    throw err;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-it-'));
  const secretFile = path.join(dir, 'tsig.secret');
  await writeFile(secretFile, bind.tsig.secret + '\n', { mode: 0o600 });
  let n = 0;
  const bindProvider = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: 'rfc2136',
    server: '127.0.0.1',
    port: bind.port,
    tsigKeyName: bind.tsig.name,
    tsigAlgorithm: bind.tsig.algorithm,
    tsigSecret_file: secretFile,
    propagationTimeout: '20s',
    propagationInterval: '100ms',
    ...overrides,
  });
  return {
    bind,
    pebble,
    unbound,
    dir,
    bindProvider,
    async writeConfig(certificates, extra = {}, providers = { bind: bindProvider() }) {
      const config = {
        acme: {
          directory: pebble.directoryUrl,
          caBundle: pebble.tlsCaPath,
          termsAgreed: true,
          email: 'ops@example.test',
          requestTimeout: '10s',
        },
        storage: { stateDir: path.join(dir, 'state') },
        dns: {
          resolvers: [`127.0.0.1:${bind.port}`],
          nameserverPort: bind.port,
          providers,
        },
        certificates,
        ...extra,
      };
      const file = path.join(dir, `certpilot-${++n}.yaml`);
      await writeFile(file, stringify(config));
      return file;
    },
    async stop() {
      await Promise.allSettled([pebble.stop(), bind.stop(), unbound?.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process (same code path as bin/certpilot) and captures its output. */
export async function runCli(argv: string[], signal?: AbortSignal): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        append(chunk.toString());
        cb();
      },
    });
  const code = await run(argv, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    signal,
  });
  return { code, stdout, stderr };
}
