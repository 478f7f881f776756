import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatReport } from '../../src/cli/renew';
import { fixedClock } from '../../src/core/clock';
import type { AlertEvent } from '../../src/notify';
import { runRenew } from '../../src/renew/run';
import { readDeployState } from '../../src/state/deploy-state';
import { readKept } from '../../src/state/kept';
import { memoryLogger } from '../helpers/memory-logger';
import { baseConfig, certSpec, installPair, withDeploy } from './helpers';

/**
 * A rollback that fails too (issue #12 item 17): the deploy step that rejected the new version
 * rejects the restored one as well. That is a failure, alerted as `rollback-failed` with
 * critical severity and the expiry of what is installed, not as the warning a successful
 * rollback is. Real store, real deploy command, real deploy state.
 */
let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-rollback-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('a failed rollback is alerted as rollback-failed with notAfter; the new version is kept', async () => {
  const stateDir = path.join(root, 'state');
  const { info, previous } = await installPair(stateDir, 'site', ['www.example.test']);
  const config = withDeploy(baseConfig(stateDir, [certSpec('site', ['www.example.test'])]), {
    verify: { timeout: '1s', interval: '100ms', maxInterval: '200ms' },
    certificates: [
      {
        name: 'site',
        // Never probed: the deploy step fails first, for the new and the restored version alike.
        endpoints: [{ host: 'www.example.test', port: 9, connectAddress: '127.0.0.1' }],
        deploy: [{ type: 'command', command: ['false'] }],
      },
    ],
  });
  const alerts: AlertEvent[] = [];
  const report = await runRenew(
    config,
    {},
    {
      log: memoryLogger(),
      clock: fixedClock(new Date()),
      notifier: { notify: async (e) => void alerts.push(e) },
    },
  );

  expect(report.ok).toBe(false);
  expect(report.outcomes[0]).toMatchObject({ status: 'failed', deploy: { status: 'rollback-failed' } });
  const failedAlert = alerts.find((a) => a.kind === 'rollback-failed');
  expect(failedAlert).toMatchObject({
    cert: 'site',
    failedSerial: info.serial,
    serial: previous.serial,
    notAfter: previous.notAfter,
  });
  expect(failedAlert!.message).toMatch(
    new RegExp(`^new serial ${info.serial} failed deploy \\(.*\\); rolling back failed too: `),
  );
  expect(alerts.some((a) => a.kind === 'rollback')).toBe(false);
  expect(await readDeployState(stateDir, 'site')).toMatchObject({ status: 'rollback-failed' });
  expect(await readKept(stateDir, 'site')).toMatchObject({ serial: info.serial });
  expect(formatReport(report)).toContain('deploy: rollback-failed');
});
