import { CertpilotError } from '../core/errors';
import { b64, prefixEnd, type EtcdClient, type KeyValue, type RangeResponse } from '../store/etcd/client';
import { makeKeyring, open } from '../store/etcd/envelope';
import { PUBLIC_MODE, type Storage } from '../store/storage';

/**
 * The fleet's shared records in etcd, next to the store's own keys (under the same prefix):
 *
 *   fleet/nodes/<node>          { node, seenAt }            a node announces itself at start
 *   fleet/deploy/<cert>/<node>  DeployRecord                 what that node serves of that cert
 *
 * Records are public (stored in clear): they hold serials, fingerprints, times and error
 * messages, nothing a certificate does not already show, so `certpilot certificates` and
 * `check` read them without the encryption key. Every node writes only its own records, so no
 * two nodes ever write the same key and no lock is needed.
 *
 * The whole fleet view is read in two requests whatever the number of certificates: one range
 * over `fleet/` (records and nodes, small JSON values) and one keys-only range over `certs/`,
 * whose `current` keys' mod revisions tell which certificates have a new version since the
 * last look (only those are read).
 */

export type DeployRecordStatus =
  /** The node serves this version and its endpoints verified it. */
  | 'verified'
  /** Deploy or verification failed; the node serves `servingSerial` (the previous one) or nothing known. */
  | 'failed'
  /** Failed, and the node went back to its previous version, which it serves verified. */
  | 'rolled-back';

export interface DeployRecord {
  node: string;
  cert: string;
  /** The version this record is about: the store's current one when it was deployed. */
  serial: string;
  fingerprint: string;
  status: DeployRecordStatus;
  /** When the record was written (ISO). */
  at: string;
  /** When this version was verified on the node (ISO), for the canary's stagger. */
  verifiedAt?: string;
  /** What the node serves now, when it is not `serial` (after a failure). */
  servingSerial?: string;
  error?: string;
}

export interface NodeRecord {
  node: string;
  seenAt: string;
}

/** Everything the fleet shares about deploys, as read in one request. */
export interface FleetRecords {
  /** Known node names, sorted. */
  nodes: string[];
  /** cert -> node -> record. */
  deploys: Map<string, Map<string, DeployRecord>>;
}

const NODES = 'fleet/nodes';
const DEPLOYS = 'fleet/deploy';
/** Clear values open without a key; a sealed value here would be someone else's. */
const NO_KEYS = makeKeyring([]);

export function deployRecordKey(cert: string, node: string): string {
  return `${DEPLOYS}/${cert}/${node}`;
}

export async function writeDeployRecord(storage: Storage, record: DeployRecord): Promise<void> {
  await storage.put(deployRecordKey(record.cert, record.node), JSON.stringify(record), { mode: PUBLIC_MODE });
}

export async function announceNode(storage: Storage, node: string, now: Date): Promise<void> {
  const record: NodeRecord = { node, seenAt: now.toISOString() };
  await storage.put(`${NODES}/${node}`, JSON.stringify(record), { mode: PUBLIC_MODE });
}

/** Every key/value under `<prefix><from>` in one range request (values decoded from base64). */
async function range(
  client: EtcdClient,
  from: string,
  opts: { keysOnly?: boolean; signal?: AbortSignal } = {},
): Promise<KeyValue[]> {
  const res = await client.call<RangeResponse>(
    '/v3/kv/range',
    { key: b64(from), range_end: b64(prefixEnd(from)), ...(opts.keysOnly ? { keys_only: true } : {}) },
    opts.signal,
  );
  return res.kvs ?? [];
}

function parseValue<T>(key: string, kv: KeyValue): T | null {
  try {
    const opened = open(key, Buffer.from(kv.value ?? '', 'base64'), NO_KEYS);
    return JSON.parse(opened.value.toString('utf8')) as T;
  } catch {
    // A value written by hand or by a newer version: not a record this node understands.
    return null;
  }
}

/** The fleet's nodes and deploy records (`prefix` ends with '/'). */
export async function readFleetRecords(
  client: EtcdClient,
  prefix: string,
  signal?: AbortSignal,
): Promise<FleetRecords> {
  const base = `${prefix}fleet/`;
  const kvs = await range(client, base, signal ? { signal } : {});
  const nodes = new Set<string>();
  const deploys = new Map<string, Map<string, DeployRecord>>();
  for (const kv of kvs) {
    const key = Buffer.from(kv.key, 'base64').toString('utf8').slice(prefix.length);
    const parts = key.split('/');
    if (parts[1] === 'nodes' && parts.length === 3) {
      if (parseValue<NodeRecord>(key, kv)) nodes.add(parts[2]!);
    } else if (parts[1] === 'deploy' && parts.length === 4) {
      const record = parseValue<DeployRecord>(key, kv);
      if (!record || record.node !== parts[3] || record.cert !== parts[2]) continue;
      nodes.add(record.node);
      const byNode = deploys.get(record.cert) ?? new Map<string, DeployRecord>();
      byNode.set(record.node, record);
      deploys.set(record.cert, byNode);
    }
  }
  return { nodes: [...nodes].sort(), deploys };
}

/**
 * The mod revision of every certificate's `current` key: it changes exactly when a new version
 * is made live, so a node reads a certificate's details only when this moved.
 */
export async function readCurrentRevisions(
  client: EtcdClient,
  prefix: string,
  signal?: AbortSignal,
): Promise<Map<string, string>> {
  const base = `${prefix}certs/`;
  const kvs = await range(client, base, { keysOnly: true, ...(signal ? { signal } : {}) });
  const out = new Map<string, string>();
  for (const kv of kvs) {
    const rel = Buffer.from(kv.key, 'base64').toString('utf8').slice(base.length);
    const parts = rel.split('/');
    if (parts.length !== 2 || parts[1] !== 'current') continue;
    if (kv.mod_revision === undefined)
      throw new CertpilotError('STORE_IO', `etcd: no revision for ${rel} (unexpected answer)`);
    out.set(parts[0]!, kv.mod_revision);
  }
  return out;
}
