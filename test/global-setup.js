// Build dist/ once so tests that spawn the real CLI run the current code. Type errors are
// reported by `npm run typecheck` (part of `npm test`); tsc still emits, so do not fail here.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

module.exports = async function globalSetup() {
  const root = path.join(__dirname, '..');
  spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'ignore',
  });
};
