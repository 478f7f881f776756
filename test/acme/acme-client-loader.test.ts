import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';

/**
 * certpilot loads acme-client's Client without axios, @peculiar/x509 and node-forge (about
 * 25 MB of a daemon's memory), and leaves the package untouched for anyone else in the process.
 * Run in a plain node process on the built code: Jest has its own module registry, in which
 * require.cache does not steer loading.
 */

const LOADER = path.join(__dirname, '../../dist/acme/acme-client-loader.js');

const SCRIPT = `
const Module = require('node:module');
const loaded = [];
const load = Module.prototype.load;
Module.prototype.load = function (f) { loaded.push(f); return load.call(this, f); };
const { loadAcmeClient } = require(process.argv[1]);
const slim = loadAcmeClient();
const during = loaded.slice();
const full = require('acme-client');
const client = new slim.Client({ directoryUrl: 'https://ca.invalid/dir', accountKey: process.argv[2] });
// Unreplaced, a client's request method would reach axios: the stand-in refuses at once.
client.http.request('https://ca.invalid/dir', 'get').then(() => 'sent', (e) => e.message).then((refused) =>
process.stdout.write(JSON.stringify({
  heavy: ['/axios/', '/@peculiar/', '/node-forge/', '/asn1js/'].filter((h) => during.some((f) => f.includes('/node_modules' + h))),
  clientFiles: during.filter((f) => f.includes('/acme-client/src/')).map((f) => f.split('/acme-client/src/')[1]).sort(),
  fullIsComplete: typeof full.crypto.createPrivateKey === 'function' && typeof full.axios.request === 'function',
  fullClientIsAnotherCopy: full.Client !== slim.Client,
  jwk: client.http.getJwk(),
  refused,
})));
`;

test('the Client loads without axios, @peculiar/x509 or node-forge, and acme-client stays complete for others', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const r = spawnSync(process.execPath, ['-e', SCRIPT, LOADER, key], {
    cwd: path.join(__dirname, '../..'),
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(out.heavy).toEqual([]);
  expect(out.clientFiles).toEqual([
    'api.js',
    'auto.js',
    'client.js',
    'http.js',
    'logger.js',
    'util.js',
    'verify.js',
  ]);
  expect(out.fullIsComplete).toBe(true);
  expect(out.fullClientIsAnotherCopy).toBe(true);
  // The JWK acme-client signs with: members sorted (RFC 7638 thumbprints hash that form).
  expect(Object.keys(out.jwk as object)).toEqual(['crv', 'kty', 'x', 'y']);
  expect(out.refused).toMatch(/axios .* is not used by certpilot/);
});
