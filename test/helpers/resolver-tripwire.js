'use strict';
/**
 * Test-only preload: `node -r test/helpers/resolver-tripwire.js bin/certpilot.js ...` makes
 * every use of the system resolver fail and leaves a line per host name in the file named by
 * CERTPILOT_TEST_TRIPWIRE_LOG. dns.lookup (getaddrinfo) is what net.connect, tls.connect and
 * HTTP requests call for a host name, and dns/promises' lookup is the same function table, so
 * patching both catches every path. A run that must use only the configured resolvers leaves
 * the file empty.
 */
const dns = require('node:dns');
const fs = require('node:fs');

const logFile = process.env.CERTPILOT_TEST_TRIPWIRE_LOG;
if (!logFile) throw new Error('resolver-tripwire: CERTPILOT_TEST_TRIPWIRE_LOG is not set');

function trip(host) {
  fs.appendFileSync(logFile, `${String(host)}\n`);
  return Object.assign(new Error(`resolver-tripwire: system resolver asked for ${String(host)}`), {
    code: 'ETRIPWIRE',
  });
}

dns.lookup = function lookup(host, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const err = trip(host);
  process.nextTick(() => cb(err));
};
dns.promises.lookup = async function lookup(host) {
  throw trip(host);
};
