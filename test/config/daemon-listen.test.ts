import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load';

/**
 * /metrics and /healthz have no authentication: a listen address beyond loopback is a config
 * error unless `daemon.allowRemote: true` says it was meant.
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-listen-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(daemon: Record<string, unknown>): Promise<unknown> {
  const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify({ daemon, watch: { files: [] } }));
  return loadConfig({ path: file });
}

test.each(['127.0.0.1:9612', '127.0.0.53:9612', '[::1]:9612', 'localhost:9612'])(
  '%s is accepted',
  async (listen) => {
    await expect(load({ listen })).resolves.toBeDefined();
  },
);

test.each(['0.0.0.0:9612', '[::]:9612', '192.0.2.10:9612'])(
  '%s is refused without allowRemote, naming the field and the way out',
  async (listen) => {
    await expect(load({ listen })).rejects.toThrow(
      /daemon\.listen: .* is not a loopback address and \/metrics and \/healthz have no authentication; set daemon\.allowRemote: true/,
    );
  },
);

test('allowRemote: true accepts it', async () => {
  await expect(load({ listen: '0.0.0.0:9612', allowRemote: true })).resolves.toMatchObject({
    daemon: { listen: { host: '0.0.0.0', port: 9612 } },
  });
});
