import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CertpilotError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { readSecret } from '../config/secrets';
import type { CommandSpec, DeployStep } from '../config/types';
import { runChecked } from './command';
import { certPlaceholders, certVars, type CertVarsInput } from './env';
import { postJson } from '../core/http';
import { configuredHostLookup } from '../dns/host-lookup';

/**
 * Built-in deployers. Each is a small function of (step, certificate) that throws on failure;
 * the caller records state, verifies and rolls back. They share the command runner, so every
 * command they run has the same no-shell, timeout and output-capture contract as hooks.
 */

export interface StepContext {
  cert: CertVarsInput;
  /** PEM fullchain, for the webhook deployer's `includeCertificate`. */
  fullchainPem: string;
  fingerprint256: string;
  log: Logger;
  signal?: AbortSignal;
}

function run(spec: CommandSpec, label: string, ctx: StepContext): Promise<unknown> {
  return runChecked(spec, {
    label,
    vars: certVars(ctx.cert),
    placeholders: certPlaceholders(ctx.cert),
    log: ctx.log,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

/**
 * The file certpilot-reload-nginx.path (PathExists=, run by root) waits for: its service deletes
 * it, runs `nginx -t` and reloads nginx. It lives in the state directory, the one place the
 * unprivileged service may write whatever the outputs are. PathExists= is level-triggered, so
 * a request made while a reload runs starts another one afterwards instead of being lost.
 */
export const NGINX_RELOAD_REQUEST = 'nginx-reload-request';

/** <stateDir>/nginx-reload-request; the certificate directory is <stateDir>/certs/<name>. */
export function nginxReloadRequestPath(certDir: string): string {
  return path.join(path.dirname(path.dirname(certDir)), NGINX_RELOAD_REQUEST);
}

/** An nginx `test`/`reload` left out: the parser gives an empty argv (DEFAULT_NGINX_*). */
function isDefault(spec: CommandSpec): boolean {
  return spec.shell === undefined && (spec.argv?.length ?? 0) === 0;
}

/**
 * The nginx deployer's default reload: runs after the new files are in place (deploy follows
 * the store's install), so the root service never reloads half a version. Verification of the
 * certificate's endpoints then waits for nginx to serve it.
 */
async function requestNginxReload(label: string, ctx: StepContext): Promise<void> {
  const file = nginxReloadRequestPath(ctx.cert.paths.dir);
  try {
    await writeFile(file, `${ctx.cert.name} ${ctx.cert.serial}\n`, { mode: 0o600 });
  } catch (err) {
    throw new CertpilotError(
      'DEPLOY_FAILED',
      `${label}: cannot request an nginx reload (${file}): ${describeError(err)}`,
      { cause: err },
    );
  }
  ctx.log.info('nginx reload requested from certpilot-reload-nginx.path', { file });
}

export function stepLabel(step: DeployStep, index: number): string {
  return `deploy[${index}]${step.name ? ` "${step.name}"` : ''} (${step.type})`;
}

export async function runStep(step: DeployStep, index: number, ctx: StepContext): Promise<void> {
  const label = stepLabel(step, index);
  switch (step.type) {
    case 'nginx':
      // Push (e.g. to a CDN origin) first, then let nginx check its config with the new files:
      // a rejected pair stops here while the old workers keep serving the old certificate.
      for (const [i, push] of step.push.entries()) await run(push, `${label} push[${i}]`, ctx);
      if (!isDefault(step.test)) await run(step.test, `${label} config test`, ctx);
      if (isDefault(step.reload)) await requestNginxReload(label, ctx);
      else await run(step.reload, `${label} reload`, ctx);
      return;
    case 'systemd':
      await run(
        { argv: [step.systemctl, step.action, '--', step.unit], timeoutMs: step.timeoutMs, env: {} },
        `${label} ${step.action} ${step.unit}`,
        ctx,
      );
      return;
    case 'command':
      await run(step.command, label, ctx);
      return;
    case 'webhook': {
      const c = ctx.cert;
      await postJson({
        url: step.url,
        body: {
          event: 'certificate.deployed',
          certificate: {
            name: c.name,
            domains: c.domains,
            serial: c.serial,
            notAfter: c.notAfter.toISOString(),
            fingerprint256: ctx.fingerprint256,
            previousSerial: c.previousSerial ?? null,
          },
          // Public material only: the private key is never sent by this deployer.
          ...(step.includeCertificate ? { fullchain: ctx.fullchainPem } : {}),
        },
        ...(step.secret ? { secret: await readSecret(step.secret) } : {}),
        signatureHeader: step.signatureHeader,
        headers: step.headers,
        retries: step.retries,
        timeoutMs: step.timeoutMs,
        component: 'webhook',
        ...webhookLookup(),
        log: ctx.log,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      return;
    }
  }
}

/** dns.resolvers, when set, resolve the webhook's host name too (never getaddrinfo). */
function webhookLookup(): { lookup?: NonNullable<ReturnType<typeof configuredHostLookup>> } {
  const lookup = configuredHostLookup();
  return lookup ? { lookup } : {};
}
