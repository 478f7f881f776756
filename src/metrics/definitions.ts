import type { Counter, Gauge, Registry } from 'prom-client';

/**
 * Every Prometheus metric certpilot exports, defined once. The textfile written by
 * `certpilot check` (src/metrics/registry.ts) and the daemon's /metrics endpoint both build
 * their series from these definitions, so a metric that appears in both (the certificate
 * expiry) has one name, one help text and one label set: a dashboard or alert rule written
 * against one source works against the other.
 *
 * Expiry and other times are exported as Unix timestamps in seconds, not "days left", so
 * alerts compute against Prometheus' own clock and a stale exposition does not keep reporting
 * a frozen countdown.
 */
export interface MetricDefinition<L extends string = string> {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labelNames: readonly L[];
}

/**
 * `name` is the managed certificate name (or the file path / endpoint for unmanaged ones);
 * `source` is where the certificate was read: `file`, `endpoint`, or `store` (the daemon's own
 * view of the certificate store); `endpoint` is `host:port`, the file path, or empty for `store`.
 */
export type CertificateLabel = 'name' | 'source' | 'endpoint';
export type EndpointLabel = 'name' | 'endpoint';

const CERTIFICATE_LABELS: readonly CertificateLabel[] = ['name', 'source', 'endpoint'];
const ENDPOINT_LABELS: readonly EndpointLabel[] = ['name', 'endpoint'];

export const CERTIFICATE_NOT_AFTER: MetricDefinition<CertificateLabel> = {
  name: 'certpilot_certificate_not_after_timestamp_seconds',
  help: 'Expiry (notAfter) of the certificate, seconds since the Unix epoch.',
  type: 'gauge',
  labelNames: CERTIFICATE_LABELS,
};

export const CERTIFICATE_NOT_BEFORE: MetricDefinition<CertificateLabel> = {
  name: 'certpilot_certificate_not_before_timestamp_seconds',
  help: 'Start of validity (notBefore) of the certificate, seconds since the Unix epoch.',
  type: 'gauge',
  labelNames: CERTIFICATE_LABELS,
};

export const CHECK_STATUS: MetricDefinition<CertificateLabel> = {
  name: 'certpilot_check_status',
  help: 'Result of the last check: 0 ok, 1 warning, 2 critical, 3 unknown (could not be read).',
  type: 'gauge',
  labelNames: CERTIFICATE_LABELS,
};

export const CHECK_TIMESTAMP: MetricDefinition<never> = {
  name: 'certpilot_check_timestamp_seconds',
  help: 'When the check that wrote these metrics ran, seconds since the Unix epoch.',
  type: 'gauge',
  labelNames: [],
};

export const ENDPOINT_PROBE_SUCCESS: MetricDefinition<EndpointLabel> = {
  name: 'certpilot_endpoint_probe_success',
  help: '1 when a TLS session was established with the endpoint and its certificate read, else 0.',
  type: 'gauge',
  labelNames: ENDPOINT_LABELS,
};

export const ENDPOINT_SERVES_CURRENT: MetricDefinition<EndpointLabel> = {
  name: 'certpilot_endpoint_serves_current',
  help: '1 when the endpoint serves the current version of the managed certificate, else 0.',
  type: 'gauge',
  labelNames: ENDPOINT_LABELS,
};

export const RENEWALS: MetricDefinition<'name' | 'result'> = {
  name: 'certpilot_renewals_total',
  help: 'Renewal attempts by this daemon, by result.',
  type: 'counter',
  labelNames: ['name', 'result'],
};

export const LAST_SUCCESS: MetricDefinition<'name'> = {
  name: 'certpilot_last_success_timestamp_seconds',
  help: 'Last successful renewal or deploy.',
  type: 'gauge',
  labelNames: ['name'],
};

export const NEXT_RENEWAL: MetricDefinition<'name'> = {
  name: 'certpilot_next_renewal_timestamp_seconds',
  help: 'When the next renewal is planned.',
  type: 'gauge',
  labelNames: ['name'],
};

// Counters: a name ending in _total must not be a gauge (promtool check metrics rejects it).
export const DAEMON_CYCLES: MetricDefinition<never> = {
  name: 'certpilot_daemon_cycles_total',
  help: 'Check cycles completed.',
  type: 'counter',
  labelNames: [],
};

export const DAEMON_CYCLE_FAILURES: MetricDefinition<never> = {
  name: 'certpilot_daemon_cycle_failures_total',
  help: 'Check cycles that failed as a whole.',
  type: 'counter',
  labelNames: [],
};

export const DAEMON_LAST_CYCLE: MetricDefinition<never> = {
  name: 'certpilot_daemon_last_cycle_timestamp_seconds',
  help: 'When the last check cycle finished.',
  type: 'gauge',
  labelNames: [],
};

/** What /healthz says, for alerting without probing it: 1 when it answers 200, else 0. */
export const DAEMON_HEALTHY: MetricDefinition<never> = {
  name: 'certpilot_daemon_healthy',
  help: '1 when /healthz answers 200 (the loop runs and nothing fails), else 0.',
  type: 'gauge',
  labelNames: [],
};

/**
 * The renewer's last successful run (`certpilot run` cycle or `certpilot renew`), from the
 * daemon and from `certpilot check --prometheus` (read from the state directory): alert on
 * `time() - ... > limit` to catch a dead timer or a hung daemon.
 */
export const LAST_SUCCESSFUL_RUN: MetricDefinition<never> = {
  name: 'certpilot_last_successful_run_timestamp_seconds',
  help: 'When the renewer (certpilot run or certpilot renew) last completed a run with nothing failing.',
  type: 'gauge',
  labelNames: [],
};

/**
 * `certpilot check --readiness` (src/inspect/readiness.ts): one series per managed certificate
 * and readiness check (`account`, `caa`, `cname`, `dns-write`, `ari`); the finding says why.
 */
export const READINESS_STATUS: MetricDefinition<'name' | 'check'> = {
  name: 'certpilot_readiness_status',
  help: 'Renewal readiness of the certificate by check (account, caa, cname, dns-write, ari): 1 passes, 0 fails.',
  type: 'gauge',
  labelNames: ['name', 'check'],
};

// ---- renewal state of `certpilot run` (from the persisted state: right again one cycle after a restart)

export const CERTIFICATE_BACKOFF_UNTIL: MetricDefinition<'name'> = {
  name: 'certpilot_certificate_backoff_until_seconds',
  help: 'End of the backoff (or CA rate limit) after failed renewals, seconds since the Unix epoch; 0 when none.',
  type: 'gauge',
  labelNames: ['name'],
};

export const CERTIFICATE_GUARDED: MetricDefinition<'name'> = {
  name: 'certpilot_certificate_guarded',
  help: '1 when the exact-set guard holds the certificate back (no order until a human looks), else 0.',
  type: 'gauge',
  labelNames: ['name'],
};

export const CERTIFICATE_ARI_WINDOW_START: MetricDefinition<'name'> = {
  name: 'certpilot_certificate_ari_window_start_seconds',
  help: "Start of the CA's suggested renewal window (ARI), seconds since the Unix epoch.",
  type: 'gauge',
  labelNames: ['name'],
};

export const CERTIFICATE_ARI_WINDOW_END: MetricDefinition<'name'> = {
  name: 'certpilot_certificate_ari_window_end_seconds',
  help: "End of the CA's suggested renewal window (ARI), seconds since the Unix epoch.",
  type: 'gauge',
  labelNames: ['name'],
};

/** Self-healing deploys (src/daemon/self-heal.ts): an endpoint served an older version. */
export const REDEPLOYS: MetricDefinition<'name' | 'result'> = {
  name: 'certpilot_redeploys_total',
  help: 'Redeploys of the current version by this daemon after an endpoint served an older one, by result.',
  type: 'counter',
  labelNames: ['name', 'result'],
};

export const CERTIFICATE_REDEPLOY_FAILURES: MetricDefinition<'name'> = {
  name: 'certpilot_certificate_redeploy_failures',
  help: 'Failed redeploys in a row while an endpoint serves an older version (persisted); 0 when none.',
  type: 'gauge',
  labelNames: ['name'],
};

/** Every definition, for documentation and for tests that compare an exposition against them. */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = [
  CERTIFICATE_NOT_AFTER,
  CERTIFICATE_NOT_BEFORE,
  CHECK_STATUS,
  CHECK_TIMESTAMP,
  ENDPOINT_PROBE_SUCCESS,
  ENDPOINT_SERVES_CURRENT,
  RENEWALS,
  LAST_SUCCESS,
  NEXT_RENEWAL,
  DAEMON_CYCLES,
  DAEMON_CYCLE_FAILURES,
  DAEMON_LAST_CYCLE,
  DAEMON_HEALTHY,
  LAST_SUCCESSFUL_RUN,
  READINESS_STATUS,
  CERTIFICATE_BACKOFF_UNTIL,
  CERTIFICATE_GUARDED,
  CERTIFICATE_ARI_WINDOW_START,
  CERTIFICATE_ARI_WINDOW_END,
  REDEPLOYS,
  CERTIFICATE_REDEPLOY_FAILURES,
];

/** Seconds since the Unix epoch, the unit of every *_timestamp_seconds metric. */
export function toEpochSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/** The part of prom-client certpilot uses. */
export type PromClient = Pick<typeof import('prom-client'), 'Registry' | 'Counter' | 'Gauge'>;

/**
 * Registry, Counter and Gauge from their own files. prom-client's index also loads the push
 * gateway client, cluster aggregation, summaries (tdigest) and default process metrics
 * (@opentelemetry/api): 89 modules and 12 MB of a daemon's resident memory, against 8 modules
 * and 0.2 MB for these three (bench/README.md). Loaded on first use.
 */
export function loadPromClient(): PromClient {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    Registry: require('prom-client/lib/registry') as PromClient['Registry'],
    Counter: require('prom-client/lib/counter') as PromClient['Counter'],
    Gauge: require('prom-client/lib/gauge') as PromClient['Gauge'],
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/**
 * A gauge for `def` in `registry`. prom-client is passed in because it is loaded on first use
 * (one-shot commands that never export metrics do not pay for it).
 */
export function createGauge<L extends string>(
  prom: PromClient,
  registry: Registry,
  def: MetricDefinition<L>,
): Gauge<L> {
  if (def.type !== 'gauge') throw new Error(`${def.name} is a ${def.type}, not a gauge`);
  return new prom.Gauge<L>({
    name: def.name,
    help: def.help,
    labelNames: [...def.labelNames],
    registers: [registry],
  });
}

/** A counter for `def` in `registry` (see createGauge). */
export function createCounter<L extends string>(
  prom: PromClient,
  registry: Registry,
  def: MetricDefinition<L>,
): Counter<L> {
  if (def.type !== 'counter') throw new Error(`${def.name} is a ${def.type}, not a counter`);
  return new prom.Counter<L>({
    name: def.name,
    help: def.help,
    labelNames: [...def.labelNames],
    registers: [registry],
  });
}
