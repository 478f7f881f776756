// Preloaded into a benchmarked certpilot process (`node -r`): reports its own CPU time at exit,
// which, unlike wall time, does not grow when other processes share the CPUs.
'use strict';
process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  process.stderr.write(`BENCH_CPU_MS=${Math.round((user + system) / 1000)}\n`);
});
