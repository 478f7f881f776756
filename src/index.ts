/**
 * certpilot as a library: load a configuration, renew what is due, check what is deployed.
 * The CLI (bin/certpilot.js) is built on the same functions.
 *
 *   const config = await loadConfig({ path: '/etc/certpilot/certpilot.yaml' });
 *   const report = await runRenew(config, {}, {
 *     log: createLogger(), clock: systemClock,
 *     openAcme: () => AcmeService.open(config.acme, config.storage.stateDir, log),
 *     openSolver: () => new Dns01Solver({ dns: config.dns, log }),
 *   });
 *   const checked = await runCheck(config, {}, { now: new Date() });
 */
export { loadConfig, resolveConfigPath } from './config/load';
export { runRenew } from './renew/run';
export { runCheck } from './inspect/check';
export { AcmeService } from './acme/service';
export { Dns01Solver } from './dns/solver';
export { systemClock } from './core/clock';
export { createLogger, silentLogger } from './core/logger';
export { CertpilotError, ConfigError, UsageError } from './core/errors';

export type { AgentConfig, AcmeSettings, CertificateSpec } from './config/types';
export type { RenewOptions, RenewDeps, RenewReport, CertOutcome, OutcomeStatus } from './renew/run';
export type { CheckOptions, CheckDeps, CheckReport, CheckResult } from './inspect/check';
export type { CheckStatus } from './inspect/findings';
export type { IssueRequest, IssueResult } from './acme/service';
export type { Clock } from './core/clock';
export type { Logger, LoggerOptions, LogLevel, LogFormat } from './core/logger';
export type { ErrorCode } from './core/errors';
