import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';

const execFileP = promisify(execFile);

/**
 * A real etcd cluster (Debian `etcd-server`, 3.4) of `size` members on free loopback ports,
 * data in a temp directory. Members can be killed and started again (same data, same ports),
 * to test failover and recovery. Heartbeat and election timeout are cut (50/500 ms) so a new
 * leader is elected in about a second.
 *
 * With `tls`, the client URLs are https with a throwaway CA and members require a client
 * certificate signed by it (peers stay plain http on loopback).
 */
export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly running: boolean;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the member again on its data directory; resolves once it answers. */
  start(): Promise<void>;
}

export interface EtcdClusterTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface EtcdCluster {
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  readonly dir: string;
  readonly tls?: EtcdClusterTls;
  /** The member that is leader now (asks every running member). */
  leader(): Promise<EtcdMember>;
  /** Resolves once every running member reports a leader. */
  healthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface Spec {
  name: string;
  client: number;
  peer: number;
}

export async function startEtcdCluster(opts: { size?: number; tls?: boolean } = {}): Promise<EtcdCluster> {
  const size = opts.size ?? 3;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-etcd-'));
  const scheme = opts.tls ? 'https' : 'http';
  const specs: Spec[] = [];
  for (let i = 0; i < size; i++)
    specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initial = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  let tls: EtcdClusterTls | undefined;
  const tlsArgs: string[] = [];
  if (opts.tls) {
    tls = await makeTls(dir);
    tlsArgs.push(
      '--client-cert-auth',
      `--trusted-ca-file=${path.join(dir, 'ca.pem')}`,
      `--cert-file=${path.join(dir, 'server.pem')}`,
      `--key-file=${path.join(dir, 'server-key.pem')}`,
    );
  }

  const members = specs.map((s) => {
    const clientUrl = `${scheme}://127.0.0.1:${s.client}`;
    const args = [
      `--name=${s.name}`,
      `--data-dir=${path.join(dir, s.name)}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${s.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${s.peer}`,
      `--initial-cluster=${initial}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=certpilot-test',
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
      ...tlsArgs,
    ];
    let child: ChildProcess | undefined;
    let output = '';
    const member: EtcdMember = {
      name: s.name,
      clientUrl,
      get running() {
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      async kill() {
        if (!member.running) return;
        const gone = once(child!, 'exit');
        child!.kill('SIGKILL');
        await gone;
      },
      async start() {
        output = '';
        child = spawn('/usr/bin/etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
        child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
        await waitFor(
          () => status(clientUrl, tls).then(() => true),
          15_000,
          () => `etcd ${s.name}: ${output}`,
        );
      },
    };
    return member;
  });

  // Members of a new cluster wait for each other: start them all, then wait.
  await Promise.all(members.map((m) => m.start()));
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    dir,
    ...(tls ? { tls } : {}),
    async leader() {
      for (const m of members) {
        if (!m.running) continue;
        const st = await status(m.clientUrl, tls).catch(() => undefined);
        if (st && st.leader !== '0') {
          const leader = members.find((x) => x.running && x.clientUrl && x === byId.get(st.leader));
          if (leader) return leader;
        }
      }
      throw new Error('etcd: no leader');
    },
    async healthy(timeoutMs = 15_000) {
      await waitFor(
        async () => {
          for (const m of members.filter((x) => x.running)) {
            const st = await status(m.clientUrl, tls);
            if (st.leader === '0') return false;
          }
          return true;
        },
        timeoutMs,
        () => 'etcd cluster has no leader',
      );
    },
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  // Member ids are only known once they run: map them now for leader().
  const byId = new Map<string, EtcdMember>();
  for (const m of members) byId.set((await status(m.clientUrl, tls)).header.member_id, m);
  await cluster.healthy();
  return cluster;
}

/**
 * A CA, a server certificate for 127.0.0.1 and a client certificate (openssl: IP SANs). The
 * client certificate has no CommonName: with auth enabled, etcd 3.4's JSON gateway refuses
 * (HTTP 400) a client certificate that has one, since it would not be used as the user.
 */
async function makeTls(dir: string): Promise<EtcdClusterTls> {
  const openssl = (args: string[]): Promise<unknown> => execFileP('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=etcd test CA',
  ]);
  await writeFile(
    path.join(dir, 'server.cnf'),
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  await writeFile(path.join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await openssl([
      'req',
      ...ec,
      '-keyout',
      `${who}-key.pem`,
      '-out',
      `${who}.csr`,
      '-subj',
      who === 'server' ? '/CN=server' : '/O=certpilot',
    ]);
    await openssl(
      ['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
        '-out',
        `${who}.pem`,
        '-days',
        '2',
        '-extfile',
        `${who}.cnf`,
      ]),
    );
  }
  const read = (f: string): Promise<string> => readFile(path.join(dir, f), 'utf8');
  return {
    caPem: await read('ca.pem'),
    certPem: await read('client.pem'),
    keyPem: await read('client-key.pem'),
  };
}

interface Status {
  header: { member_id: string };
  leader: string;
}

/** POST /v3/maintenance/status to one member (short timeout). */
function status(url: string, tls: EtcdClusterTls | undefined): Promise<Status> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      `${url}/v3/maintenance/status`,
      {
        method: 'POST',
        timeout: 1000,
        ...(tls ? { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            const json = JSON.parse(body) as Status & { error?: string };
            if (json.error || !json.header) reject(new Error(json.error ?? body));
            else resolve({ header: json.header, leader: json.leader ?? '0' });
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end('{}');
  });
}

/** Polls `ready` (the process gives no event when it can serve) until true or `timeoutMs`. */
async function waitFor(ready: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
