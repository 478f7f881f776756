import type { AcmeService } from '../acme/service';
import type { Clock } from '../core/clock';
import type { AcmeSettings } from '../config/types';
import type { Logger } from '../core/logger';
import type { DeployResult } from '../deploy/deploy';
import type { Dns01Solver } from '../dns/solver';
import type { Notifier } from '../notify';
import type { ScheduleReason } from '../plan/schedule';
import type { CertPaths } from '../store/cert-store';

export interface RenewOptions {
  /** Only these certificates (default: all). */
  names?: readonly string[];
  force?: boolean;
  /** Plan and print; contact nothing, write nothing. */
  dryRun?: boolean;
  /**
   * Order even when the exact-set guard holds the certificate back. Only for a person at a
   * terminal (the CLI accepts `--override-guard` only when stdin is a TTY): a loop must not.
   */
  overrideGuard?: boolean;
}

/**
 * `deployed`: no renewal, but a pending deploy from an earlier run was finished and verified.
 * `waiting`: due, but held back by backoff or a rate limit from an earlier failure.
 * `busy`: another certpilot process held the certificate's lock.
 */
export type OutcomeStatus = 'renewed' | 'deployed' | 'valid' | 'waiting' | 'busy' | 'failed' | 'planned';

/** Why a certificate is (or is not) renewed now, with the scheduler's view of when. */
export interface Decision {
  name: string;
  renew: boolean;
  reason: ScheduleReason;
  detail: string;
  /** When renewal is planned (or the next attempt allowed). */
  renewAt?: Date;
  /** When this certificate must be looked at again (renewal, retry or ARI poll). */
  wakeAt?: Date;
  notAfter?: Date;
}

export interface CertOutcome {
  name: string;
  status: OutcomeStatus;
  decision: Decision;
  /** Of the certificate on disk after the run. */
  serial?: string;
  notAfter?: Date;
  error?: string;
  errorCode?: string;
  /** Directory URL of the fallback CA that issued the new certificate (absent: the primary). */
  ca?: string;
  /** Wall time of the renewal (issue + install), when one ran. */
  durationMs?: number;
  /** Deploy and verification, when the certificate has deploy work and it ran. */
  deploy?: Pick<DeployResult, 'status' | 'endpoints' | 'rolledBack'>;
  /** Worth a look, not a failure: e.g. a lifetime other than the ACME profile promised. */
  warnings?: string[];
}

export interface RenewReport {
  outcomes: CertOutcome[];
  /** True when nothing failed and every selected certificate is in date afterwards. */
  ok: boolean;
  /** Requests this run sent to the CA, total and by endpoint ("METHOD /path"). */
  acmeRequests?: { total: number; byEndpoint: Record<string, number> };
  /** pre/post hook failures (they fail the run too). */
  hookErrors?: string[];
}

/** The part of the ACME service a renewal uses (a fake in unit tests). */
export type RenewAcme = Pick<AcmeService, 'issue' | 'close' | 'stats'>;

export interface RenewDeps {
  log: Logger;
  clock: Clock;
  signal?: AbortSignal;
  /** Created lazily, only when something must be ordered. */
  openAcme?: () => Promise<RenewAcme>;
  /**
   * The service of one `acme.fallback` CA, opened only when an order fails over to it. Default:
   * AcmeService.open on the state directory (its own account, registered on first use), so
   * callers that pass only `openAcme` get fallback without a change.
   */
  openFallbackAcme?: (ca: AcmeSettings) => Promise<RenewAcme>;
  openSolver?: () => Dns01Solver;
  /** Default: built from `config.notify`. */
  notifier?: Notifier;
  /**
   * Problems that concern one certificate (certificateProblems in src/config/problems.ts, by
   * certificate name): those certificates fail before anything is contacted, the others go on.
   * Given by the caller, the layer that may read the configuration's rules.
   */
  certificateProblems?: ReadonlyMap<string, readonly string[]>;
  /** ARI lookahead (default RENEW_LOOKAHEAD_MS; the daemon passes 0). */
  lookaheadMs?: number;
  /** How long to wait for another process's lock (default LOCK_WAIT_MS; the daemon passes 0: skip). */
  lockWaitMs?: number;
  /** Test-only fault hooks. */
  faults?: {
    /** After a new version is installed and before it is deployed (e.g. corrupt the pair). */
    afterInstall?: (name: string, paths: CertPaths) => void | Promise<void>;
  };
}
