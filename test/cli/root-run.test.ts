import { spawn } from 'node:child_process';
import path from 'node:path';
import { rootOwned, SERVICE_USER, serviceUserWorld, type ServiceUserWorld } from '../helpers/service-user';
import { startTestbed, type Testbed } from '../helpers/testbed';

/**
 * The root-run trap: `certpilot renew --force` typed as root on a state directory that belongs
 * to the service user does its work as that user, so nothing in the directory ends up owned by
 * root and the service's next run still works. The service user here is `nobody` (65534), the
 * one unprivileged account every Debian system has. CI runs as root; so must this test.
 */
const BIN = path.join(__dirname, '..', '..', 'bin', 'certpilot.js');
let tb: Testbed;
let world: ServiceUserWorld | undefined;

beforeAll(async () => {
  tb = await startTestbed();
}, 60_000);
afterAll(async () => {
  await tb?.stop();
  await world?.remove();
});

function cli(
  args: string[],
  as?: { uid: number; gid: number },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { ...as, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('renew --force as root on the service user state directory leaves nothing owned by root; the service user runs on', async () => {
  expect(process.getuid?.()).toBe(0); // precondition: CI runs the suite as root
  world = await serviceUserWorld(tb, 'certpilot-rootrun-');
  const { stateDir } = world;
  const config = await world.writeConfig([{ name: 'svc', domains: ['svc.example.test'] }]);

  const asRoot = await cli(['renew', '--force', '--config', config]);
  expect(asRoot.out).toMatch(/running as the owner of the state directory, not root/);
  expect(asRoot.code).toBe(0);
  expect(await rootOwned(stateDir)).toEqual([]);

  const asService = await cli(['renew', '--force', '--config', config], SERVICE_USER);
  expect(asService.out).not.toMatch(/EACCES|EPERM/);
  expect(asService.code).toBe(0);
  expect(await rootOwned(stateDir)).toEqual([]);
}, 90_000);
