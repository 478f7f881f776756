import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, lstat, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { installNotDueCertificates } from '../../bench/bench-util';
import { runCli } from '../helpers/testbed';

/**
 * `renew --dry-run` opens no connection and changes no file. A TCP listener stands in for the
 * CA (and for the DNS server) and counts connections; the state directory, with an installed
 * certificate, a missing one and a damaged state file, is compared byte for byte (paths,
 * modes, contents, mtimes) before and after. Root ignores a read-only mode, so the snapshot is
 * the proof here rather than a read-only directory.
 */
let dir: string;
let server: net.Server;
let connections = 0;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-dryrun-'));
  server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const rel = path.relative(root, p) || '.';
    if (st.isDirectory()) {
      out.push(`${rel}/ ${st.mode.toString(8)} ${st.mtimeMs}`);
      for (const e of (await readdir(p)).sort()) await walk(path.join(p, e));
    } else if (st.isSymbolicLink()) {
      out.push(`${rel} -> link ${st.mtimeMs}`);
    } else {
      const sum = createHash('sha256')
        .update(await readFile(p))
        .digest('hex');
      out.push(`${rel} ${st.mode.toString(8)} ${st.mtimeMs} ${sum}`);
    }
  };
  await walk(root);
  return out;
}

test('renew --dry-run contacts no CA or DNS server and leaves the state directory byte-identical', async () => {
  const stateDir = path.join(dir, 'state');
  await installNotDueCertificates(stateDir, 1); // c0: installed, not due
  await mkdir(path.join(stateDir, 'state'), { recursive: true });
  await writeFile(path.join(stateDir, 'state', 'c1.json'), '{ damaged', { mode: 0o600 });
  const secret = path.join(dir, 'tsig.secret');
  await writeFile(secret, 'c2VjcmV0LXNlY3JldA==\n', { mode: 0o600 });
  const config = path.join(dir, 'certpilot.yaml');
  await writeFile(
    config,
    stringify({
      acme: { directory: `https://127.0.0.1:${port}/directory`, termsAgreed: true },
      storage: { stateDir },
      dns: {
        resolvers: [`127.0.0.1:${port}`],
        nameserverPort: port,
        providers: {
          bind: { type: 'rfc2136', server: '127.0.0.1', port, tsigKeyName: 'k', tsigSecret_file: secret },
        },
      },
      certificates: [
        { name: 'c0', domains: ['c0.example.test'] },
        { name: 'c1', domains: ['c1.example.test'] },
      ],
    }),
  );
  const before = await snapshot(stateDir);

  const res = await runCli(['renew', '--dry-run', '--json', '--config', config]);

  expect(connections).toBe(0);
  expect(await snapshot(stateDir)).toEqual(before);
  expect(res.code).toBe(0);
  const report = JSON.parse(res.stdout) as {
    dryRun: boolean;
    certificates: { name: string; status: string }[];
  };
  expect(report.dryRun).toBe(true);
  expect(report.certificates.map((c) => [c.name, c.status])).toEqual([
    ['c0', 'valid'],
    ['c1', 'planned'],
  ]);
  expect(res.stderr).toMatch(/c1\.json is unusable .*; left in place/);
});
