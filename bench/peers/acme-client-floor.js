// The floor of the peers benchmark (bench/peers.ts): the least a Node program does to issue N
// certificates through DNS-01 with acme-client, the library certpilot itself builds on. No
// configuration, no state, no journal, no locks, no deploy, no propagation check (BIND applies an
// update before it answers it), no retries; nsupdate (BIND's own client, TSIG key from a 0600
// file, never argv) writes the TXT records. Orders run `concurrency` at a time, as certpilot's
// default does, and status polling starts at 250 ms, as certpilot's does (acme-client's default
// is 5 s, which would measure a sleep, not work).
//
//   node acme-client-floor.js issue SPEC.json   # issues every name in SPEC.names into SPEC.dir
//   node acme-client-floor.js noop SPEC.json    # reads them back: prints "not due" per certificate
//   node acme-client-floor.js --version         # prints acme-client's version (Node's start-up and one file)
//
// Plain JavaScript run by node directly, so its start-up is not a compiler's.
'use strict';
const { spawn } = require('node:child_process');
const { X509Certificate } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const DAY_MS = 86_400_000;
/** lego's default, used for certbot and lego in the benchmark too. */
const RENEW_DAYS = 30;

function nsupdate(spec, lines) {
  return new Promise((resolve, reject) => {
    const child = spawn('nsupdate', ['-k', spec.keyFile], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`nsupdate exited ${code}: ${err}`)),
    );
    child.stdin.end(
      [`server ${spec.server} ${spec.port}`, `zone ${spec.zone}`, ...lines, 'send', ''].join('\n'),
    );
  });
}

async function issueOne(acme, client, spec, name) {
  const [key, csr] = await acme.crypto.createCsr(
    { commonName: name, altNames: [name] },
    await acme.crypto.createPrivateEcdsaKey(),
  );
  const record = (value, op) => `update ${op} _acme-challenge.${name}. 60 TXT "${value}"`;
  const cert = await client.auto({
    csr,
    email: spec.email,
    termsOfServiceAgreed: true,
    challengePriority: ['dns-01'],
    skipChallengeVerification: true,
    challengeCreateFn: (_authz, _challenge, keyAuthorization) =>
      nsupdate(spec, [record(keyAuthorization, 'add')]),
    challengeRemoveFn: (_authz, _challenge, keyAuthorization) =>
      nsupdate(spec, [record(keyAuthorization, 'delete')]),
  });
  fs.writeFileSync(path.join(spec.dir, `${name}.key`), key, { mode: 0o600 });
  fs.writeFileSync(path.join(spec.dir, `${name}.pem`), cert);
}

async function issue(spec) {
  // Loaded here, not at the top: the no-op pass of a minimal script needs no ACME library.
  const acme = require('acme-client');
  const client = new acme.Client({
    directoryUrl: spec.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 250,
    backoffMax: 5000,
  });
  const queue = [...spec.names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift())
      await issueOne(acme, client, spec, name);
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  console.log(`issued ${spec.names.length}`);
}

function noop(spec) {
  const now = Date.now();
  let notDue = 0;
  for (const name of spec.names) {
    const cert = new X509Certificate(fs.readFileSync(path.join(spec.dir, `${name}.pem`)));
    if (new Date(cert.validTo).getTime() - now > RENEW_DAYS * DAY_MS) notDue++;
  }
  console.log(`not due ${notDue}`);
}

async function main() {
  const [command, specFile] = process.argv.slice(2);
  if (command === '--version') {
    console.log(`acme-client ${require('acme-client/package.json').version}`);
    return;
  }
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));
  if (command === 'issue') await issue(spec);
  else if (command === 'noop') noop(spec);
  else throw new Error(`unknown command ${command}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
