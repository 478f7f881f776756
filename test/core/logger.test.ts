import { EOL } from 'node:os';
import { PassThrough } from 'node:stream';
import { createLogger, type LoggerOptions } from '../../src/core/logger';

/**
 * The log line formats operators parse (journald, log shippers). They were winston 3's output
 * with certpilot's formats; the logger now writes them itself, and these are the lines winston
 * wrote for the same calls (compared byte for byte against winston before it was dropped).
 */

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function capture(opts: LoggerOptions): { lines: () => string[]; log: ReturnType<typeof createLogger> } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return {
    // Lines are written synchronously: no waiting for a stream pipeline.
    lines: () => text.split(EOL).slice(0, -1),
    log: createLogger({ ...opts, stream }),
  };
}

describe('json lines', () => {
  test('keys sorted at every level, timestamp added, child metadata first and overridable', () => {
    const { lines, log } = capture({ format: 'json', level: 'debug' });
    log.info('order ready', { names: ['b', 'a'], cert: 'c1', z: { y: 1, b: [{ d: 1, c: 2 }] } });
    log.child({ cert: 'parent', run: 7 }).child({ deep: true }).warn('nested', { run: 8 });
    log.warn('with message', { message: 'extra', at: new Date(0), n: undefined, big: 10n });
    const [first, second, third] = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines()[0]).toMatch(
      /^\{"cert":"c1","level":"info","message":"order ready","names":\["b","a"\],"timestamp":"[^"]+","z":\{"b":\[\{"c":2,"d":1\}\],"y":1\}\}$/,
    );
    expect(first!.timestamp).toMatch(TS);
    expect(second).toEqual({
      cert: 'parent',
      deep: true,
      level: 'warn',
      message: 'nested',
      run: 8,
      timestamp: expect.stringMatching(TS),
    });
    // winston appended a `message` field to the message; dates are ISO strings, bigints strings.
    expect(third).toMatchObject({ message: 'with message extra', at: '1970-01-01T00:00:00.000Z', big: '10' });
    expect(Object.keys(third!)).not.toContain('n');
  });

  test('a cycle in the metadata is written as "[Circular]" instead of failing the call', () => {
    const { lines, log } = capture({ format: 'json' });
    const a: Record<string, unknown> = { x: 1 };
    const deep = { l1: { l2: { l3: { l4: { l5: { l6: { l7: a } } } } } } };
    a.self = a;
    log.info('cycle', { deep });
    expect(lines()[0]).toContain('"l7":{"self":"[Circular]","x":1}');
  });

  test('secrets are masked before anything is written', () => {
    const { lines, log } = capture({ format: 'json' });
    log.error('failed', { password: 'hunter22', error: new Error('boom') });
    expect(JSON.parse(lines()[0]!)).toMatchObject({ password: '[redacted]', error: 'boom' });
  });
});

describe('text lines', () => {
  test('timestamp, padded level, message, then fields in the order given', () => {
    const { lines, log } = capture({ format: 'text', level: 'info' });
    log.child({ cert: 'c1' }).info('renewed', { serial: 'AB', note: 'two words', n: 3, o: { k: 'v' } });
    const [ts, rest] = [lines()[0]!.slice(0, 24), lines()[0]!.slice(25)];
    expect(ts).toMatch(TS);
    expect(rest).toBe('info  renewed cert=c1 serial=AB note="two words" n=3 o={"k":"v"}');
  });

  test('records below the level are dropped; the default level is info', () => {
    const { lines, log } = capture({ format: 'text' });
    log.debug('hidden');
    log.info('shown');
    log.error('also shown');
    expect(lines().map((l) => l.slice(25))).toEqual(['info  shown', 'error also shown']);
    const quiet = capture({ format: 'text', level: 'error' });
    quiet.log.warn('hidden');
    expect(quiet.lines()).toEqual([]);
  });
});
