import { existsSync, readFileSync } from 'node:fs';
import type { AgentConfig, CertificateSpec } from '../../src/config/types';
import { withDeployConfig, parseDeployConfig } from '../../src/config/deploy';
import type { DeployAwareConfig } from '../../src/config/types';
import { writeDeployState } from '../../src/state/deploy-state';
import { CertStore } from '../../src/store/cert-store';
import { makeCa, makeCertificate } from '../helpers/certs';

const DAY = 86_400_000;
const ca = makeCa();

/**
 * Builds a deploy-aware config the way the loader will: a base AgentConfig plus the raw
 * deploy sections run through parseDeployConfig. Fails the test on any config issue, so a test
 * never runs with a half-parsed config.
 */
export function withDeploy(base: AgentConfig, raw: Record<string, unknown>): DeployAwareConfig {
  const { value, issues } = parseDeployConfig(raw, '');
  if (issues.length > 0) throw new Error(`deploy config issues: ${JSON.stringify(issues)}`);
  return withDeployConfig(base, value);
}

/** A minimal AgentConfig for tests that never talk to a CA. */
export function baseConfig(stateDir: string, certificates: CertificateSpec[]): AgentConfig {
  return {
    source: '(test)',
    acme: { directoryUrl: 'https://127.0.0.1:1/dir', termsAgreed: true, requestTimeoutMs: 1000 },
    storage: { stateDir, archiveDepth: 3 },
    renewal: { renewRatio: 1 / 3, shortLifetimeRatio: 1 / 2, shortLifetimeDays: 10, maxOrdersPerWeek: 20 }, // tests force renewals repeatedly
    defaultKeyType: 'ec-p256',
    concurrency: 2,
    daemon: { checkIntervalMs: 600_000 },
    dns: { resolvers: [], nameserverPort: 53, queryTimeoutMs: 1000, providers: {} },
    certificates,
  };
}

/** A certificate these tests never order: its DNS provider is named (as the loader requires) but unused. */
export function certSpec(name: string, domains: string[]): CertificateSpec {
  return {
    name,
    domains,
    keyType: 'ec-p256',
    reuseKey: false,
    dnsProvider: 'unused',
    domainProviders: {},
    outputs: [],
  };
}

/** Polls a condition until it holds (a wait for a state, never an assertion by itself). */
export async function eventually(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** True when the process is gone or a zombie (killed, waiting to be reaped by a non-reaping pid 1). */
export function processGone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    // "pid (comm) S ..." — the state follows the last ')'.
    const text = readFileSync(stat, 'utf8');
    const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/**
 * Installs two versions of `name` and records the second as issued but never deployed, as if
 * an earlier run died after install: the next run must deploy it without a new order.
 */
export async function installPair(stateDir: string, name: string, domains: string[]) {
  const store = new CertStore({ stateDir, archiveDepth: 3 });
  const make = () =>
    makeCertificate({
      names: domains,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 89 * DAY),
      issuer: ca,
    });
  const first = make();
  await store.install(name, {
    cert: first.certPem,
    chain: ca.certPem,
    fullchain: first.certPem + ca.certPem,
    key: first.keyPem,
  });
  const second = make();
  const installed = await store.install(name, {
    cert: second.certPem,
    chain: ca.certPem,
    fullchain: second.certPem + ca.certPem,
    key: second.keyPem,
  });
  const previous = await store.readArchived(installed.archived!);
  // As if an earlier run installed `second` and died before deploying it.
  await writeDeployState(stateDir, name, {
    serial: installed.info.serial,
    fingerprint: installed.info.fingerprint256,
    status: 'issued',
    updatedAt: new Date().toISOString(),
    previousSerial: previous.info.serial,
    endpoints: {},
    attempts: 1,
  });
  return { store, info: installed.info, previous: previous.info };
}
