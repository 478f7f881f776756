import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const ABORT = path.join(__dirname, '..', '..', 'dist', 'core', 'abort.js');

/**
 * withDeadline with a parent signal: on Node 20 the deadline stopped firing once a garbage
 * collection ran (AbortSignal.any holds its sources weakly; a collected AbortSignal.timeout
 * clears its timer). A child with --expose-gc collects while the deadline is pending.
 */
test('a deadline combined with a parent signal fires after a garbage collection', async () => {
  const script = `
    const { withDeadline } = require(${JSON.stringify(ABORT)});
    const deadline = withDeadline(new AbortController().signal, 200);
    setTimeout(() => global.gc(), 20);
    // AbortSignal.timeout's timer does not keep a process alive: this one does, and reports.
    setTimeout(() => process.stdout.write(deadline.aborted ? 'fired ' + deadline.reason.name : 'never fired'), 1000);
  `;
  const { stdout } = await execFileP(process.execPath, ['--expose-gc', '-e', script]);
  expect(stdout).toBe('fired TimeoutError');
});
