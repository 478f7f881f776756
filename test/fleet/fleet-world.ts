import crypto, { X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { stringify } from 'yaml';
import type { EtcdSettings } from '../../src/config/types';
import { readFleetRecords, type FleetRecords } from '../../src/fleet';
import { CertStore } from '../../src/store/cert-store';
import { createEtcdBackend, type EtcdBackend } from '../../src/store/etcd';
import { startAriProxy, type AriProxy } from '../helpers/ari-proxy';
import { makeCertificate } from '../helpers/certs';
import { startDaemon, type DaemonChild } from '../helpers/daemon-child';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd';
import { startNginx, type Nginx } from '../helpers/nginx';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver';

/**
 * A fleet on loopback: a real 3-member etcd cluster, Pebble validating against BIND behind the
 * counting proxy (every newOrder is recorded), an alert receiver, and nodes. Each node is a
 * `certpilot run` child process with its own state directory, its own output files and its own
 * nginx serving every certificate from those files, all sharing one etcd prefix and data key.
 * Shared by the fleet tests and bench/fleet-bench.ts.
 */

export interface FleetNode {
  readonly name: string;
  readonly dir: string;
  readonly nginx: Nginx;
  /** The daemon, once started. */
  daemon?: DaemonChild;
  /** The node's configuration file (rewritten by writeNodeConfig). */
  config: string;
}

export interface FleetWorldOptions {
  certs: number;
  nodes: readonly string[];
  /** The `fleet:` section every node gets (nodeName is added per node). */
  fleet: Record<string, unknown>;
}

export interface NodeConfigOptions {
  /** Deploy steps run before the nginx deployer (e.g. a failing command on the canary). */
  extraSteps?: unknown[];
}

export interface FleetWorld {
  etcd: EtcdCluster;
  tb: Testbed;
  proxy: AriProxy;
  alerts: WebhookReceiver;
  nodes: FleetNode[];
  certNames: string[];
  hostOf(cert: string): string;
  /** (Re)writes a node's configuration. */
  writeNodeConfig(node: FleetNode, opts?: NodeConfigOptions): Promise<string>;
  startNode(node: FleetNode): DaemonChild;
  stopNode(node: FleetNode): Promise<void>;
  /** The shared store's current serial of every certificate. */
  currentSerials(): Promise<Map<string, string>>;
  records(): Promise<FleetRecords>;
  /** The serial `node`'s nginx serves for `cert` (a TLS probe with SNI). */
  served(node: FleetNode, cert: string): Promise<string>;
  stop(): Promise<void>;
}

export function servedSerial(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.destroy();
      resolve(new X509Certificate(raw).serialNumber);
    });
    socket.on('error', reject);
  });
}

/** A placeholder pair so nginx can start before the first certificate exists. */
export async function writePlaceholder(dir: string, host: string): Promise<void> {
  const now = Date.now();
  const pair = makeCertificate({
    names: [host],
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
  });
  await writeFile(path.join(dir, 'fullchain.pem'), pair.certPem);
  await writeFile(path.join(dir, 'privkey.pem'), pair.keyPem, { mode: 0o600 });
}

export async function startFleetWorld(opts: FleetWorldOptions): Promise<FleetWorld> {
  const etcd = await startEtcdCluster({ size: 3 });
  const tb = await startTestbed();
  const proxy = await startAriProxy(tb.pebble);
  const alerts = await startWebhookReceiver();
  const keyFile = path.join(tb.dir, 'etcd-k1.key');
  await writeFile(keyFile, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  const prefix = `/fleet-${crypto.randomBytes(4).toString('hex')}/`;
  const certNames = Array.from({ length: opts.certs }, (_, i) => `c${i}`);
  const hostOf = (cert: string): string => `${cert}.example.test`;
  const etcdSettings: EtcdSettings = {
    endpoints: etcd.endpoints,
    prefix,
    encryptionKeys: [{ id: 'k1', file: keyFile }],
    requestTimeoutMs: 2_000,
    retryForMs: 10_000,
    lockLeaseMs: 15_000,
  };
  const storage = (node: string): Record<string, unknown> => ({
    stateDir: path.join(tb.dir, node, 'state'),
    backend: 'etcd',
    etcd: {
      endpoints: etcd.endpoints,
      prefix,
      encryptionKeys: [{ id: 'k1', file: keyFile }],
      requestTimeout: '2s',
      retryFor: '10s',
    },
  });
  const acme = {
    directory: proxy.directoryUrl,
    caBundle: tb.pebble.tlsCaPath,
    termsAgreed: true,
    email: 'ops@example.test',
    requestTimeout: '10s',
  };

  const nodes: FleetNode[] = [];
  for (const name of opts.nodes) {
    const dir = path.join(tb.dir, name);
    for (const cert of certNames) {
      await mkdir(path.join(dir, 'out', cert), { recursive: true });
      await writePlaceholder(path.join(dir, 'out', cert), hostOf(cert));
    }
    const nginx = await startNginx({
      sites: certNames.map((cert) => ({
        serverName: hostOf(cert),
        certPath: path.join(dir, 'out', cert, 'fullchain.pem'),
        keyPath: path.join(dir, 'out', cert, 'privkey.pem'),
      })),
    });
    nodes.push({ name, dir, nginx, config: '' });
  }

  const backends: EtcdBackend[] = [];
  const backend = (): EtcdBackend => {
    const b = createEtcdBackend(etcdSettings);
    backends.push(b);
    return b;
  };
  const world: FleetWorld = {
    etcd,
    tb,
    proxy,
    alerts,
    nodes,
    certNames,
    hostOf,
    async writeNodeConfig(node, nodeOpts = {}) {
      const certificates = certNames.map((cert, i) => ({
        name: cert,
        domains: [hostOf(cert)],
        dns: { provider: 'bind' },
        outputs: [
          {
            fullchain: path.join(node.dir, 'out', cert, 'fullchain.pem'),
            key: path.join(node.dir, 'out', cert, 'privkey.pem'),
          },
        ],
        endpoints: [{ host: hostOf(cert), port: node.nginx.ports[i], connectAddress: '127.0.0.1' }],
        deploy: [
          ...(nodeOpts.extraSteps ?? []),
          { type: 'nginx', test: node.nginx.testArgv(), reload: node.nginx.reloadArgv() },
        ],
      }));
      const file = path.join(node.dir, 'certpilot.yaml');
      const config = {
        acme,
        storage: storage(node.name),
        dns: {
          resolvers: [`127.0.0.1:${tb.bind.port}`],
          nameserverPort: tb.bind.port,
          providers: { bind: tb.bindProvider() },
        },
        daemon: { checkInterval: '1h', listen: '' },
        defaults: { concurrency: 8 },
        verify: { timeout: '20s', interval: '100ms', maxInterval: '1s' },
        notify: { webhooks: [{ url: alerts.url }] },
        fleet: { ...opts.fleet, nodeName: node.name },
        certificates,
      };
      await writeFile(file, stringify(config));
      node.config = file;
      return file;
    },
    startNode(node) {
      node.daemon = startDaemon(node.config);
      return node.daemon;
    },
    async stopNode(node) {
      const d = node.daemon;
      if (!d || d.child.exitCode !== null || d.child.signalCode !== null) return;
      d.child.kill('SIGTERM');
      await d.exited;
    },
    async currentSerials() {
      const store = new CertStore({ stateDir: tb.dir, archiveDepth: 5, storage: backend().storage });
      const out = new Map<string, string>();
      for (const cert of certNames) {
        const info = await store.readInfo(cert);
        if (info) out.set(cert, info.serial);
      }
      return out;
    },
    async records() {
      const b = backend();
      return readFleetRecords(b.client, b.storage.prefix);
    },
    served: (node, cert) => servedSerial(node.nginx.ports[certNames.indexOf(cert)]!, hostOf(cert)),
    async stop() {
      await Promise.allSettled(nodes.map((n) => world.stopNode(n)));
      backends.forEach((b) => b.close());
      await Promise.allSettled([...nodes.map((n) => n.nginx.stop()), proxy.stop(), alerts.close()]);
      await Promise.allSettled([tb.stop(), etcd.stop()]);
    },
  };
  return world;
}

/**
 * Resolves once `node`'s log has a line containing every one of `parts` (after `from`
 * characters), rejecting if the node exits first: the daemon's own report, not a timer.
 */
export function logged(node: FleetNode, parts: readonly string[], from = 0): Promise<void> {
  const d = node.daemon!;
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const lines = d.log().slice(from).split('\n');
      return lines.some((l) => parts.every((p) => l.includes(p)));
    };
    if (check()) return resolve();
    const onData = (): void => {
      if (!check()) return;
      d.child.stderr!.off('data', onData);
      resolve();
    };
    d.child.stderr!.on('data', onData);
    void d.exited.then((code) =>
      reject(new Error(`${node.name} exited (${code}) before logging ${parts.join(' ')}:\n${d.log()}`)),
    );
  });
}

/** Lines of `node`'s log after `from` that contain every one of `parts`. */
function countLines(node: FleetNode, parts: readonly string[], from: number): number {
  return node
    .daemon!.log()
    .slice(from)
    .split('\n')
    .filter((l) => parts.every((p) => l.includes(p))).length;
}

/**
 * Resolves once the nodes' logs together have `n` lines containing every one of `parts`
 * (counted from `from[i]` characters of node i's log); rejects if a node exits first.
 */
export function loggedTimes(
  nodes: readonly FleetNode[],
  parts: readonly string[],
  n: number,
  from: readonly number[] = [],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const total = (): number =>
      nodes.reduce((sum, node, i) => sum + countLines(node, parts, from[i] ?? 0), 0);
    const onData = (): void => {
      if (total() < n) return;
      for (const node of nodes) node.daemon!.child.stderr!.off('data', onData);
      resolve();
    };
    for (const node of nodes) {
      node.daemon!.child.stderr!.on('data', onData);
      void node.daemon!.exited.then((code) =>
        reject(new Error(`${node.name} exited (${code}):\n${node.daemon!.log()}`)),
      );
    }
    onData();
  });
}

/** The length of every node's log now: a mark for loggedTimes. */
export function marks(nodes: readonly FleetNode[]): number[] {
  return nodes.map((n) => n.daemon!.log().length);
}

/** Sync summary of a node that found nothing to do (everything it may deploy is deployed). */
export const IDLE_SYNC = [
  '"message":"fleet sync done"',
  '"deployed":0',
  '"failed":0',
  '"waiting":0',
  '"blocked":0',
];
