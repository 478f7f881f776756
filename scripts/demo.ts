/**
 * `npm run demo`: the whole job on a fresh machine, against local servers only.
 * Starts Pebble (ACME test CA) and BIND (authoritative DNS with RFC 2136) on free loopback
 * ports, writes a demo config, runs `certpilot renew` twice (issue, then nothing due), prints
 * the files and their expiry, serves the new certificate from a local TLS endpoint and checks
 * what it serves, then stops everything it started.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';

const PACKAGES: Record<string, string> = { pebble: 'pebble', named: 'bind9', dig: 'bind9-dnsutils' };

function have(cmd: string): boolean {
  return (
    spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0
  );
}

function ensurePackages(): void {
  const missing = Object.keys(PACKAGES).filter((c) => !have(c));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((c) => PACKAGES[c]!))];
  const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.log(`demo: installing ${pkgs.join(', ')} (${cmd})`);
    execFileSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${cmd}`], { stdio: 'inherit' });
    return;
  }
  console.error(`demo: missing ${missing.join(', ')}. Install them first:\n  sudo ${cmd}`);
  process.exit(2);
}

async function main(): Promise<void> {
  ensurePackages();
  // Loaded after the package check so a missing binary gives the message above, not a stack.
  const { startTestbed, runCli } = await import('../test/helpers/testbed');
  console.log('demo: starting BIND and Pebble on free loopback ports ...');
  const tb = await startTestbed();
  try {
    const config = await tb.writeConfig([
      { name: 'www', domains: ['example.test', '*.example.test'], dns: { provider: 'bind' } },
      { name: 'api', domains: ['api.example.test'], dns: { provider: 'bind' }, keyType: 'rsa-2048' },
    ]);
    console.log(`demo: ACME directory ${tb.pebble.directoryUrl}, DNS 127.0.0.1:${tb.bind.port}`);
    console.log(`demo: config ${config}\n`);

    for (const round of ['first run (issues)', 'second run (nothing due)']) {
      console.log(`$ certpilot renew --config ${path.basename(config)}   # ${round}`);
      const res = await runCli(['renew', '--config', config, '--log-level', 'warn']);
      process.stdout.write(res.stdout);
      if (res.stderr) process.stderr.write(res.stderr);
      if (res.code !== 0) throw new Error(`certpilot renew exited ${res.code}`);
      console.log('');
    }

    const stateDir = path.join(tb.dir, 'state', 'certs');
    for (const name of ['www', 'api']) {
      const dir = path.join(stateDir, name);
      const cert = new X509Certificate(await readFile(path.join(dir, 'cert.pem')));
      console.log(
        `${name}: ${cert.subjectAltName}; expires ${new Date(cert.validTo).toISOString()}; serial ${cert.serialNumber}`,
      );
      for (const f of ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem']) {
        const s = await stat(path.join(dir, f));
        console.log(
          `  ${path.join(dir, f)}  mode ${(s.mode & 0o777).toString(8).padStart(4, '0')}  ${s.size} bytes`,
        );
      }
    }

    // A local TLS endpoint serving the new certificate, and a check of what it really serves.
    const dir = path.join(stateDir, 'www');
    const server = tls.createServer({
      cert: await readFile(path.join(dir, 'fullchain.pem')),
      key: await readFile(path.join(dir, 'privkey.pem')),
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const served = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, servername: 'example.test', rejectUnauthorized: false },
        () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.end();
        },
      );
      s.on('error', reject);
    });
    server.close();
    const onDisk = new X509Certificate(await readFile(path.join(dir, 'cert.pem'))).fingerprint256;
    console.log(
      `\nTLS endpoint 127.0.0.1:${port} serves ${served === onDisk ? 'the new certificate' : 'SOMETHING ELSE'} (${served.slice(0, 23)}...)`,
    );
    if (served !== onDisk) process.exitCode = 1;
  } finally {
    await tb.stop();
    console.log('demo: stopped BIND and Pebble, removed temporary files');
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
