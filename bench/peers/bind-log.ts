/**
 * Reads the query and update lines of named's log (`named -g` writes it to stderr; the testbed
 * keeps it, and the benchmark turns query logging on with `rndc querylog on`). Lines look like:
 *
 *   27-Nov-2026 20:09:05.288 client @0x7f.. 127.0.0.1#60826/key k: updating zone 'example.test/IN': adding an RR at '_acme-challenge.x.example.test' TXT "abc"
 *   27-Nov-2026 20:09:05.320 client @0x7f.. 127.0.0.1#60884 (_acme-challenge.x.example.test): query: _acme-challenge.x.example.test IN TXT -E(0)K (127.0.0.1)
 *
 * named prints local time with milliseconds, from the same clock as Date.now().
 */
export interface BindEvent {
  at: number;
  /** Source address of the query or update. */
  src: string;
  kind: 'query' | 'add' | 'delete';
  /** Owner name, lower case, no trailing dot. */
  name: string;
  /** Query type (TXT, SOA, A, ...) or the record type of an update. */
  type: string;
  /** Query flags as named prints them (+ = RD, E = EDNS, T = TCP, S = signed, ...). */
  flags: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const STAMP = /^(\d{2})-(\w{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) /;
const SOURCE = / client @\S+ ([0-9a-f.:]+)#\d+/;
const QUERY = /: query: (\S+) IN (\S+) (\S+)/;
const UPDATE = /updating zone '[^']+': (adding an RR|deleting an RR|deleting rrset) at '?([^' ]+)'? (\S+)/;

function stamp(line: string): number | undefined {
  const m = STAMP.exec(line);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return undefined;
  return new Date(+m[3]!, month, +m[1]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!).getTime();
}

export function parseBindLog(log: string): BindEvent[] {
  const events: BindEvent[] = [];
  for (const line of log.split('\n')) {
    const at = stamp(line);
    if (at === undefined) continue;
    const src = SOURCE.exec(line)?.[1] ?? '';
    const q = QUERY.exec(line);
    if (q) {
      events.push({ at, src, kind: 'query', name: norm(q[1]!), type: q[2]!, flags: q[3]! });
      continue;
    }
    const u = UPDATE.exec(line);
    if (u) {
      events.push({
        at,
        src,
        kind: u[1] === 'adding an RR' ? 'add' : 'delete',
        name: norm(u[2]!),
        type: u[3]!,
        flags: '',
      });
    }
  }
  return events;
}

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
