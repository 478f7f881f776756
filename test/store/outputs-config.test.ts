import path from 'node:path';
import {
  baseConfig,
  load,
  loadError,
  makeTempDir,
  removeDir,
  writeConfig,
  writeSecret,
} from '../config/helpers';
import { describeConfig } from '../../src/config/describe';

/** The `outputs` entries with `path` and `format`: what the loader accepts, refuses and prints back. */

let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => removeDir(dir));

function withOutputs(outputs: unknown[]): string {
  const config = baseConfig(dir);
  config.certificates[0].outputs = outputs;
  return writeConfig(dir, config);
}

test('pkcs12, pem-bundle and der entries load next to a classic one, with modes by content', async () => {
  const password = writeSecret(dir, 's3cret-p12\n');
  const config = await load(
    withOutputs([
      { fullchain: '/etc/ssl/www/fullchain.pem', key: '/etc/ssl/www/key.pem' },
      { path: '/etc/ssl/www/site.p12', format: 'pkcs12', password_file: password, friendlyName: 'www' },
      { path: '/etc/haproxy/certs/www.pem', format: 'pem-bundle', owner: 'root', group: '0' },
      { path: '/etc/ssl/www/cert.der', format: 'der' },
      { path: '/etc/ssl/www/key.der', format: 'der', content: 'key', mode: '0640' },
    ]),
  );
  expect(config.certificates[0]!.outputs).toEqual([
    { fullchain: '/etc/ssl/www/fullchain.pem', key: '/etc/ssl/www/key.pem', certMode: 0o644, keyMode: 0o600 },
    {
      path: '/etc/ssl/www/site.p12',
      format: 'pkcs12',
      passwordFile: password,
      friendlyName: 'www',
      certMode: 0o600,
      keyMode: 0o600,
    },
    {
      path: '/etc/haproxy/certs/www.pem',
      format: 'pem-bundle',
      owner: 'root',
      group: '0',
      certMode: 0o600,
      keyMode: 0o600,
    },
    { path: '/etc/ssl/www/cert.der', format: 'der', content: 'cert', certMode: 0o644, keyMode: 0o600 },
    { path: '/etc/ssl/www/key.der', format: 'der', content: 'key', certMode: 0o640, keyMode: 0o600 },
  ]);
  // What `config check` prints back is itself a valid entry, and never the password.
  const printed = JSON.stringify(describeConfig(config));
  expect(printed).toContain('"password_file":' + JSON.stringify(password));
  expect(printed).not.toContain('s3cret-p12');
  expect(printed).toContain('"format":"der","content":"key"');
});

test('mixed, incomplete and misplaced keys are each reported at their path', async () => {
  const err = await loadError(
    withOutputs([
      { path: '/etc/ssl/a.p12', format: 'pkcs12' },
      { path: '/etc/ssl/b.pem', format: 'pem-bundle', key: '/etc/ssl/b.key', keyMode: '0600' },
      { format: 'der' },
      { path: '/etc/ssl/d.der' },
      { path: '/etc/ssl/e.pem', format: 'pem-bundle', content: 'key', friendlyName: 'x' },
      { path: 'relative.p12', format: 'pkcs7' },
      { cert: '/etc/ssl/g.pem', content: 'cert' },
      { path: '/etc/ssl/h.der', format: 'der', content: 'chain' },
    ]),
  );
  const at = (i: number, key?: string): string =>
    `certificates[0].outputs[${i}]${key === undefined ? '' : `.${key}`}`;
  const messages = Object.fromEntries(err.issues.map((i) => [i.path, i.message]));
  expect(messages[at(0, 'password_file')]).toMatch(/required for pkcs12/);
  expect(messages[at(1, 'key')]).toMatch(/does not mix with `path` and `format`/);
  expect(messages[at(1, 'keyMode')]).toMatch(/does not mix/);
  expect(messages[at(2, 'path')]).toMatch(/required with `format`/);
  expect(messages[at(3, 'format')]).toMatch(/required with `path`: one of pkcs12, pem-bundle, der/);
  expect(messages[at(4, 'content')]).toMatch(/applies to format der only/);
  expect(messages[at(4, 'friendlyName')]).toMatch(/applies to format pkcs12 only/);
  expect(messages[at(5, 'path')]).toMatch(/absolute/);
  expect(messages[at(5, 'format')]).toMatch(/must be one of pkcs12, pem-bundle, der/);
  expect(messages[at(6, 'content')]).toMatch(/applies to an output with `path` and `format` only/);
  expect(messages[at(7, 'content')]).toMatch(/must be one of cert, key/);
});

test('a pkcs12 password file must be private, exist, and hold printable ASCII; its content is never shown', async () => {
  const open = writeSecret(dir, 'visible-password', 0o644);
  const unicode = writeSecret(dir, 'pässwörd');
  const err = await loadError(
    withOutputs([
      { path: '/etc/ssl/a.p12', format: 'pkcs12', password_file: open },
      { path: '/etc/ssl/b.p12', format: 'pkcs12', password_file: path.join(dir, 'absent') },
      { path: '/etc/ssl/c.p12', format: 'pkcs12', password_file: unicode },
    ]),
  );
  const messages = Object.fromEntries(err.issues.map((i) => [i.path, i.message]));
  expect(messages['certificates[0].outputs[0].password_file']).toMatch(/readable by others .*chmod 600/);
  expect(messages['certificates[0].outputs[1].password_file']).toMatch(/cannot read .*ENOENT/);
  expect(messages['certificates[0].outputs[2].password_file']).toMatch(/printable ASCII/);
  expect(err.message).not.toContain('visible-password');
  expect(err.message).not.toContain('pässwörd');
});

test('two outputs writing one path collide, whichever form names it', async () => {
  const err = await loadError(
    withOutputs([
      { fullchain: '/etc/haproxy/www.pem' },
      { path: '/etc/haproxy/www.pem', format: 'pem-bundle' },
    ]),
  );
  expect(err.issues).toContainEqual({
    path: 'certificates[0].outputs[1].path',
    message: '/etc/haproxy/www.pem is also written by certificates[0].outputs[0].fullchain',
  });
});
