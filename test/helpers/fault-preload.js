'use strict';
/**
 * Test-only preload for the crash-safety tests: `node -r test/helpers/fault-preload.js
 * bin/certpilot.js ...` with CERTPILOT_TEST_KILL_AT=<checkpoint> makes the CLI kill itself with
 * SIGKILL when it reaches that checkpoint (src/core/checkpoints.ts): no cleanup, no finally
 * blocks, like a power cut. It loads the same built module the CLI loads (dist/, built by jest's
 * globalSetup), so the listener lands in the registry the CLI reports to.
 */
const path = require('node:path');

const point = process.env.CERTPILOT_TEST_KILL_AT;
if (point) {
  const { CHECKPOINTS, onCheckpoint } = require(
    path.join(__dirname, '..', '..', 'dist', 'core', 'checkpoints.js'),
  );
  // A misspelt point would otherwise never fire, and the test would fail for the wrong reason.
  if (!CHECKPOINTS.includes(point)) {
    throw new Error(`fault-preload: unknown checkpoint "${point}" (known: ${CHECKPOINTS.join(', ')})`);
  }
  onCheckpoint((reached) => {
    if (reached !== point) return;
    process.stderr.write(`certpilot: fault point ${point} reached, killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  });
}
