import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_NOTIFY,
  DEFAULT_PROBE_CONCURRENCY,
  DEFAULT_THRESHOLDS,
  DEFAULT_VERIFY,
  EMPTY_HOOKS,
} from './defaults';
import type {
  AgentConfig,
  CertificateDeploySpec,
  CertificateSpec,
  CheckSettings,
  DeployAwareConfig,
  DeployAwareSpec,
  DeploySettings,
  Endpoint,
  ThresholdOverrides,
  ThresholdSettings,
} from './types';

/**
 * Reading a loaded configuration: the settings with their defaults filled in, whether or not
 * the loader set them. Used by the executor, deploy and inspection, which must not depend on
 * the parsers (the parsers depend on them in turn through the types).
 */

/** The global settings with defaults filled in, whether or not the loader set them. */
export function deploySettingsOf(config: DeployAwareConfig | AgentConfig): DeploySettings {
  const c = config as DeployAwareConfig;
  return {
    hooks: c.hooks ?? EMPTY_HOOKS,
    notify: c.notify ?? DEFAULT_NOTIFY,
    verify: c.verify ?? DEFAULT_VERIFY,
  };
}

export function certDeployOf(spec: DeployAwareSpec | CertificateSpec): CertificateDeploySpec {
  const s = spec as DeployAwareSpec;
  const endpoints = s.endpoints ?? [];
  return {
    endpoints,
    hooks: s.hooks ?? EMPTY_HOOKS,
    deploy: s.deploy ?? [],
    rollback: s.rollback ?? endpoints.length > 0,
  };
}

export const DEFAULT_CHECK: CheckSettings = Object.freeze({
  thresholds: { ...DEFAULT_THRESHOLDS },
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  concurrency: DEFAULT_PROBE_CONCURRENCY,
});

/** The global check settings, defaults filled in when the file has no `check:` section. */
export function checkSettingsOf(config: Pick<AgentConfig, 'check'>): CheckSettings {
  return config.check ?? DEFAULT_CHECK;
}

/** Global thresholds with an entry's overrides applied. */
export function resolveThresholds(base: ThresholdSettings, over: ThresholdOverrides = {}): ThresholdSettings {
  const warningRatio = over.warningRatio ?? base.warningRatio;
  const criticalRatio = over.criticalRatio ?? base.criticalRatio;
  return {
    warningDays: over.warningDays ?? base.warningDays,
    criticalDays: over.criticalDays ?? base.criticalDays,
    ...(warningRatio !== undefined ? { warningRatio } : {}),
    ...(criticalRatio !== undefined ? { criticalRatio } : {}),
  };
}

export function endpointKey(e: Endpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `${host}:${e.port}${e.connectAddress ? `@${e.connectAddress}` : ''}`;
}
