/**
 * Test-only kill points for the crash-safety tests (issue #7). When the environment variable
 * CERTPILOT_FAULT_POINT names a point, the process kills itself with SIGKILL on reaching it:
 * no cleanup, no finally blocks, exactly like a power cut or the OOM killer. Unset (always, in
 * production), reaching a point costs one string comparison.
 */
export type FaultPoint =
  | 'after-txt-written'
  | 'after-challenge-answered'
  | 'after-finalize'
  | 'mid-store-write'
  | 'during-deploy-hook';

const ACTIVE = process.env.CERTPILOT_FAULT_POINT;

export function faultPoint(point: FaultPoint): void {
  if (ACTIVE === point) {
    process.stderr.write(`certpilot: fault point ${point} reached, killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
