import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfig } from '../../src/config/types';
import { readDeployState } from '../../src/state/deploy-state';
import { startNginx, type Nginx } from '../helpers/nginx';
import { startTestbed, type Testbed } from '../helpers/testbed';
import { withDeploy } from './helpers';
import { loadBase, renew, servedSerial } from './world';

/**
 * The CDN-origins recipe of docs/deploy.md: one nginx deploy entry per origin, each pushing the
 * files to its origin (`push`), testing that origin's config and reloading it; one endpoint per
 * origin, reached by `connectAddress` under the public name. Two real nginx instances stand for
 * two origins; `install` stands for `rsync`/`scp`, and the direct commands for `ssh origin ...`.
 */

const NAME = 'cdn';
const HOST = 'www.example.test';

let tb: Testbed;
let base: AgentConfig;
let work: string;
const origins: { name: string; dir: string; nginx: Nginx }[] = [];

beforeAll(async () => {
  tb = await startTestbed();
  base = await loadBase(tb, [{ name: NAME, domains: [HOST], dns: { provider: 'bind' } }]);
  expect((await renew(base)).report.ok).toBe(true);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-cdn-'));
  const stored = path.join(base.storage.stateDir, 'certs', NAME);
  for (const name of ['origin-a', 'origin-b']) {
    // Each origin has its own copy of the files, as a remote machine would.
    const dir = path.join(work, name, 'tls');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(stored, 'fullchain.pem'), path.join(dir, 'fullchain.pem'));
    fs.copyFileSync(path.join(stored, 'privkey.pem'), path.join(dir, 'privkey.pem'));
    const nginx = await startNginx({
      sites: [
        {
          serverName: HOST,
          certPath: path.join(dir, 'fullchain.pem'),
          keyPath: path.join(dir, 'privkey.pem'),
        },
      ],
    });
    origins.push({ name, dir, nginx });
  }
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(origins.map((o) => o.nginx.stop()));
  if (work) fs.rmSync(work, { recursive: true, force: true });
  await tb?.stop();
});

test('two origins both receive, load and serve the renewed certificate, each verified', async () => {
  const before = await Promise.all(origins.map((o) => servedSerial(o.nginx.ports[0]!, HOST)));
  expect(before[0]).toBe(before[1]);
  const config = withDeploy(base, {
    verify: { timeout: '20s', interval: '100ms', maxInterval: '1s' },
    certificates: [
      {
        name: NAME,
        endpoints: origins.map((o) => ({ host: HOST, port: o.nginx.ports[0], connectAddress: '127.0.0.1' })),
        deploy: origins.map((o) => ({
          type: 'nginx',
          name: o.name,
          push: [
            ['install', '-m', '0644', '{fullchain}', path.join(o.dir, 'fullchain.pem')],
            ['install', '-m', '0600', '{key}', path.join(o.dir, 'privkey.pem')],
          ],
          test: o.nginx.testArgv(),
          reload: o.nginx.reloadArgv(),
        })),
      },
    ],
  });
  const { report, orders } = await renew(config, { force: true });
  expect(report.outcomes[0]).toMatchObject({ status: 'renewed', deploy: { status: 'verified' } });
  expect(report.ok).toBe(true);
  expect(orders).toBe(1);
  const fresh = report.outcomes[0]!.serial!;
  expect(fresh).not.toBe(before[0]);
  for (const o of origins) {
    await o.nginx.settled();
    expect(await servedSerial(o.nginx.ports[0]!, HOST)).toBe(fresh);
    expect(fs.statSync(path.join(o.dir, 'privkey.pem')).mode & 0o777).toBe(0o600);
  }
  const state = await readDeployState(base.storage.stateDir, NAME);
  expect(state?.status).toBe('verified');
  expect(Object.values(state!.endpoints).map((e) => [e.status, e.servedSerial])).toEqual([
    ['verified', fresh],
    ['verified', fresh],
  ]);
});
