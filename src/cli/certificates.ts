import { systemClock } from '../core/clock';
import { describeError, UsageError } from '../core/errors';
import { loadConfig, resolveConfigPath } from '../config/load';
import type { AgentConfig, CertificateSpec } from '../config/types';
import { recordedProfile } from '../renew/profile';
import { runRenew, type CertOutcome } from '../renew/run';
import { StateStore, type CertState } from '../state/store';
import { readDeployState, type DeployState } from '../state/deploy-state';
import { CertStore } from '../store/cert-store';
import type { CertInfo } from '../x509';
import { EXIT_FAILED, EXIT_OK, type CommandContext } from './context';
import { actAsStateOwner } from './privileges';

/**
 * `certpilot certificates [NAME...]`: what the store holds and what the scheduler will do with
 * it. The plan comes from the same code as `renew --dry-run` (so the two cannot disagree), which
 * contacts nothing and writes nothing; certificates still stored but no longer configured are
 * listed too, so an operator sees what `certpilot delete` would tidy.
 */

export interface CertificateRow {
  name: string;
  configured: boolean;
  domains: string[];
  keyType: string | null;
  ca: string | null;
  profile: string | null;
  profileMode: string | null;
  /** The profile the installed version was ordered with (name null: none); null: not recorded. */
  issuedProfile: { name: string | null; unavailable?: string } | null;
  serial: string | null;
  notAfter: string | null;
  status: string;
  /** The scheduler's reason (due, backoff, guarded, ...), for configured certificates. */
  reason: string | null;
  detail: string | null;
  renewAt: string | null;
  deploy: { status: string; serial: string; endpoints: Record<string, string> } | null;
  /**
   * Fleet mode: every node's deploy record of this certificate (from etcd), by node name: the
   * serial it deployed, `verified`/`failed`/`rolled-back`, when, what it serves after a failure.
   */
  nodes?: Record<string, NodeDeployColumn>;
}

export interface NodeDeployColumn {
  serial: string;
  status: string;
  at: string;
  servingSerial?: string;
  error?: string;
}

export async function certificatesCommand(ctx: CommandContext): Promise<number> {
  const config = await loadConfig({ path: resolveConfigPath(ctx.global.config) });
  actAsStateOwner(config.storage.stateDir, ctx.log);
  const rows = await listCertificates(config, ctx.args, ctx);
  ctx.stdout.write(
    ctx.global.json ? JSON.stringify({ certificates: rows }, null, 2) + '\n' : formatRows(rows),
  );
  return rows.some((r) => r.status === 'failed') ? EXIT_FAILED : EXIT_OK;
}

export async function listCertificates(
  config: AgentConfig,
  names: readonly string[],
  ctx: Pick<CommandContext, 'log' | 'signal'>,
): Promise<CertificateRow[]> {
  const stateDir = config.storage.stateDir;
  const store = new CertStore({ stateDir, archiveDepth: config.storage.archiveDepth, log: ctx.log });
  const configured = new Map(config.certificates.map((c) => [c.name, c]));
  const stored = await store.listNames();
  const unknown = names.filter((n) => !configured.has(n) && !stored.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `certpilot certificates: no certificate named ${unknown.map((n) => `"${n}"`).join(', ')}`,
    );
  }
  const wanted = (n: string): boolean => names.length === 0 || names.includes(n);
  const plannedNames = config.certificates.map((c) => c.name).filter(wanted);
  const report =
    plannedNames.length === 0
      ? { outcomes: [] as CertOutcome[] }
      : await runRenew(
          config,
          { names: plannedNames, dryRun: true, force: false },
          {
            log: ctx.log,
            clock: systemClock,
            signal: ctx.signal,
            openAcme: () => Promise.reject(new Error('certificates: contacts no CA')),
            openSolver: () => {
              throw new Error('certificates: contacts no DNS provider');
            },
          },
        );
  const rows: CertificateRow[] = [];
  for (const outcome of report.outcomes) {
    const spec = configured.get(outcome.name)!;
    rows.push(await configuredRow(config, spec, outcome, stateDir));
  }
  for (const name of stored.filter((n) => !configured.has(n) && wanted(n))) {
    rows.push(await unconfiguredRow(store, name, stateDir));
  }
  return config.fleet ? withNodeColumns(config, rows, ctx.signal) : rows;
}

/** Fleet mode: each row gets every node's deploy record (one etcd request for all of them). */
async function withNodeColumns(
  config: AgentConfig,
  rows: CertificateRow[],
  signal: AbortSignal | undefined,
): Promise<CertificateRow[]> {
  const { createEtcdBackend } = await import('../store/etcd');
  const { readFleetRecords } = await import('../fleet');
  const backend = createEtcdBackend(config.storage.etcd!);
  try {
    const records = await readFleetRecords(backend.client, backend.storage.prefix, signal);
    return rows.map((row) => {
      const nodes: Record<string, NodeDeployColumn> = {};
      for (const [node, r] of records.deploys.get(row.name) ?? []) {
        nodes[node] = {
          serial: r.serial,
          status: r.status,
          at: r.at,
          ...(r.servingSerial ? { servingSerial: r.servingSerial } : {}),
          ...(r.error ? { error: r.error } : {}),
        };
      }
      return { ...row, nodes };
    });
  } finally {
    backend.close();
  }
}

async function configuredRow(
  config: AgentConfig,
  spec: CertificateSpec,
  o: CertOutcome,
  stateDir: string,
): Promise<CertificateRow> {
  const state = (await new StateStore(stateDir).read(spec.name, { readOnly: true }).catch(() => undefined))
    ?.state;
  return {
    name: spec.name,
    configured: true,
    domains: [...spec.domains],
    keyType: spec.keyType,
    ca: issuerOf(config, state, o.serial),
    profile: spec.profile ?? null,
    profileMode: spec.profileMode ?? null,
    issuedProfile: state ? recordedProfile(state, o.serial) : null,
    serial: o.serial ?? null,
    notAfter: o.notAfter?.toISOString() ?? null,
    // `planned` is the dry run's word for "would be renewed now"; a listing says due.
    status: o.status === 'planned' ? 'due' : o.status,
    reason: o.decision.reason,
    detail: o.decision.detail,
    renewAt: o.decision.renewAt?.toISOString() ?? null,
    deploy: deployColumn(await readDeployState(stateDir, spec.name).catch(() => null)),
  };
}

/** The CA that issued the installed version: recorded at install (acme.fallback), else the primary. */
function issuerOf(config: AgentConfig, state: CertState | undefined, serial: string | undefined): string {
  const last = state?.lastSuccess;
  return last?.ca && serial !== undefined && last.serial === serial ? last.ca : config.acme.directoryUrl;
}

async function unconfiguredRow(store: CertStore, name: string, stateDir: string): Promise<CertificateRow> {
  let info: CertInfo | null = null;
  let problem: string | undefined;
  try {
    info = await store.readInfo(name);
  } catch (err) {
    problem = describeError(err);
  }
  return {
    name,
    configured: false,
    domains: info ? [...info.names] : [],
    keyType: info?.keyType ?? null,
    ca: info ? `issuer ${info.issuer}` : null,
    profile: null,
    profileMode: null,
    issuedProfile: null,
    serial: info?.serial ?? null,
    notAfter: info?.notAfter.toISOString() ?? null,
    status: 'unconfigured',
    reason: null,
    detail: problem ?? 'not in the configuration: never renewed; `certpilot delete` removes it',
    renewAt: null,
    deploy: deployColumn(await readDeployState(stateDir, name).catch(() => null)),
  };
}

function deployColumn(state: DeployState | null): CertificateRow['deploy'] {
  if (!state) return null;
  const endpoints: Record<string, string> = {};
  for (const [key, e] of Object.entries(state.endpoints)) endpoints[key] = e.status;
  return { status: state.status, serial: state.serial, endpoints };
}

/** "  profile: shortlived (preferred; issued with: none, the CA did not offer it)". */
function profileText(r: CertificateRow): string {
  const issued = r.issuedProfile;
  if (!r.profile && !issued?.name) return '';
  const wanted = r.profile ? `${r.profile} (${r.profileMode ?? 'required'}` : 'none (';
  if (!issued) return `  profile: ${wanted}; issued with: not recorded)`;
  const got = issued.name ?? (issued.unavailable ? 'none, the CA did not offer it' : 'none');
  return `  profile: ${wanted}; issued with: ${got})`;
}

export function formatRows(rows: readonly CertificateRow[]): string {
  if (rows.length === 0) return 'no certificates configured or stored\n';
  return rows.map(formatRow).join('\n') + '\n';
}

function formatRow(r: CertificateRow): string {
  const lines = [`${r.name}  ${r.status}${r.configured ? '' : ' (stored, not configured)'}`];
  lines.push(`  names:     ${r.domains.join(', ') || '-'}`);
  lines.push(`  key:       ${r.keyType ?? '-'}${profileText(r)}`);
  if (r.ca) lines.push(`  CA:        ${r.ca}`);
  lines.push(`  expires:   ${r.notAfter ?? 'no certificate'}${r.serial ? `  serial: ${r.serial}` : ''}`);
  if (r.reason) lines.push(`  next:      ${r.reason}: ${r.detail ?? ''}`);
  else if (r.detail) lines.push(`  note:      ${r.detail}`);
  if (r.deploy) {
    const eps = Object.entries(r.deploy.endpoints).map(([k, s]) => `${k} ${s}`);
    lines.push(
      `  deploy:    ${r.deploy.status} (serial ${r.deploy.serial})${eps.length ? `: ${eps.join(', ')}` : ''}`,
    );
  }
  for (const [node, n] of Object.entries(r.nodes ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const serving = n.servingSerial ? `, serves ${n.servingSerial}` : '';
    lines.push(
      `  node ${node}: ${n.status} serial ${n.serial} at ${n.at}${serving}${n.error ? `: ${n.error}` : ''}`,
    );
  }
  return lines.join('\n');
}
