import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EtcdSettings } from '../../src/config/types';
import { CertStore } from '../../src/store/cert-store';
import { createEtcdBackend, type EtcdBackend } from '../../src/store/etcd';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { BIN } from '../helpers/daemon-child';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * The world of the fleet failure tests: a real 3-member etcd cluster, Pebble validating
 * against BIND, Pebble behind the counting proxy (every newOrder is recorded), an alert
 * receiver, and nodes: certpilot processes (the built CLI) with their own state directories
 * sharing one etcd prefix and encryption key.
 */
export interface FailureWorld {
  etcd: EtcdCluster;
  tb: Testbed;
  proxy: AriProxy;
  alerts: WebhookReceiver;
  /** The data key every node has (id "k1"). */
  keyFile: string;
  /**
   * Writes node `node`'s configuration for `certs`; `etcd` overrides storage.etcd options,
   * `top` adds top-level sections (daemon).
   */
  nodeConfig(
    node: string,
    certs: unknown[],
    etcd?: Record<string, unknown>,
    top?: Record<string, unknown>,
  ): Promise<string>;
  /** A backend for the test's own reads of the shared store. */
  backend(): EtcdBackend;
  stop(): Promise<void>;
}

/** Lease of the nodes' locks: short, so a takeover after a crash is quick. */
export const TEST_LOCK_LEASE = '3s';

export async function startFailureWorld(): Promise<FailureWorld> {
  const etcd = await startEtcdCluster({ size: 3 });
  // A part that fails to start stops the ones already running: a failed beforeAll gets no
  // world to stop, and etcd or named left behind would outlive the suite.
  const started: (() => Promise<unknown>)[] = [() => etcd.stop()];
  const stopStarted = (): Promise<unknown> => Promise.allSettled(started.reverse().map((stop) => stop()));
  let tb: Testbed, proxy: AriProxy, alerts: WebhookReceiver;
  try {
    tb = await startTestbed();
    started.push(() => tb.stop());
    proxy = await startAriProxy(tb.pebble);
    started.push(() => proxy.stop());
    alerts = await startWebhookReceiver();
  } catch (err) {
    await stopStarted();
    throw err;
  }
  const keyFile = path.join(tb.dir, 'etcd-k1.key');
  await writeFile(keyFile, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  const prefix = `/failure-${crypto.randomBytes(4).toString('hex')}/`;
  const etcdOptions = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    endpoints: etcd.endpoints,
    prefix,
    encryptionKeys: [{ id: 'k1', file: keyFile }],
    requestTimeout: '1s',
    retryFor: '10s',
    lockLease: TEST_LOCK_LEASE,
    ...extra,
  });
  const backends: EtcdBackend[] = [];
  return {
    etcd,
    tb,
    proxy,
    alerts,
    keyFile,
    nodeConfig: (node, certs, extra, top = {}) =>
      tb.writeConfig(certs, {
        acme: {
          directory: proxy.directoryUrl,
          caBundle: tb.pebble.tlsCaPath,
          termsAgreed: true,
          email: 'ops@example.test',
          requestTimeout: '10s',
        },
        storage: { stateDir: path.join(tb.dir, node), backend: 'etcd', etcd: etcdOptions(extra) },
        notify: { webhooks: [{ url: alerts.url }] },
        ...top,
      }),
    backend() {
      const settings: EtcdSettings = {
        endpoints: etcd.endpoints,
        prefix,
        encryptionKeys: [{ id: 'k1', file: keyFile }],
        requestTimeoutMs: 1_000,
        retryForMs: 10_000,
        lockLeaseMs: 3_000,
      };
      const b = createEtcdBackend(settings);
      backends.push(b);
      return b;
    },
    async stop() {
      // A node a failed test left running would keep jest alive.
      for (const child of running)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      backends.forEach((b) => b.close());
      await Promise.allSettled([proxy.stop(), alerts.close()]);
      await Promise.allSettled([tb.stop(), etcd.stop()]);
    },
  };
}

/** The certificate store over the shared etcd store, as a node sees it. */
export function sharedCertStore(backend: EtcdBackend, stateDir: string): CertStore {
  return new CertStore({ stateDir, archiveDepth: 3, storage: backend.storage });
}

export interface NodeProcess {
  child: ChildProcess;
  /**
   * Resolves when the JSON log has a line with this message at or after character `from`
   * (rejects if the node exits first).
   */
  logged(message: string, from?: number): Promise<void>;
  /** Exit code (null when killed by a signal) once the process is gone. */
  exited: Promise<number | null>;
  log(): string;
}

const running = new Set<ChildProcess>();

/** `certpilot <args> --config CONFIG` as a child process, logging JSON at debug level. */
export function startNode(config: string, args: string[]): NodeProcess {
  const child = spawn(process.execPath, [
    BIN,
    ...args,
    '--config',
    config,
    '--log-format',
    'json',
    '--log-level',
    'debug',
  ]);
  running.add(child);
  let log = '';
  let out = '';
  const waiters: { needle: string; from: number; resolve: () => void }[] = [];
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    log += c.toString();
    for (const w of [...waiters]) if (log.indexOf(w.needle, w.from) >= 0) w.resolve();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    log: () => `${log}\n--- stdout ---\n${out}`,
    logged: (message, from = 0) =>
      new Promise((resolve, reject) => {
        const needle = `"message":"${message}"`;
        if (log.indexOf(needle, from) >= 0) return resolve();
        waiters.push({ needle, from, resolve });
        void exited.then((code) => reject(new Error(`node exited (${code}) before "${message}":\n${log}`)));
      }),
  };
}

/** newOrder requests the CA saw for `domain`. */
export function ordersFor(proxy: AriProxy, domain: string): number {
  return proxy.orders.filter((o) =>
    ((o.payload.identifiers as { value: string }[] | undefined) ?? []).some((i) => i.value === domain),
  ).length;
}
