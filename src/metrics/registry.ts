import type { Gauge, Registry } from 'prom-client';
import type { CheckResult } from '../inspect/check';
import type { CheckStatus } from '../inspect/findings';
import type { FileInspection } from '../inspect/local';
import type { EndpointAssessment, ProbeResult } from '../inspect/remote';
import { atomicWriteFile } from '../store/atomic';
import type { CertInfo } from '../x509';
import {
  CERTIFICATE_ARI_WINDOW_END,
  CERTIFICATE_ARI_WINDOW_START,
  CERTIFICATE_BACKOFF_UNTIL,
  CERTIFICATE_GUARDED,
  CERTIFICATE_NOT_AFTER,
  CERTIFICATE_NOT_BEFORE,
  CHECK_STATUS,
  CERTIFICATE_REDEPLOY_FAILURES,
  CHECK_TIMESTAMP,
  createCounter,
  createGauge,
  ENDPOINT_PROBE_SUCCESS,
  ENDPOINT_SERVES_CURRENT,
  LAST_SUCCESSFUL_RUN,
  NEXT_RENEWAL,
  loadPromClient,
  READINESS_STATUS,
  REDEPLOYS,
  toEpochSeconds,
} from './definitions';

/**
 * Prometheus metrics of an inventory run, from the shared definitions in ./definitions (the
 * daemon exports the expiry series from the same definition). Expiry is exported as
 * timestamps, so alerts compute `..._not_after_timestamp_seconds - time()`.
 *
 * prom-client is loaded on first use (loadPromClient: only the three classes used): one-shot
 * commands that print to a terminal never pay for it.
 */

/** Value of certpilot_check_status; ordered so `max()` across series picks the worst. */
export const CHECK_STATUS_VALUE: Readonly<Record<CheckStatus, number>> = Object.freeze({
  ok: 0,
  warning: 1,
  critical: 2,
  unknown: 3,
});

/**
 * node_exporter runs as its own user and must read the file; nothing in it is secret (names,
 * dates and statuses that any TLS client can also see).
 */
export const TEXTFILE_MODE = 0o644;

export interface CertificateMetrics {
  /** Managed certificate name, or the file path / endpoint for unmanaged ones. */
  readonly name: string;
  readonly source: 'file' | 'endpoint' | 'readiness';
  /**
   * `host:port` for endpoints; for files the file path, so that several outputs of one
   * certificate stay separate series.
   */
  readonly endpoint: string;
  readonly status: CheckStatus;
  /** Absent when nothing could be read; the expiry series are then omitted, not zero. */
  readonly certificate?: Pick<CertInfo, 'notBefore' | 'notAfter'>;
  /** Endpoints only: whether a TLS session was established and a certificate read. */
  readonly probeSuccess?: boolean;
  /** Endpoints with a managed certificate only: whether the current version is served. */
  readonly servesCurrent?: boolean;
}

/** Metrics record of one inspected file. */
export function fileMetrics(name: string, inspection: FileInspection): CertificateMetrics {
  return {
    name,
    source: 'file',
    endpoint: inspection.path,
    status: inspection.status,
    certificate: inspection.certificate,
  };
}

/** Metrics record of one probed endpoint (`endpoint` as `host:port`). */
export function endpointMetrics(
  name: string,
  endpoint: string,
  probe: ProbeResult,
  assessment: EndpointAssessment,
): CertificateMetrics {
  return {
    name,
    source: 'endpoint',
    endpoint,
    status: assessment.status,
    certificate: probe.chain[0],
    probeSuccess: probe.ok,
    servesCurrent: assessment.served === undefined ? undefined : assessment.served === 'current',
  };
}

/** Metrics record of one `certpilot check` row (src/inspect/check.ts). */
export function checkResultMetrics(r: CheckResult): CertificateMetrics {
  return {
    name: r.name,
    source: r.source,
    endpoint: r.target,
    status: r.status,
    ...(r.certificate ? { certificate: r.certificate } : {}),
    ...(r.probeSuccess !== undefined ? { probeSuccess: r.probeSuccess } : {}),
    ...(r.served !== undefined ? { servesCurrent: r.served === 'current' } : {}),
  };
}

const seconds = toEpochSeconds;

export interface RegistryOptions {
  /**
   * When the check ran. Exported as certpilot_check_timestamp_seconds because a textfile keeps
   * its values after the timer that writes it stops: alert on `time() - ... > interval`.
   */
  readonly checkedAt?: Date;
  /** The renewer's last successful run, as recorded in the state directory. */
  readonly lastSuccessfulRun?: Date;
  /** `check --readiness`: each certificate's checks, exported as certpilot_readiness_status. */
  readonly readiness?: readonly { readonly name: string; readonly check: string; readonly ok: boolean }[];
}

/** A fresh Registry (not the global one, so repeated runs and tests never collide) holding the results. */
export async function buildMetricsRegistry(
  results: readonly CertificateMetrics[],
  options: RegistryOptions = {},
): Promise<Registry> {
  const prom = loadPromClient();
  const registry = new prom.Registry();
  if (options.checkedAt) {
    createGauge(prom, registry, CHECK_TIMESTAMP).set(seconds(options.checkedAt));
  }
  if (options.lastSuccessfulRun) {
    createGauge(prom, registry, LAST_SUCCESSFUL_RUN).set(seconds(options.lastSuccessfulRun));
  }
  if (options.readiness) {
    const readiness = createGauge(prom, registry, READINESS_STATUS);
    for (const r of options.readiness) readiness.set({ name: r.name, check: r.check }, r.ok ? 1 : 0);
  }
  const notAfter = createGauge(prom, registry, CERTIFICATE_NOT_AFTER);
  const notBefore = createGauge(prom, registry, CERTIFICATE_NOT_BEFORE);
  const probeSuccess = createGauge(prom, registry, ENDPOINT_PROBE_SUCCESS);
  const servesCurrent = createGauge(prom, registry, ENDPOINT_SERVES_CURRENT);
  const status = createGauge(prom, registry, CHECK_STATUS);

  for (const r of results) {
    const labels = { name: r.name, source: r.source, endpoint: r.endpoint };
    status.set(labels, CHECK_STATUS_VALUE[r.status]);
    if (r.certificate) {
      notAfter.set(labels, seconds(r.certificate.notAfter));
      notBefore.set(labels, seconds(r.certificate.notBefore));
    }
    if (r.source === 'endpoint') {
      const ep = { name: r.name, endpoint: r.endpoint };
      if (r.probeSuccess !== undefined) probeSuccess.set(ep, r.probeSuccess ? 1 : 0);
      if (r.servesCurrent !== undefined) servesCurrent.set(ep, r.servesCurrent ? 1 : 0);
    }
  }
  return registry;
}

/**
 * The renewal state of one managed certificate as `certpilot run` knows it (from the persisted
 * scheduling and redeploy state). `certpilot check` does not plan, so it exports none of it.
 */
export interface RenewalStateMetrics {
  readonly name: string;
  readonly guarded: boolean;
  /** When the next renewal may happen: the plan, or the end of the backoff when later. */
  readonly nextRenewal?: Date;
  /** Absent or past: not backing off (exported as 0). */
  readonly backoffUntil?: Date;
  readonly ariWindow?: { readonly start: Date; readonly end: Date };
  /** Failed self-healing redeploys in a row. */
  readonly redeployFailures: number;
  /** Redeploys by this process, by result. */
  readonly redeploys?: { readonly success: number; readonly failure: number };
}

/** Adds the renewal-state series of `rows` to `registry` (the daemon's /metrics). */
export async function addRenewalStateMetrics(
  registry: Registry,
  rows: readonly RenewalStateMetrics[],
  now: Date,
): Promise<void> {
  const prom = loadPromClient();
  const backoff = createGauge(prom, registry, CERTIFICATE_BACKOFF_UNTIL);
  const guarded = createGauge(prom, registry, CERTIFICATE_GUARDED);
  const ariStart = createGauge(prom, registry, CERTIFICATE_ARI_WINDOW_START);
  const ariEnd = createGauge(prom, registry, CERTIFICATE_ARI_WINDOW_END);
  const failures = createGauge(prom, registry, CERTIFICATE_REDEPLOY_FAILURES);
  const redeploys = createCounter(prom, registry, REDEPLOYS);
  // The daemon's own series (from each cycle's outcomes), corrected where the state knows better.
  const next = registry.getSingleMetric(NEXT_RENEWAL.name) as Gauge<'name'> | undefined;
  for (const r of rows) {
    const name = { name: r.name };
    if (next && r.nextRenewal) next.set(name, seconds(r.nextRenewal));
    const until = r.backoffUntil && r.backoffUntil.getTime() > now.getTime() ? seconds(r.backoffUntil) : 0;
    backoff.set(name, until);
    guarded.set(name, r.guarded ? 1 : 0);
    if (r.ariWindow) {
      ariStart.set(name, seconds(r.ariWindow.start));
      ariEnd.set(name, seconds(r.ariWindow.end));
    }
    failures.set(name, r.redeployFailures);
    // Both results from the first cycle on, so rate() sees the first increase.
    redeploys.inc({ name: r.name, result: 'success' }, r.redeploys?.success ?? 0);
    redeploys.inc({ name: r.name, result: 'failure' }, r.redeploys?.failure ?? 0);
  }
}

/**
 * Writes the registry in the text exposition format for node_exporter's textfile collector.
 * Atomic (temp file in the same directory, then rename) because the collector may read at any
 * moment and rejects a half-written file; the temp name does not end in `.prom`, so the
 * collector never picks it up.
 */
export async function writeTextfile(registry: Registry, target: string): Promise<void> {
  const text = await registry.metrics();
  await atomicWriteFile(target, text, { mode: TEXTFILE_MODE });
}
