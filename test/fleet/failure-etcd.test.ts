import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { b64, prefixEnd } from '../../src/store/etcd/client';
import { sharedCertStore, startFailureWorld, startNode, type FailureWorld } from './failure-world';

/**
 * The etcd cluster itself failing under certpilot processes, on a real 3-member cluster with
 * Pebble and BIND: a leader that dies mid-renewal, every member down under a running daemon,
 * and a node that lacks the encryption key.
 */
jest.setTimeout(120_000);

let w: FailureWorld;
beforeAll(async () => {
  w = await startFailureWorld();
});
afterAll(async () => {
  await w?.stop();
});

const cert = (name: string, outDir?: string): Record<string, unknown> => ({
  name,
  domains: [`${name}.example.test`],
  dns: { provider: 'bind' },
  ...(outDir
    ? { outputs: [{ fullchain: path.join(outDir, `${name}.pem`), key: path.join(outDir, `${name}.key`) }] }
    : {}),
});

/** The cluster's revision: it moves with every write, whatever the key. */
async function revision(): Promise<string> {
  const res = await w.backend().client.call<{ header: { revision: string } }>('/v3/kv/range', {
    key: b64('/'),
    range_end: b64(prefixEnd('/')),
    count_only: true,
  });
  return res.header.revision;
}

test('the etcd leader killed mid-renewal: the renewal completes', async () => {
  const node = startNode(await w.nodeConfig('leader', [cert('leader')]), ['renew']);
  await node.logged('challenge records written');
  const leader = await w.etcd.leader();
  await leader.kill();
  expect({ code: await node.exited, log: node.log() }).toMatchObject({ code: 0 });
  expect(node.log()).toContain('"message":"certificate issued"');
  expect((await sharedCertStore(w.backend(), '/nonexistent').readInfo('leader'))?.names).toEqual([
    'leader.example.test',
  ]);
  await leader.start();
  await w.etcd.healthy();
});

test('every member down under `certpilot run`: renewals wait and alert, outputs on disk stay, renewals resume when etcd is back', async () => {
  const out = path.join(w.tb.dir, 'down-out');
  const served = cert('served', out);
  const first = startNode(await w.nodeConfig('down', [served]), ['renew']);
  expect({ code: await first.exited, log: first.log() }).toMatchObject({ code: 0 });
  const servedFile = path.join(out, 'served.pem');
  const before = { pem: fs.readFileSync(servedFile, 'utf8'), mtime: fs.statSync(servedFile).mtimeMs };

  await Promise.all(w.etcd.members.map((m) => m.kill()));
  // A second certificate, never issued: due at once.
  const daemon = startNode(
    await w.nodeConfig(
      'down',
      [served, cert('waiting', out)],
      { retryFor: '2s' },
      {
        daemon: { checkInterval: '2s', listen: '' },
      },
    ),
    ['run'],
  );
  const alert = await w.alerts
    .waitFor((r) => /"certificate":"waiting".*no member answered/.test(JSON.stringify(r.json)), 30_000)
    .catch((err: Error) => {
      throw new Error(`${err.message}\n${daemon.log()}`);
    });
  expect(alert.json).toMatchObject({ kind: 'renewal-failed' });
  await daemon.logged('check cycle done');
  expect(fs.readFileSync(servedFile, 'utf8')).toBe(before.pem);
  expect(fs.statSync(servedFile).mtimeMs).toBe(before.mtime);
  expect(fs.existsSync(path.join(out, 'waiting.pem'))).toBe(false);

  await Promise.all(w.etcd.members.map((m) => m.start()));
  await w.etcd.healthy();
  await daemon.logged('certificate installed');
  // The outputs are written after the store's install; the cycle ends after them.
  await daemon.logged('check cycle done', daemon.log().indexOf('"message":"certificate installed"'));
  expect(fs.readFileSync(path.join(out, 'waiting.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
  expect(fs.readFileSync(servedFile, 'utf8')).toBe(before.pem);
  daemon.child.kill('SIGTERM');
  expect(await daemon.exited).toBe(0);
});

test('a node without the encryption key: a clear error naming the key id, nothing written', async () => {
  const first = startNode(await w.nodeConfig('sealer', [cert('sealed')]), ['renew']);
  expect({ code: await first.exited, log: first.log() }).toMatchObject({ code: 0 });

  const otherKey = path.join(w.tb.dir, 'etcd-k9.key');
  fs.writeFileSync(otherKey, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  const out = path.join(w.tb.dir, 'nokey-out');
  const at = await revision();
  const node = startNode(
    await w.nodeConfig('nokey', [cert('sealed', out)], { encryptionKeys: [{ id: 'k9', file: otherKey }] }),
    ['renew'],
  );
  const code = await node.exited;
  const log = node.log();
  expect({ code, log }).toMatchObject({ code: 1 });
  expect(log).toMatch(/encrypted with key \\?"k1\\?", which this node does not have/);
  expect(await revision()).toBe(at);
  expect(fs.existsSync(out)).toBe(false);
});
