import type { CertificateDeploySpec, DeploySettings } from '../config/types';

// What planning and reporting need from deploy, without loading the deployers and their
// process runner: a no-op `renew` only plans.

/** "new serial X failed verification; rolled back to Y": what happened, in the order it did. */
export function describeRollback(r: { from: string; to: string; step: string }): string {
  return `new serial ${r.from} failed ${r.step}; rolled back to ${r.to}`;
}

/** True when this certificate has anything to deploy or verify. */
export function hasDeployWork(deploy: CertificateDeploySpec, settings: DeploySettings): boolean {
  return (
    deploy.deploy.length > 0 ||
    deploy.hooks.deploy.length > 0 ||
    settings.hooks.deploy.length > 0 ||
    deploy.endpoints.length > 0
  );
}
