import { isSecretName, maskUrl, REDACTED, redactStrings } from '../core/redact';
import { findProvider } from '../dns/registry';
import { checkSettingsOf } from './access';
import { FILE_SUFFIX } from './combinators';
import { isLoopbackHost } from './formats';
import type {
  DigestSchedule,
  AcmeSettings,
  AgentConfig,
  CertificateSpec,
  CommandSpec,
  DeployStep,
  DnsProviderInstance,
  EmailAlert,
  Endpoint,
  FileOutput,
  HookSet,
  NotifySettings,
  SecretOrigin,
  SecretRef,
  ThresholdOverrides,
  WatchSettings,
  WebhookAlert,
} from './types';

/** What replaces every secret in printed configuration (the one redaction policy's marker). */
export { REDACTED };

/**
 * `certpilot config check` prints the configuration as loaded: in the file's own key names,
 * every section with its defaults filled in, presets expanded, durations as "30s" and modes
 * as "0644". Loaded back (with the same environment) it gives the same configuration. Secrets
 * are printed as the reference they were given as (`<key>_file: /path`; one from the
 * environment is left out, the variable supplies it again) or, given inline, as
 * "[redacted]". Built field by field rather than by copying objects, so a secret added to
 * the types later is not printed by accident.
 */

type Doc = Record<string, unknown>;

/** Drops undefined values: YAML would print them as null, which means something else. */
function compact(doc: Doc): Doc {
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined));
}

/** Milliseconds in the largest unit that is exact: parseDuration reads it back unchanged. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** `profileLifetime` as its parser reads it: whole days when exact, else hours. */
function formatLifetime(ms: number): string {
  const hours = Math.round(ms / 3_600_000);
  return hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** A secret given inline or as a file ({value} / {file}). */
function secretRefKeys(key: string, ref: SecretRef | undefined): Doc {
  if (!ref) return {};
  return 'file' in ref ? { [key + FILE_SUFFIX]: ref.file } : { [key]: REDACTED };
}

/** A secret with a known origin: the file's path, nothing for a variable, else masked. */
function secretOriginKeys(key: string, origin: SecretOrigin | undefined): Doc {
  if (origin && 'file' in origin) return { [key + FILE_SUFFIX]: origin.file };
  if (origin && 'env' in origin) return {};
  return { [key]: REDACTED };
}

/** Headers and hook environment variables whose names say they carry credentials. */
function maskNamed(map: Readonly<Record<string, string>>): Doc {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, isSecretName(k) ? REDACTED : v]));
}

function describeAcme(acme: AcmeSettings): Doc {
  const eab = acme.eab
    ? { keyId: acme.eab.keyId, ...secretOriginKeys('hmacKey', acme.eab.hmacKeyOrigin) }
    : undefined;
  return compact({
    directory: acme.directoryUrl,
    email: acme.email,
    termsAgreed: acme.termsAgreed,
    eab,
    caBundle: acme.caBundle,
    preferredChain: acme.preferredChain,
    caaIdentities: acme.caaIdentities ? [...acme.caaIdentities] : undefined,
    requestTimeout: formatDuration(acme.requestTimeoutMs),
    fallback: acme.fallback?.map(describeAcme),
  });
}

function describeProvider(p: DnsProviderInstance): Doc {
  const def = findProvider(p.type);
  const options: Doc = {};
  for (const [key, value] of Object.entries(p.options)) {
    // Without a definition we cannot tell which options are secret: hide them all.
    const sensitive = def ? def.options[key]?.sensitive === true : true;
    Object.assign(options, sensitive ? secretOriginKeys(key, p.secretOrigins?.[key]) : { [key]: value });
  }
  return {
    type: p.type,
    zones: [...p.zones],
    ttl: p.ttl,
    propagationTimeout: formatDuration(p.propagationTimeoutMs),
    propagationInterval: formatDuration(p.propagationIntervalMs),
    ...(p.cnameToAnyZone ? { cnameToAnyZone: true } : {}),
    ...options,
  };
}

function describeOutput(o: FileOutput): Doc {
  if (o.format !== undefined)
    return compact({
      path: o.path,
      format: o.format,
      content: o.content,
      password_file: o.passwordFile,
      friendlyName: o.friendlyName,
      owner: o.owner,
      group: o.group,
      mode: octal(o.certMode),
    });
  return compact({
    cert: o.cert,
    chain: o.chain,
    fullchain: o.fullchain,
    key: o.key,
    owner: o.owner,
    group: o.group,
    mode: octal(o.certMode),
    keyMode: octal(o.keyMode),
  });
}

/** A command in its mapping form: argv as `command`, or `shell: true` with the string. */
export function describeCommand(c: CommandSpec): Doc {
  const line = c.shell !== undefined ? { shell: true, command: c.shell } : { command: [...(c.argv ?? [])] };
  return compact({ ...line, timeout: formatDuration(c.timeoutMs), cwd: c.cwd, env: maskNamed(c.env) });
}

function describeHooks(h: HookSet): Doc {
  return {
    pre: h.pre.map(describeCommand),
    deploy: h.deploy.map(describeCommand),
    post: h.post.map(describeCommand),
  };
}

function describeEndpoint(e: Endpoint): Doc {
  return compact({
    host: e.host,
    port: e.port,
    servername: e.servername,
    connectAddress: e.connectAddress,
    caBundle: e.caBundle,
    starttls: e.starttls,
  });
}

function describeStep(s: DeployStep): Doc {
  const head = compact({ type: s.type, name: s.name });
  switch (s.type) {
    case 'nginx': {
      // An empty argv is the default (the root-run reload unit tests and reloads): left out.
      const own = (c: CommandSpec): Doc | undefined =>
        c.argv?.length === 0 ? undefined : describeCommand(c);
      return compact({
        ...head,
        push: s.push.map(describeCommand),
        test: own(s.test),
        reload: own(s.reload),
        // The step's timeout is the default of the commands left out.
        timeout: formatDuration((s.test.argv?.length === 0 ? s.test : s.reload).timeoutMs),
      });
    }
    case 'systemd':
      return {
        ...head,
        unit: s.unit,
        action: s.action,
        systemctl: s.systemctl,
        timeout: formatDuration(s.timeoutMs),
      };
    case 'webhook':
      return {
        ...head,
        url: maskUrl(s.url),
        ...secretRefKeys('secret', s.secret),
        signatureHeader: s.signatureHeader,
        headers: maskNamed(s.headers),
        retries: s.retries,
        timeout: formatDuration(s.timeoutMs),
        includeCertificate: s.includeCertificate,
      };
    case 'command':
      return { ...head, ...describeCommand(s.command) };
  }
}

function describeCertificateDns(c: CertificateSpec): Doc | undefined {
  const domains = Object.keys(c.domainProviders).length > 0 ? { ...c.domainProviders } : undefined;
  if (c.dnsProvider === undefined && domains === undefined) return undefined;
  return compact({ provider: c.dnsProvider, domains });
}

function describeCertificate(c: CertificateSpec): Doc {
  return compact({
    name: c.name,
    domains: [...c.domains],
    keyType: c.keyType,
    reuseKey: c.reuseKey,
    profile: c.profile,
    profileMode: c.profileMode,
    profileLifetime: c.profileLifetimeMs !== undefined ? formatLifetime(c.profileLifetimeMs) : undefined,
    dns: describeCertificateDns(c),
    outputs: c.outputs.map(describeOutput),
    check: c.thresholds ? { ...c.thresholds } : undefined,
    endpoints: c.endpoints?.map(describeEndpoint),
    hooks: c.hooks ? describeHooks(c.hooks) : undefined,
    deploy: c.deploy?.map(describeStep),
    rollback: c.rollback,
  });
}

function describeWebhookAlert(w: WebhookAlert): Doc {
  return {
    url: maskUrl(w.url),
    format: w.format,
    ...secretRefKeys('secret', w.secret),
    signatureHeader: w.signatureHeader,
    headers: maskNamed(w.headers),
    retries: w.retries,
    timeout: formatDuration(w.timeoutMs),
  };
}

function describeEmailAlert(e: EmailAlert): Doc {
  return compact({
    host: e.host,
    port: e.port,
    tls: e.tls,
    username: e.username,
    ...secretRefKeys('password', e.password),
    from: e.from,
    to: [...e.to],
    timeout: formatDuration(e.timeoutMs),
    caBundle: e.caBundle,
  });
}

function describeNotify(n: NotifySettings): Doc {
  return compact({
    on: [...n.on],
    criticalDays: n.criticalDays,
    webhooks: n.webhooks.map(describeWebhookAlert),
    email: n.email ? describeEmailAlert(n.email) : undefined,
    digest: n.digest ? describeDigest(n.digest) : undefined,
  });
}

function describeDigest(d: DigestSchedule): string {
  if ('intervalMs' in d) return formatDuration(d.intervalMs);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(d.atMinuteOfDay / 60))}:${pad(d.atMinuteOfDay % 60)}`;
}

function describeWatch(w: WatchSettings | undefined): Doc {
  const entry = (e: { name?: string; names?: readonly string[]; thresholds: ThresholdOverrides }): Doc =>
    compact({ name: e.name, names: e.names ? [...e.names] : undefined, ...e.thresholds });
  return {
    files: (w?.files ?? []).map((f) =>
      compact({ path: f.path, ...entry(f), key: f.key, checkChain: f.checkChain }),
    ),
    endpoints: (w?.endpoints ?? []).map((e) => ({ ...describeEndpoint(e), ...entry(e) })),
  };
}

function describeMonitoring(config: AgentConfig): Doc {
  const check = checkSettingsOf(config);
  return {
    check: {
      ...check.thresholds,
      connectTimeout: formatDuration(check.connectTimeoutMs),
      handshakeTimeout: formatDuration(check.handshakeTimeoutMs),
      concurrency: check.concurrency,
    },
    watch: describeWatch(config.watch),
  };
}

function describeStorage(st: AgentConfig['storage']): Doc {
  const base: Doc = { stateDir: st.stateDir, archiveDepth: st.archiveDepth };
  if (st.backend !== 'etcd' || !st.etcd) return base;
  const e = st.etcd;
  return {
    ...base,
    backend: 'etcd',
    etcd: compact({
      endpoints: [...e.endpoints],
      prefix: e.prefix,
      caFile: e.caFile,
      certFile: e.certFile,
      keyFile: e.keyFile,
      user: e.user,
      password_file: e.passwordFile,
      encryptionKeys: e.encryptionKeys.map((k) => ({ id: k.id, file: k.file })),
      requestTimeout: formatDuration(e.requestTimeoutMs),
      retryFor: formatDuration(e.retryForMs),
      lockLease: formatDuration(e.lockLeaseMs),
    }),
  };
}

/** The configuration as a document in the file's own format (see the module comment). */
export function describeConfig(config: AgentConfig): Doc {
  const { daemon, dns, renewal } = config;
  const doc: Doc = {
    acme: describeAcme(config.acme),
    storage: describeStorage(config.storage),
    defaults: {
      keyType: config.defaultKeyType,
      renewal: {
        ratio: renewal.renewRatio,
        shortLifetimeRatio: renewal.shortLifetimeRatio,
        shortLifetimeDays: renewal.shortLifetimeDays,
        maxOrdersPerWeek: renewal.maxOrdersPerWeek,
      },
      concurrency: config.concurrency,
    },
    daemon: {
      checkInterval: formatDuration(daemon.checkIntervalMs),
      listen: daemon.listen ? formatListen(daemon.listen) : '',
      // The loader accepts an address beyond loopback only with this set.
      allowRemote: daemon.listen !== undefined && !isLoopbackHost(daemon.listen.host),
      // The URL may carry a token: masked like every other secret.
      ...(daemon.heartbeat
        ? { heartbeat: REDACTED, heartbeatTimeout: formatDuration(daemon.heartbeat.timeoutMs) }
        : {}),
      ...(daemon.silentAfterMs !== undefined ? { silentAfter: formatDuration(daemon.silentAfterMs) } : {}),
      ...(daemon.redeployBackoffMs !== undefined
        ? { redeployBackoff: formatDuration(daemon.redeployBackoffMs) }
        : {}),
      ...(daemon.endpointIntervalMs !== undefined
        ? { endpointInterval: formatDuration(daemon.endpointIntervalMs) }
        : {}),
      ...(daemon.readinessIntervalMs !== undefined
        ? {
            readinessInterval:
              daemon.readinessIntervalMs === 0 ? 'off' : formatDuration(daemon.readinessIntervalMs),
          }
        : {}),
    },
    dns: {
      resolvers: [...dns.resolvers],
      nameserverPort: dns.nameserverPort,
      queryTimeout: formatDuration(dns.queryTimeoutMs),
      ...(dns.propagation
        ? {
            propagation: {
              mode: dns.propagation.mode,
              unreachable: dns.propagation.unreachable,
              ipv6: dns.propagation.ipv6,
              wait: formatDuration(dns.propagation.waitMs),
            },
          }
        : {}),
      providers: Object.fromEntries(Object.entries(dns.providers).map(([k, p]) => [k, describeProvider(p)])),
    },
    certificates: config.certificates.map(describeCertificate),
    ...(config.hooks ? { hooks: describeHooks(config.hooks) } : {}),
    ...(config.notify ? { notify: describeNotify(config.notify) } : {}),
    ...(config.verify ? { verify: describeVerify(config.verify) } : {}),
    ...describeMonitoring(config),
    ...(config.fleet ? { fleet: describeFleet(config.fleet) } : {}),
  };
  // Belt and braces: a registered secret pasted into a field that is not marked secret.
  return redactStrings(doc) as Doc;
}

function describeFleet(f: NonNullable<AgentConfig['fleet']>): Doc {
  return {
    nodeName: f.nodeName,
    rollout: f.rollout,
    ...(f.canary !== undefined ? { canary: f.canary } : {}),
    stagger: formatDuration(f.staggerMs),
    pollInterval: formatDuration(f.pollIntervalMs),
  };
}

function describeVerify(v: NonNullable<AgentConfig['verify']>): Doc {
  return {
    timeout: formatDuration(v.timeoutMs),
    interval: formatDuration(v.intervalMs),
    maxInterval: formatDuration(v.maxIntervalMs),
    connectTimeout: formatDuration(v.connectTimeoutMs),
    handshakeTimeout: formatDuration(v.handshakeTimeoutMs),
  };
}

function formatListen(l: { host: string; port: number }): string {
  return `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

/** Secrets the printed document leaves out because a variable supplies them: named in a comment. */
export function environmentSecrets(config: AgentConfig): string[] {
  const out: string[] = [];
  const eab = config.acme.eab?.hmacKeyOrigin;
  if (eab && 'env' in eab) out.push(`acme.eab.hmacKey from $${eab.env}`);
  for (const [name, p] of Object.entries(config.dns.providers)) {
    for (const [key, origin] of Object.entries(p.secretOrigins ?? {}))
      if ('env' in origin) out.push(`dns.providers.${name}.${key} from $${origin.env}`);
  }
  return out;
}
