/**
 * `npm run demo`: the whole job on a fresh machine, against local servers only.
 * Starts Pebble (ACME test CA), BIND (authoritative DNS with RFC 2136) and a local TLS
 * endpoint on free loopback ports, writes a demo config, then runs `certpilot check` (the
 * endpoint serves a placeholder), `certpilot renew` (issue, deploy = reload the endpoint,
 * verify it serves the new certificate), `renew` again (nothing due) and `check` again, prints
 * the files and their expiry, and stops everything it started.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
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
  const stateDir = path.join(tb.dir, 'state');
  const live = path.join(stateDir, 'certs', 'www');
  const reloads = path.join(tb.dir, 'reloads');

  // A local TLS endpoint standing in for nginx: it serves whatever www's files held when it was
  // last "reloaded" (the deploy step below touches a file it watches), so an unreloaded server
  // really keeps serving the old certificate.
  const placeholder = selfSigned();
  let context = tls.createSecureContext(placeholder);
  const server = tls.createServer({ SNICallback: (_name, cb) => cb(null, context), ...placeholder });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await writeFile(reloads, '');
  const watcher = watch(reloads, () => {
    readFile(path.join(live, 'fullchain.pem'))
      .then(async (cert) => {
        context = tls.createSecureContext({ cert, key: await readFile(path.join(live, 'privkey.pem')) });
      })
      .catch((err: unknown) => console.error(`demo endpoint: reload failed: ${String(err)}`));
  });

  try {
    // Clients of the endpoint trust Pebble's issuing root (it changes at every Pebble start).
    const root = path.join(tb.dir, 'pebble-root.pem');
    await writeFile(root, await tb.pebble.issuingRoot());
    const config = await tb.writeConfig([
      {
        name: 'www',
        domains: ['example.test', '*.example.test'],
        dns: { provider: 'bind' },
        // Reload the endpoint, then check that it serves the new certificate.
        deploy: [{ type: 'command', command: ['/bin/sh', '-c', 'date >> "$0"', reloads] }],
        endpoints: [{ host: '127.0.0.1', port, servername: 'example.test', caBundle: root }],
      },
      { name: 'api', domains: ['api.example.test'], dns: { provider: 'bind' }, keyType: 'rsa-2048' },
    ]);
    console.log(`demo: ACME directory ${tb.pebble.directoryUrl}, DNS 127.0.0.1:${tb.bind.port}`);
    console.log(`demo: TLS endpoint 127.0.0.1:${port} (serving a self-signed placeholder)`);
    console.log(`demo: config ${config}\n`);

    const steps: [string[], string][] = [
      [['check'], 'before: the endpoint serves a placeholder'],
      [['renew'], 'first run: issue, deploy, verify the endpoint'],
      [['renew'], 'second run: nothing due'],
      [['check'], 'after: everything current'],
    ];
    for (const [args, what] of steps) {
      console.log(`$ certpilot ${args.join(' ')} --config ${path.basename(config)}   # ${what}`);
      const res = await runCli([...args, '--config', config, '--log-level', 'warn']);
      process.stdout.write(res.stdout);
      if (res.stderr) process.stderr.write(res.stderr);
      console.log(`(exit ${res.code})\n`);
      if (args[0] === 'renew' && res.code !== 0) throw new Error(`certpilot renew exited ${res.code}`);
    }

    for (const name of ['www', 'api']) {
      const dir = path.join(stateDir, 'certs', name);
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
  } finally {
    watcher.close();
    server.close();
    await tb.stop();
    console.log('\ndemo: stopped BIND, Pebble and the TLS endpoint, removed temporary files');
  }
}

/** A throwaway self-signed certificate for the endpoint before certpilot has issued one. */
function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-demo-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=placeholder',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
      key: readFileSync(path.join(dir, 'key.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
