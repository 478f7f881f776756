import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for Route 53's REST-XML API (2013-04-01), so the real AWS SDK runs its
 * real serialisation, signing, error parsing and retries against it (`endpoint` + static
 * credentials). Only what certpilot calls is implemented, with Route 53's semantics:
 * - ListHostedZonesByName: zones sorted by reversed labels, starting at `dnsname`, paginated.
 * - ListResourceRecordSets: sets sorted by reversed-label name then type, from (name, type).
 * - ChangeResourceRecordSets: CREATE / DELETE / UPSERT applied in order to a copy, committed
 *   only if every change is valid; a DELETE must match TTL and values exactly.
 * - GetChange: PENDING for `pendingPolls` polls, then INSYNC.
 * - STS AssumeRole (POST /, query protocol), so `roleArn` can be exercised too.
 * Errors use Route 53's `<ErrorResponse><Error><Type/><Code/><Message/></Error>` shape, which
 * the SDK turns into typed exceptions (Throttling and PriorRequestNotComplete are retried by it).
 */

export type Route53Operation =
  | 'ListHostedZonesByName'
  | 'ListResourceRecordSets'
  | 'ChangeResourceRecordSets'
  | 'GetChange'
  | 'AssumeRole';

export type Route53Fault = 'Throttling' | 'PriorRequestNotComplete' | 'InternalError' | 'AccessDenied';

export interface Route53ZoneSpec {
  /** Bare hosted zone id, e.g. `Z1PUBLIC`. */
  readonly id: string;
  /** Zone name without trailing dot. */
  readonly name: string;
  readonly private?: boolean;
}

export interface Route53ServerOptions {
  readonly zones: readonly Route53ZoneSpec[];
  /**
   * Called after every committed change, once per changed TXT name, with the resulting
   * (unquoted) values, `[]` when the set is gone, and the zone (to tell private from public
   * zones of one name). Awaited, in order, before the API answers,
   * so a backend (e.g. a real BIND) holds the same data when the caller sees success.
   */
  readonly onChange?: (
    zoneName: string,
    fqdn: string,
    values: string[],
    zone: Route53ZoneSpec,
  ) => Promise<void> | void;
  /** GetChange answers PENDING this many times per change before INSYNC (default 1). */
  readonly pendingPolls?: number;
}

export interface AssumeRoleCall {
  readonly roleArn: string;
  readonly externalId?: string;
  readonly sessionName?: string;
}

export interface Route53TestServer {
  /** `http://127.0.0.1:<port>`, for the SDK's `endpoint` (and `stsEndpoint`). */
  readonly endpoint: string;
  readonly port: number;
  /** Requests seen per operation (including those answered with an injected fault). */
  count(op: Route53Operation): number;
  /** The next `times` requests of `op` fail with `fault` (after counting). */
  failNext(op: Route53Operation, fault: Exclude<Route53Fault, 'AccessDenied'>, times?: number): void;
  /** Every request of `op` is answered 403 AccessDenied until `allow(op)`. */
  deny(op: Route53Operation): void;
  allow(op: Route53Operation): void;
  /** Runs `mutate` right after the next ListResourceRecordSets has been answered from the old state. */
  afterNextRead(mutate: (server: Route53TestServer) => void): void;
  /**
   * Sets (replaces) the TXT set at `fqdn` directly, as another writer would; `[]` removes it.
   * No onChange. `zoneId` picks the zone; default: the deepest public zone containing `fqdn`.
   */
  setTxt(fqdn: string, values: readonly string[], ttl?: number, zoneId?: string): void;
  /** Unquoted values of the TXT set at `fqdn` (`[]` when absent), in stored order. */
  txt(fqdn: string, zoneId?: string): string[];
  /** TTL of the TXT set at `fqdn`, if any. */
  txtTtl(fqdn: string, zoneId?: string): number | undefined;
  /** Access key ids seen in SigV4 Authorization headers, in order. */
  readonly accessKeys: readonly string[];
  readonly assumeRoleCalls: readonly AssumeRoleCall[];
  /** Every change of every submitted batch (committed or not), for checks against the IAM policy. */
  readonly changeLog: readonly { action: string; name: string; type: string }[];
  /** Temporary access key id handed out by AssumeRole. */
  readonly assumedAccessKeyId: string;
  stop(): Promise<void>;
}

const XMLNS = 'https://route53.amazonaws.com/doc/2013-04-01/';
const ASSUMED_KEY = 'ASIATESTASSUMEDROLE1';

interface RecordSet {
  name: string; // lower case, no trailing dot
  type: string;
  ttl: number;
  values: string[]; // raw presentation values, as sent by the client
}

interface Zone extends Route53ZoneSpec {
  sets: Map<string, RecordSet>; // key `${name}|${type}`
}

// ---------------------------------------------------------------------------- tiny XML

interface XmlNode {
  name: string;
  children: XmlNode[];
  text: string;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(
        e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10),
      );
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()] ?? '';
  });
}

/** Enough XML for Route 53 request bodies: elements and text, attributes ignored. */
function parseXml(src: string): XmlNode {
  const s = src.replace(/<\?xml[^>]*\?>/, '').trim();
  let i = 0;
  const parseElement = (): XmlNode => {
    const open = /^<([A-Za-z_][\w.-]*)[^>]*?(\/?)>/.exec(s.slice(i));
    if (!open) throw new Error(`malformed XML at ${i}`);
    i += open[0].length;
    const node: XmlNode = { name: open[1], children: [], text: '' };
    if (open[2] === '/') return node;
    for (;;) {
      const lt = s.indexOf('<', i);
      if (lt < 0) throw new Error('unterminated XML');
      node.text += decodeEntities(s.slice(i, lt));
      i = lt;
      if (s.startsWith('</', i)) {
        const close = /^<\/([^>]+)>/.exec(s.slice(i));
        if (!close || close[1].trim() !== node.name)
          throw new Error(`mismatched </${close?.[1]}> for <${node.name}>`);
        i += close[0].length;
        return node;
      }
      node.children.push(parseElement());
    }
  };
  return parseElement();
}

function child(n: XmlNode | undefined, name: string): XmlNode | undefined {
  return n?.children.find((c) => c.name === name);
}

function childrenNamed(n: XmlNode | undefined, name: string): XmlNode[] {
  return n?.children.filter((c) => c.name === name) ?? [];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// ---------------------------------------------------------------------------- DNS helpers

function norm(name: string): string {
  return name
    .replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
    .replace(/\.$/, '')
    .toLowerCase();
}

/** Route 53 returns names dot-terminated, with `*` and other specials as `\ddd`. */
function wireName(name: string): string {
  return name.replace(/[^a-z0-9._-]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0')) + '.';
}

function reversedKey(name: string): string {
  return name.split('.').reverse().join('.');
}

function compareSets(a: { name: string; type: string }, b: { name: string; type: string }): number {
  const ka = reversedKey(a.name);
  const kb = reversedKey(b.name);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.type < b.type ? -1 : a.type > b.type ? 1 : 0;
}

/** Unquoted, unescaped, concatenated value of one TXT presentation value. */
function decodeTxt(raw: string): string {
  const strings = parseTxtStrings(raw);
  return strings === undefined ? raw : strings.join('');
}

/** The character-strings of a TXT value, or undefined when it is not valid quoted presentation format. */
function parseTxtStrings(raw: string): string[] | undefined {
  const out: string[] = [];
  const re = /\s*"((?:[^"\\]|\\[0-7]{3}|\\.)*)"\s*/y;
  let pos = 0;
  while (pos < raw.length) {
    re.lastIndex = pos;
    const m = re.exec(raw);
    if (!m) return undefined;
    const bytes: number[] = [];
    const body = m[1];
    for (let j = 0; j < body.length; j++) {
      if (body[j] === '\\') {
        const oct = /^[0-7]{3}/.exec(body.slice(j + 1, j + 4));
        if (oct) {
          bytes.push(parseInt(oct[0], 8));
          j += 3;
        } else {
          bytes.push(...Buffer.from(body[j + 1]));
          j += 1;
        }
      } else bytes.push(...Buffer.from(body[j]));
    }
    if (bytes.length > 255) return undefined;
    out.push(Buffer.from(bytes).toString('utf8'));
    pos = re.lastIndex;
  }
  return out.length > 0 ? out : undefined;
}

function quoteSimple(value: string): string {
  return '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((v, k) => v === sb[k]);
}

// ---------------------------------------------------------------------------- server

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startRoute53Server(options: Route53ServerOptions): Promise<Route53TestServer> {
  const zones: Zone[] = options.zones.map((z) => {
    const zone: Zone = { ...z, name: norm(z.name), sets: new Map() };
    // Real zones always carry SOA and NS at the apex; they sort next to the apex TXT set.
    zone.sets.set(`${zone.name}|NS`, {
      name: zone.name,
      type: 'NS',
      ttl: 172800,
      values: ['ns-1.awsdns-test.org.'],
    });
    zone.sets.set(`${zone.name}|SOA`, {
      name: zone.name,
      type: 'SOA',
      ttl: 900,
      values: ['ns-1.awsdns-test.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400'],
    });
    return zone;
  });
  const pendingPolls = options.pendingPolls ?? 1;
  const counts = new Map<Route53Operation, number>();
  const faults = new Map<Route53Operation, { fault: Route53Fault; times: number }[]>();
  const denied = new Set<Route53Operation>();
  const changes = new Map<string, { polls: number; submittedAt: string }>();
  const accessKeys: string[] = [];
  const assumeRoleCalls: AssumeRoleCall[] = [];
  const changeLog: { action: string; name: string; type: string }[] = [];
  let afterRead: ((s: Route53TestServer) => void) | undefined;
  let changeSeq = 0;
  let backendChain: Promise<void> = Promise.resolve();

  const zoneById = (id: string): Zone => {
    const zone = zones.find((z) => z.id === id.replace(/^\/?hostedzone\//, ''));
    if (!zone) throw new ApiError(404, 'NoSuchHostedZone', `No hosted zone found with ID: ${id}`);
    return zone;
  };
  const zoneOfName = (fqdn: string, zoneId?: string): Zone | undefined =>
    (zoneId ? zones.find((z) => z.id === zoneId) : undefined) ??
    zones
      .filter((z) => !z.private && (fqdn === z.name || fqdn.endsWith('.' + z.name)))
      .sort((a, b) => b.name.length - a.name.length)[0] ??
    zones
      .filter((z) => fqdn === z.name || fqdn.endsWith('.' + z.name))
      .sort((a, b) => b.name.length - a.name.length)[0];

  const api: Route53TestServer = {
    endpoint: '',
    port: 0,
    count: (op) => counts.get(op) ?? 0,
    failNext(op, fault, times = 1) {
      const list = faults.get(op) ?? [];
      list.push({ fault, times });
      faults.set(op, list);
    },
    deny: (op) => void denied.add(op),
    allow: (op) => void denied.delete(op),
    afterNextRead(mutate) {
      afterRead = mutate;
    },
    setTxt(fqdn, values, ttl = 300, zoneId) {
      const name = norm(fqdn);
      const zone = zoneOfName(name, zoneId);
      if (!zone) throw new Error(`no zone for ${fqdn}`);
      if (values.length === 0) zone.sets.delete(`${name}|TXT`);
      else zone.sets.set(`${name}|TXT`, { name, type: 'TXT', ttl, values: values.map(quoteSimple) });
    },
    txt(fqdn, zoneId) {
      const name = norm(fqdn);
      return zoneOfName(name, zoneId)?.sets.get(`${name}|TXT`)?.values.map(decodeTxt) ?? [];
    },
    txtTtl(fqdn, zoneId) {
      const name = norm(fqdn);
      return zoneOfName(name, zoneId)?.sets.get(`${name}|TXT`)?.ttl;
    },
    accessKeys,
    assumeRoleCalls,
    changeLog,
    assumedAccessKeyId: ASSUMED_KEY,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // A request whose client gave up is still applied; let its backend update finish before
      // the caller tears the backend down, so nothing outlives the test.
      await backendChain;
    },
  };

  function takeFault(op: Route53Operation): Route53Fault | undefined {
    if (denied.has(op)) return 'AccessDenied';
    const list = faults.get(op);
    if (!list || list.length === 0) return undefined;
    const head = list[0];
    if (--head.times <= 0) list.shift();
    return head.fault;
  }

  function faultError(op: Route53Operation, fault: Route53Fault, resource: string): ApiError {
    switch (fault) {
      case 'Throttling':
        return new ApiError(400, 'Throttling', 'Rate exceeded');
      case 'PriorRequestNotComplete':
        return new ApiError(
          400,
          'PriorRequestNotComplete',
          'The request was rejected because Route 53 was still processing a prior request.',
        );
      case 'InternalError':
        return new ApiError(500, 'InternalError', 'We encountered an internal error. Please try again.');
      case 'AccessDenied': {
        const action = op === 'AssumeRole' ? 'sts:AssumeRole' : `route53:${op}`;
        const arn = op === 'AssumeRole' ? resource : `arn:aws:route53:::${resource}`;
        return new ApiError(
          403,
          'AccessDenied',
          `User: arn:aws:iam::123456789012:user/certpilot-test is not authorized to perform: ${action} on resource: ${arn} because no identity-based policy allows the ${action} action`,
        );
      }
    }
  }

  function listZones(url: URL): string {
    const dnsName = norm(url.searchParams.get('dnsname') ?? '');
    const startId = url.searchParams.get('hostedzoneid') ?? '';
    const max = Math.min(Number(url.searchParams.get('maxitems') ?? '100') || 100, 100);
    const sorted = [...zones].sort((a, b) => {
      const ka = reversedKey(a.name);
      const kb = reversedKey(b.name);
      return ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
    const start = reversedKey(dnsName);
    const from = sorted.filter((z) => {
      const k = reversedKey(z.name);
      if (!dnsName) return true;
      if (k !== start) return k > start;
      return !startId || z.id >= startId;
    });
    const page = from.slice(0, max);
    const next = from[max];
    const items = page
      .map(
        (z) =>
          `<HostedZone><Id>/hostedzone/${z.id}</Id><Name>${esc(wireName(z.name))}</Name><CallerReference>ref-${z.id}</CallerReference>` +
          `<Config><PrivateZone>${z.private ? 'true' : 'false'}</PrivateZone></Config><ResourceRecordSetCount>${z.sets.size}</ResourceRecordSetCount></HostedZone>`,
      )
      .join('');
    return (
      `<ListHostedZonesByNameResponse xmlns="${XMLNS}"><HostedZones>${items}</HostedZones>` +
      (dnsName ? `<DNSName>${esc(wireName(dnsName))}</DNSName>` : '') +
      `<IsTruncated>${next ? 'true' : 'false'}</IsTruncated><MaxItems>${max}</MaxItems>` +
      (next
        ? `<NextDNSName>${esc(wireName(next.name))}</NextDNSName><NextHostedZoneId>${next.id}</NextHostedZoneId>`
        : '') +
      `</ListHostedZonesByNameResponse>`
    );
  }

  function setXml(s: RecordSet): string {
    const rrs = s.values.map((v) => `<ResourceRecord><Value>${esc(v)}</Value></ResourceRecord>`).join('');
    return `<ResourceRecordSet><Name>${esc(wireName(s.name))}</Name><Type>${s.type}</Type><TTL>${s.ttl}</TTL><ResourceRecords>${rrs}</ResourceRecords></ResourceRecordSet>`;
  }

  function listSets(zone: Zone, url: URL): string {
    const startName = url.searchParams.get('name');
    const startType = url.searchParams.get('type') ?? '';
    const max = Math.min(Number(url.searchParams.get('maxitems') ?? '300') || 300, 300);
    const sorted = [...zone.sets.values()].sort(compareSets);
    const from = startName
      ? sorted.filter((s) => compareSets(s, { name: norm(startName), type: startType }) >= 0)
      : sorted;
    const page = from.slice(0, max);
    const next = from[max];
    return (
      `<ListResourceRecordSetsResponse xmlns="${XMLNS}"><ResourceRecordSets>${page.map(setXml).join('')}</ResourceRecordSets>` +
      `<IsTruncated>${next ? 'true' : 'false'}</IsTruncated><MaxItems>${max}</MaxItems>` +
      (next
        ? `<NextRecordName>${esc(wireName(next.name))}</NextRecordName><NextRecordType>${next.type}</NextRecordType>`
        : '') +
      `</ListResourceRecordSetsResponse>`
    );
  }

  async function change(zone: Zone, body: string): Promise<string> {
    let root: XmlNode;
    try {
      root = parseXml(body);
    } catch (err) {
      throw new ApiError(400, 'MalformedInput', `ChangeBatch is not valid: ${(err as Error).message}`);
    }
    const list = childrenNamed(child(child(root, 'ChangeBatch'), 'Changes'), 'Change');
    if (root.name !== 'ChangeResourceRecordSetsRequest' || list.length === 0) {
      throw new ApiError(
        400,
        'InvalidInput',
        'Invalid request: expected ChangeBatch with at least one Change',
      );
    }
    const work = new Map(zone.sets);
    const problems: string[] = [];
    const touched = new Set<string>();
    for (const c of list) {
      const action = child(c, 'Action')?.text ?? '';
      const rrs = child(c, 'ResourceRecordSet');
      const name = norm(child(rrs, 'Name')?.text ?? '');
      const type = child(rrs, 'Type')?.text ?? '';
      const ttl = Number(child(rrs, 'TTL')?.text ?? 'NaN');
      const values = childrenNamed(child(rrs, 'ResourceRecords'), 'ResourceRecord').map(
        (r) => child(r, 'Value')?.text ?? '',
      );
      const label = `[name='${wireName(name)}', type='${type}']`;
      changeLog.push({ action, name, type });
      if (!['CREATE', 'DELETE', 'UPSERT'].includes(action)) {
        throw new ApiError(400, 'InvalidInput', `Invalid request: unknown Action '${action}'`);
      }
      if (name !== zone.name && !name.endsWith('.' + zone.name)) {
        problems.push(
          `RRSet with DNS name ${wireName(name)} is not permitted in zone ${wireName(zone.name)}`,
        );
        continue;
      }
      if (!Number.isInteger(ttl) || values.length === 0) {
        throw new ApiError(
          400,
          'InvalidInput',
          'Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]]',
        );
      }
      if (type === 'TXT') {
        const bad = values.find((v) => parseTxtStrings(v) === undefined);
        if (bad !== undefined) {
          problems.push(
            `Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks, strings of at most 255 characters) encountered with '${bad}''`,
          );
          continue;
        }
      }
      const key = `${name}|${type}`;
      const existing = work.get(key);
      if (action === 'CREATE' && existing) {
        problems.push(`Tried to create resource record set ${label} but it already exists`);
      } else if (action === 'DELETE' && !existing) {
        problems.push(`Tried to delete resource record set ${label} but it was not found`);
      } else if (
        action === 'DELETE' &&
        existing &&
        (existing.ttl !== ttl || !sameValues(existing.values, values))
      ) {
        problems.push(
          `Tried to delete resource record set ${label} but the values provided do not match the current values`,
        );
      } else if (action === 'DELETE') {
        work.delete(key);
        touched.add(key);
      } else {
        work.set(key, { name, type, ttl, values });
        touched.add(key);
      }
    }
    if (problems.length > 0) throw new ApiError(400, 'InvalidChangeBatch', `[${problems.join(', ')}]`);
    zone.sets = work;
    const id = `C${String(++changeSeq).padStart(8, '0')}TEST`;
    const submittedAt = new Date().toISOString();
    changes.set(id, { polls: 0, submittedAt });
    if (options.onChange) {
      const onChange = options.onChange;
      for (const key of touched) {
        const [name, type] = key.split('|');
        if (type !== 'TXT') continue;
        const values = work.get(key)?.values.map(decodeTxt) ?? [];
        // In order, one at a time: the backend must end up with the last state, not a raced one.
        const spec: Route53ZoneSpec = { id: zone.id, name: zone.name, private: zone.private === true };
        const run = backendChain.then(() => onChange(zone.name, name, values, spec));
        backendChain = run.catch(() => undefined);
        await run; // a failing backend answers 500 InternalError, loudly
      }
    }
    return `<ChangeResourceRecordSetsResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${id}</Id><Status>PENDING</Status><SubmittedAt>${submittedAt}</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`;
  }

  function getChange(id: string): string {
    const c = changes.get(id.replace(/^\/?change\//, ''));
    if (!c)
      throw new ApiError(404, 'NoSuchChange', `A change with the specified change ID does not exist: ${id}`);
    const status = c.polls++ < pendingPolls ? 'PENDING' : 'INSYNC';
    return `<GetChangeResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${id}</Id><Status>${status}</Status><SubmittedAt>${c.submittedAt}</SubmittedAt></ChangeInfo></GetChangeResponse>`;
  }

  function assumeRole(form: URLSearchParams): string {
    const call: AssumeRoleCall = {
      roleArn: form.get('RoleArn') ?? '',
      externalId: form.get('ExternalId') ?? undefined,
      sessionName: form.get('RoleSessionName') ?? undefined,
    };
    assumeRoleCalls.push(call);
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    return (
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
      `<Credentials><AccessKeyId>${ASSUMED_KEY}</AccessKeyId><SecretAccessKey>assumed-secret</SecretAccessKey>` +
      `<SessionToken>assumed-session-token</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
      `<AssumedRoleUser><Arn>${esc(call.roleArn)}/${esc(call.sessionName ?? '')}</Arn><AssumedRoleId>AROATEST:${esc(call.sessionName ?? '')}</AssumedRoleId></AssumedRoleUser>` +
      `</AssumeRoleResult><ResponseMetadata><RequestId>req-assume</RequestId></ResponseMetadata></AssumeRoleResponse>`
    );
  }

  async function route(req: http.IncomingMessage, body: string): Promise<string> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    let op: Route53Operation;
    let resource = '*';
    let m: RegExpExecArray | null;
    let handler: () => Promise<string> | string;
    if (method === 'POST' && (path === '' || path === '/')) {
      const form = new URLSearchParams(body);
      if (form.get('Action') !== 'AssumeRole')
        throw new ApiError(400, 'InvalidAction', `unsupported STS action ${form.get('Action')}`);
      op = 'AssumeRole';
      resource = form.get('RoleArn') ?? '*';
      handler = () => assumeRole(form);
    } else if (method === 'GET' && path === '/2013-04-01/hostedzonesbyname') {
      op = 'ListHostedZonesByName';
      handler = () => listZones(url);
    } else if ((m = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset$/.exec(path))) {
      const id = decodeURIComponent(m[1]);
      resource = `hostedzone/${id}`;
      if (method === 'GET') {
        op = 'ListResourceRecordSets';
        handler = () => {
          const xml = listSets(zoneById(id), url);
          const mutate = afterRead;
          afterRead = undefined;
          mutate?.(api);
          return xml;
        };
      } else {
        op = 'ChangeResourceRecordSets';
        handler = () => change(zoneById(id), body);
      }
    } else if (method === 'GET' && (m = /^\/2013-04-01\/change\/([^/]+)$/.exec(path))) {
      const id = decodeURIComponent(m[1]);
      op = 'GetChange';
      resource = `change/${id}`;
      handler = () => getChange(id);
    } else {
      throw new ApiError(404, 'UnknownOperationException', `no such operation: ${method} ${path}`);
    }
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const auth = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''));
    if (!auth) throw new ApiError(403, 'MissingAuthenticationToken', 'Missing Authentication Token');
    accessKeys.push(auth[1]);
    const fault = takeFault(op);
    if (fault) throw faultError(op, fault, resource);
    return handler();
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      route(req, body).then(
        (xml) => {
          res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': `req-${Date.now()}` });
          res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
        },
        (err: unknown) => {
          const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', String(err));
          const type = e.status >= 500 ? 'Receiver' : 'Sender';
          res.writeHead(e.status, { 'content-type': 'text/xml', 'x-amzn-requestid': `req-${Date.now()}` });
          res.end(
            `<?xml version="1.0"?>\n<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${e.code}</Code>` +
              `<Message>${esc(e.message)}</Message></Error><RequestId>req-${Date.now()}</RequestId></ErrorResponse>`,
          );
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(api, { port, endpoint: `http://127.0.0.1:${port}` });
  return api;
}
