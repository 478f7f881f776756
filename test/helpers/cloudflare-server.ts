import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for the subset of Cloudflare's v4 API that certpilot uses, with its
 * JSON envelope (`{ success, errors: [{code, message}], messages, result, result_info }`),
 * Bearer-token auth, pagination, Cloudflare's error codes for duplicates and missing records,
 * and 429 + Retry-After injection:
 *   GET    /zones?name=&page=&per_page=
 *   GET    /zones/:zone/dns_records?type=&name=&content=&page=&per_page=
 *   POST   /zones/:zone/dns_records      {type, name, content, ttl}
 *   DELETE /zones/:zone/dns_records/:id
 */

export type CloudflareOperation = 'listZones' | 'listRecords' | 'createRecord' | 'deleteRecord';

export interface CloudflareZoneSpec {
  /** 32 hex characters; generated when omitted. */
  readonly id?: string;
  readonly name: string;
  readonly status?: 'active' | 'pending';
}

export interface CloudflareServerOptions {
  /** The only token accepted (`Authorization: Bearer <token>`). */
  readonly token: string;
  readonly zones: readonly CloudflareZoneSpec[];
  /** Largest page the server hands out whatever `per_page` asks (default 100): small values exercise pagination. */
  readonly maxPerPage?: number;
  /**
   * Called after every create/delete with the zone, the name and all (unquoted) TXT values now
   * at that name; awaited in order before the API answers (e.g. to mirror into a real BIND).
   */
  readonly onChange?: (zoneName: string, fqdn: string, values: string[]) => Promise<void> | void;
}

export interface CloudflareFault {
  readonly status: number;
  readonly code?: number;
  readonly message?: string;
  /** Sent as the Retry-After header (seconds). */
  readonly retryAfter?: number;
}

export interface CloudflareRecord {
  readonly id: string;
  readonly zoneId: string;
  readonly name: string;
  readonly content: string;
  readonly ttl: number;
}

export interface CloudflareTestServer {
  /** `http://127.0.0.1:<port>/client/v4`, for the provider's `baseUrl`. */
  readonly baseUrl: string;
  readonly port: number;
  /** Zone ids by zone name (generated ones included). */
  readonly zoneIds: Readonly<Record<string, string>>;
  count(op: CloudflareOperation): number;
  /** The next `times` requests of `op` get `fault` instead of an answer. */
  failNext(op: CloudflareOperation, fault: CloudflareFault, times?: number): void;
  /** Shorthand: the next `times` requests of `op` get 429 with `Retry-After: retryAfter`. */
  rateLimitNext(op: CloudflareOperation, times?: number, retryAfter?: number): void;
  /** Adds a TXT record directly, as another writer would (content stored as given). No onChange. */
  addRecord(fqdn: string, content: string, ttl?: number): string;
  /** TXT values at `fqdn`, unquoted, in creation order. */
  txt(fqdn: string): string[];
  records(fqdn: string): CloudflareRecord[];
  /** Every request's Authorization header value, for checking what the client sent. */
  readonly authHeaders: readonly string[];
  stop(): Promise<void>;
}

function unquote(content: string): string {
  const strings = [...content.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1'));
  return content.trimStart().startsWith('"') && strings.length > 0 ? strings.join('') : content;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export async function startCloudflareServer(options: CloudflareServerOptions): Promise<CloudflareTestServer> {
  const zones = options.zones.map((z) => ({
    id: z.id ?? randomBytes(16).toString('hex'),
    name: z.name.toLowerCase().replace(/\.$/, ''),
    status: z.status ?? 'active',
  }));
  const maxPerPage = options.maxPerPage ?? 100;
  const records: CloudflareRecord[] = [];
  const counts = new Map<CloudflareOperation, number>();
  const faults = new Map<CloudflareOperation, { fault: CloudflareFault; times: number }[]>();
  const authHeaders: string[] = [];
  let backendChain: Promise<void> = Promise.resolve();

  const zoneOf = (fqdn: string): (typeof zones)[number] | undefined =>
    zones
      .filter((z) => fqdn === z.name || fqdn.endsWith('.' + z.name))
      .sort((a, b) => b.name.length - a.name.length)[0];

  function page<T>(items: T[], url: URL): { result: T[]; result_info: Record<string, number> } {
    const perPage = Math.max(1, Math.min(Number(url.searchParams.get('per_page') ?? '20') || 20, maxPerPage));
    const pageNo = Math.max(1, Number(url.searchParams.get('page') ?? '1') || 1);
    const result = items.slice((pageNo - 1) * perPage, pageNo * perPage);
    return {
      result,
      result_info: {
        page: pageNo,
        per_page: perPage,
        count: result.length,
        total_count: items.length,
        total_pages: Math.max(1, Math.ceil(items.length / perPage)),
      },
    };
  }

  const wire = (r: CloudflareRecord): Record<string, unknown> => ({
    id: r.id,
    zone_id: r.zoneId,
    zone_name: zones.find((z) => z.id === r.zoneId)?.name,
    name: r.name,
    type: 'TXT',
    content: r.content,
    ttl: r.ttl,
    proxiable: false,
    proxied: false,
  });

  async function notify(zoneId: string, fqdn: string): Promise<void> {
    if (!options.onChange) return;
    const onChange = options.onChange;
    const zone = zones.find((z) => z.id === zoneId);
    if (!zone) return;
    const values = records.filter((r) => r.name === fqdn).map((r) => unquote(r.content));
    const run = backendChain.then(() => onChange(zone.name, fqdn, values));
    backendChain = run.catch(() => undefined);
    await run;
  }

  function takeFault(op: CloudflareOperation): CloudflareFault | undefined {
    const list = faults.get(op);
    if (!list || list.length === 0) return undefined;
    const head = list[0];
    if (--head.times <= 0) list.shift();
    return head.fault;
  }

  async function route(
    req: http.IncomingMessage,
    body: string,
  ): Promise<{ status: number; payload: unknown }> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/^\/client\/v4/, '').replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    let op: CloudflareOperation;
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/zones') op = 'listZones';
    else if ((m = /^\/zones\/([^/]+)\/dns_records$/.exec(path)) && (method === 'GET' || method === 'POST')) {
      op = method === 'GET' ? 'listRecords' : 'createRecord';
    } else if ((m = /^\/zones\/([^/]+)\/dns_records\/([^/]+)$/.exec(path)) && method === 'DELETE')
      op = 'deleteRecord';
    else throw new ApiError(404, 7000, `No route for that URI: ${method} ${path}`);
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const auth = String(req.headers.authorization ?? '');
    authHeaders.push(auth);
    if (auth !== `Bearer ${options.token}`) throw new ApiError(403, 10000, 'Authentication error');
    const fault = takeFault(op);
    if (fault) {
      throw new ApiError(
        fault.status,
        fault.code ?? (fault.status === 429 ? 971 : 10001),
        fault.message ?? 'Injected fault',
        fault.retryAfter,
      );
    }

    if (op === 'listZones') {
      const name = url.searchParams.get('name');
      const hits = zones.filter((z) => !name || z.name === name.toLowerCase());
      return {
        status: 200,
        payload: page(
          hits.map((z) => ({ id: z.id, name: z.name, status: z.status })),
          url,
        ),
      };
    }
    const zoneId = decodeURIComponent(m![1]);
    const zone = zones.find((z) => z.id === zoneId);
    if (!zone)
      throw new ApiError(
        404,
        7003,
        `Could not route to /zones/${zoneId}/dns_records, perhaps your object identifier is invalid?`,
      );

    if (op === 'listRecords') {
      const type = url.searchParams.get('type');
      const name = url.searchParams.get('name')?.toLowerCase();
      const content = url.searchParams.get('content');
      const hits = records.filter(
        (r) =>
          r.zoneId === zoneId &&
          (!type || type === 'TXT') &&
          (!name || r.name === name) &&
          (content === null || r.content === content),
      );
      return { status: 200, payload: page(hits.map(wire), url) };
    }
    if (op === 'createRecord') {
      let input: { type?: unknown; name?: unknown; content?: unknown; ttl?: unknown };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        throw new ApiError(400, 9207, 'Request body is invalid.');
      }
      if (input.type !== 'TXT')
        throw new ApiError(400, 9004, 'This record type is not supported by this test server.');
      const name = String(input.name ?? '')
        .toLowerCase()
        .replace(/\.$/, '');
      if (name !== zone.name && !name.endsWith('.' + zone.name))
        throw new ApiError(400, 9005, 'Content for record is invalid.');
      const ttl = Number(input.ttl ?? 1);
      if (!(ttl === 1 || (ttl >= 60 && ttl <= 86400)))
        throw new ApiError(
          400,
          9021,
          'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.',
        );
      const content = String(input.content ?? '');
      if (
        records.some((r) => r.zoneId === zoneId && r.name === name && unquote(r.content) === unquote(content))
      ) {
        throw new ApiError(400, 81058, 'An identical record already exists.');
      }
      const rec: CloudflareRecord = { id: randomBytes(16).toString('hex'), zoneId, name, content, ttl };
      records.push(rec);
      await notify(zoneId, name);
      return { status: 200, payload: { result: wire(rec) } };
    }
    const id = decodeURIComponent(m![2]);
    const idx = records.findIndex((r) => r.zoneId === zoneId && r.id === id);
    if (idx < 0) throw new ApiError(404, 81044, 'Record does not exist.');
    const [gone] = records.splice(idx, 1);
    await notify(zoneId, gone.name);
    return { status: 200, payload: { result: { id } } };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      route(req, Buffer.concat(chunks).toString('utf8')).then(
        ({ status, payload }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ success: true, errors: [], messages: [], ...(payload as object) }));
        },
        (err: unknown) => {
          const e = err instanceof ApiError ? err : new ApiError(500, 10000, String(err));
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (e.retryAfter !== undefined) headers['retry-after'] = String(e.retryAfter);
          res.writeHead(e.status, headers);
          res.end(
            JSON.stringify({
              success: false,
              errors: [{ code: e.code, message: e.message }],
              messages: [],
              result: null,
            }),
          );
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const api: CloudflareTestServer = {
    baseUrl: `http://127.0.0.1:${port}/client/v4`,
    port,
    zoneIds: Object.fromEntries(zones.map((z) => [z.name, z.id])),
    count: (op) => counts.get(op) ?? 0,
    failNext(op, fault, times = 1) {
      const list = faults.get(op) ?? [];
      list.push({ fault, times });
      faults.set(op, list);
    },
    rateLimitNext(op, times = 1, retryAfter = 0) {
      api.failNext(
        op,
        {
          status: 429,
          code: 971,
          message: 'Please wait and consider throttling your request speed',
          retryAfter,
        },
        times,
      );
    },
    addRecord(fqdn, content, ttl = 300) {
      const name = fqdn.toLowerCase().replace(/\.$/, '');
      const zone = zoneOf(name);
      if (!zone) throw new Error(`no zone for ${fqdn}`);
      const id = randomBytes(16).toString('hex');
      records.push({ id, zoneId: zone.id, name, content, ttl });
      return id;
    },
    txt: (fqdn) => records.filter((r) => r.name === fqdn.toLowerCase()).map((r) => unquote(r.content)),
    records: (fqdn) => records.filter((r) => r.name === fqdn.toLowerCase()),
    authHeaders,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // A request whose client gave up is still applied; let its backend update finish before
      // the caller tears the backend down, so nothing outlives the test.
      await backendChain;
    },
  };
  return api;
}
