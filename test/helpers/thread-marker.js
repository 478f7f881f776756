'use strict';
/**
 * Test-only preload: `node -r test/helpers/thread-marker.js bin/certpilot.js ...` appends one
 * line to the file named by CERTPILOT_TEST_THREAD_LOG for every worker thread the process starts
 * (a `-r` preload runs again in each worker thread), so a test can tell that work ran in threads.
 */
const { isMainThread } = require('node:worker_threads');

const logFile = process.env.CERTPILOT_TEST_THREAD_LOG;
if (!logFile) throw new Error('thread-marker: CERTPILOT_TEST_THREAD_LOG is not set');
if (!isMainThread) require('node:fs').appendFileSync(logFile, 'worker thread\n');
