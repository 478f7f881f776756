import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * The daemon's /metrics (the inventory's series plus the renewal-state series) uses prom-client's
 * Registry, Counter and Gauge only, loaded from their own files: prom-client's index (push
 * gateway, cluster, summaries, default metrics with @opentelemetry/api) never loads. Run in a
 * plain node process on the built code: Jest has its own module registry.
 */

const REGISTRY = path.join(__dirname, '../../dist/metrics/registry.js');

const SCRIPT = `
const Module = require('node:module');
const loaded = [];
const load = Module.prototype.load;
Module.prototype.load = function (f) { loaded.push(f); return load.call(this, f); };
const { buildMetricsRegistry, addRenewalStateMetrics } = require(process.argv[1]);
(async () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const registry = await buildMetricsRegistry([], { checkedAt: now });
  await addRenewalStateMetrics(registry, [{ name: 'www', guarded: false, redeployFailures: 0 }], now);
  const text = await registry.metrics();
  process.stdout.write(JSON.stringify({
    promFiles: loaded.filter((f) => f.includes('/node_modules/prom-client/')).map((f) => f.split('/node_modules/prom-client/')[1]).sort(),
    opentelemetry: loaded.some((f) => f.includes('/node_modules/@opentelemetry/')),
    guarded: /^certpilot_certificate_guarded\\{name="www"\\} 0$/m.test(text),
  }));
})();
`;

test('the renewal-state series load only Registry, Counter and Gauge of prom-client', () => {
  const r = spawnSync(process.execPath, ['-e', SCRIPT, REGISTRY], {
    cwd: path.join(__dirname, '../..'),
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout) as { promFiles: string[]; opentelemetry: boolean; guarded: boolean };
  expect(out.promFiles).not.toContain('index.js');
  expect(out.promFiles).toEqual(
    expect.arrayContaining(['lib/counter.js', 'lib/gauge.js', 'lib/registry.js']),
  );
  expect(out.opentelemetry).toBe(false);
  expect(out.guarded).toBe(true);
});
