// Preloaded with `node -r` by the benchmarks: reports the process's peak RSS and CPU time on exit.
'use strict';
process.on('exit', () => {
  const u = process.resourceUsage();
  process.stderr.write(`\nBENCH_MAX_RSS_KB=${u.maxRSS}\nBENCH_CPU_US=${u.userCPUTime + u.systemCPUTime}\n`);
});
