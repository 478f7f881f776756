import { PassThrough, Writable } from 'node:stream';
import { createLogger, type LoggerOptions } from '../../src/core/logger';
import { clearRegisteredSecrets, registerSecret } from '../../src/core/redact';

/**
 * The exact lines the logger writes (winston with certpilot's formats), timestamps masked: an
 * operator's log parsers depend on them, so a change of format must show up here.
 */

const TS = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;

function captured(options: Omit<LoggerOptions, 'stream'>): {
  text: () => string;
  log: ReturnType<typeof createLogger>;
} {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { text: () => text.replace(TS, 'TS'), log: createLogger({ ...options, stream }) };
}

afterEach(() => clearRegisteredSecrets());

describe('text format', () => {
  test('fields follow the message in call order, child fields first, quoted when they hold spaces or are not strings', () => {
    const { text, log } = captured({ format: 'text' });
    log.info('plain');
    log.info('with meta', { b: 2, a: 'x y', c: ['q', 1, null], t: true });
    log.child({ cert: 'c1', z: 0 }).child({ step: 'two' }).warn('child', { a: 1, cert: 'override' });
    expect(text()).toBe(
      [
        'TS info  plain',
        'TS info  with meta b=2 a="x y" c=["q",1,null] t=true',
        'TS warn  child cert=override z=0 step=two a=1',
        '',
      ].join('\n'),
    );
  });
});

describe('json format', () => {
  test('keys sorted, secrets masked, errors and dates as text, BigInts as strings, cycles marked', () => {
    registerSecret('supersecretvalue123');
    const { text, log } = captured({ format: 'json', level: 'debug' });
    const deep: Record<string, unknown> = { a: 1 };
    let nested: Record<string, unknown> = deep;
    for (let i = 0; i < 8; i++) nested = { d: nested };
    deep.self = nested;
    log.error('secret supersecretvalue123', {
      password: 'p',
      tokenSet: true,
      error: new Error('boom supersecretvalue123'),
      when: new Date(0),
      big: BigInt(12),
      inf: Infinity,
      k: { b: 1, a: { d: 1, c: 2 } },
      d: nested,
    });
    expect(text()).toBe(
      '{"big":"12","d":{"d":{"d":{"d":{"d":{"d":{"d":{"d":{"d":{"a":1,"self":' +
        // redact() copies six levels deep; the cycle is found in what it left as it was.
        '{"d":{"d":{"d":{"d":{"d":{"d":"[Circular]"}}}}}}}}}}}}}}},' +
        '"error":"boom [redacted]","inf":null,"k":{"a":{"c":2,"d":1},"b":1},"level":"error",' +
        '"message":"secret [redacted]","password":"[redacted]","timestamp":"TS","tokenSet":true,' +
        '"when":"TS"}\n',
    );
  });

  test("winston's quirks are kept: placeholders drop the metadata, a meta message is appended", () => {
    const { text, log } = captured({ format: 'json' });
    log.info('disk 90%s full', { dropped: 1 });
    log.info('50% done', { kept: 3 });
    log.info('msg', { message: 'extra', level: 'ignored', timestamp: 'kept' });
    expect(text()).toBe(
      [
        '{"level":"info","message":"disk 90%s full","timestamp":"TS"}',
        '{"kept":3,"level":"info","message":"50% done","timestamp":"TS"}',
        '{"level":"info","message":"msg extra","timestamp":"kept"}',
        '',
      ].join('\n'),
    );
  });
});

test('an object-mode stream gets the record, with the line under Symbol.for("message")', () => {
  const got: Record<string | symbol, unknown>[] = [];
  const stream = new Writable({
    objectMode: true,
    write: (chunk: Record<string | symbol, unknown>, _enc, done) => {
      got.push(chunk);
      done();
    },
  });
  createLogger({ stream }).info('o', { a: 1 });
  expect(got).toHaveLength(1);
  expect(got[0]).toMatchObject({ a: 1, level: 'info', message: 'o' });
  expect(got[0]![Symbol.for('level')]).toBe('info');
  expect(String(got[0]![Symbol.for('message')]).replace(TS, 'TS')).toBe('TS info  o a=1');
});

describe('winston loads on the first record written', () => {
  test('records below the level never load it; the first one at the level does', () => {
    jest.isolateModules(() => {
      let loads = 0;
      jest.doMock('winston', () => {
        loads++;
        return jest.requireActual('winston');
      });
      type LoggerModule = typeof import('../../src/core/logger');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loggerModule = require('../../src/core/logger') as LoggerModule;
      const { createLogger: isolated } = loggerModule;
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
      const log = isolated({ level: 'warn', format: 'text', stream });
      const child = log.child({ cert: 'c1' });
      log.info('not written');
      child.debug('not written either');
      expect(loads).toBe(0);
      child.warn('written', { a: 1 });
      expect(loads).toBe(1);
      expect(text.replace(TS, 'TS')).toBe('TS warn  written cert=c1 a=1\n');
      jest.dontMock('winston');
    });
  });
});
