#!/usr/bin/env node
'use strict';
// Node's HTTP client (undici, behind fetch) needs WebAssembly. Under `node --lite-mode` or
// `--jitless` it is missing, and the first request to the CA would kill the process with an
// uncaught ReferenceError. Refuse at once with the reason instead of crash-looping later.
if (typeof WebAssembly === 'undefined') {
  process.stderr.write(
    'certpilot: this node process has no WebAssembly (started with --lite-mode or --jitless?); ' +
      "Node's HTTP client needs it. Start node without that flag.\n",
  );
  process.exit(2);
}
require('../dist/cli/main.js').runCli(process.argv.slice(2));
