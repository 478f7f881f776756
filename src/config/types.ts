/**
 * The normalised, validated configuration every other module receives. Produced once by
 * `loadConfig` (src/config/load.ts); nothing downstream reads raw config or environment.
 * Pure types and the few constant lists that define them: this module imports nothing, so
 * every layer (deploy, renew, inspect, plan) can depend on it without a cycle.
 */

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

/** How a secret was given: `config check` prints the reference, never the value. */
export type SecretOrigin = { readonly file: string } | { readonly env: string } | { readonly inline: true };

export interface EabSettings {
  readonly keyId: string;
  /** Sensitive. base64url HMAC key from the CA. */
  readonly hmacKey: string;
  /** Where hmacKey came from (absent = inline). */
  readonly hmacKeyOrigin?: SecretOrigin;
}

export interface AcmeSettings {
  /** Resolved directory URL (a preset name is expanded by the loader). */
  readonly directoryUrl: string;
  readonly email?: string;
  readonly termsAgreed: boolean;
  readonly eab?: EabSettings;
  /** Absolute path of extra CA certificates (PEM) to trust for the ACME server. */
  readonly caBundle?: string;
  /** Issuer common name of the preferred alternate chain (RFC 8555 §7.4.2 Link rel="alternate"). */
  readonly preferredChain?: string;
  /** CAA issuer domains of the CA when its directory lists none (`check --readiness`). */
  readonly caaIdentities?: readonly string[];
  /** Timeout of one HTTP request to the CA. */
  readonly requestTimeoutMs: number;
  /**
   * Further CAs, in order, for orders the primary keeps failing within one run (server errors,
   * timeouts, rate limits) and CAA allows; each with its own account. Only on the primary.
   */
  readonly fallback?: readonly AcmeSettings[];
}

export interface StorageSettings {
  /** Absolute; holds accounts/, certs/, archive/, locks. */
  readonly stateDir: string;
  /** How many previous versions of each certificate to keep. */
  readonly archiveDepth: number;
  /** Where state lives: files under stateDir, or an etcd cluster shared by a fleet (`etcd`). */
  readonly backend?: 'file' | 'etcd';
  readonly etcd?: EtcdSettings;
}

/** `storage.etcd`: how to reach the cluster and the keys that seal secrets in it. */
export interface EtcdSettings {
  /** Client URLs of the members (https, or http to this host only). */
  readonly endpoints: readonly string[];
  /** Prefix of every key certpilot writes; starts and ends with '/'. */
  readonly prefix: string;
  /** PEM file of the CA that signed the members' certificates. */
  readonly caFile?: string;
  /** Client certificate and its key (0600), for members started with --client-cert-auth. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** etcd user, and the file holding its password (0600). */
  readonly user?: string;
  readonly passwordFile?: string;
  /** Data keys (files of 32 random bytes, base64): the first seals new secrets, all open old ones. */
  readonly encryptionKeys: readonly { readonly id: string; readonly file: string }[];
  /** Longest wait for one member before trying the next. */
  readonly requestTimeoutMs: number;
  /** How long a call keeps trying the members before it fails as unavailable. */
  readonly retryForMs: number;
  /** Lease of a certificate lock; renewed every third of it while the holder works. */
  readonly lockLeaseMs: number;
}

/** `fleet:` (with storage.backend: etcd): several daemons share one store; see src/fleet. */
export interface FleetSettings {
  /** This node's name in the shared deploy records (default: the host name). */
  readonly nodeName: string;
  /** `all`: every node deploys a new version at once; `canary`: the canary first, then the others. */
  readonly rollout: 'all' | 'canary';
  /** The canary's node name; absent = the first known node name in sorted order. */
  readonly canary?: string;
  /** With canary: node k (k = 1, 2, ... of the others, sorted) deploys k × stagger after the canary verified. */
  readonly staggerMs: number;
  /** How often a node reads the store's versions and the fleet's deploy records. */
  readonly pollIntervalMs: number;
}

export interface RenewalPolicy {
  /** Renew when this fraction of the lifetime is left (default 1/3). */
  readonly renewRatio: number;
  /** For lifetimes under `shortLifetimeDays`, renew at this fraction instead (default 1/2). */
  readonly shortLifetimeRatio: number;
  readonly shortLifetimeDays: number;
  /** Exact-set guard: orders of the same names allowed in 7 days. */
  readonly maxOrdersPerWeek: number;
}

export interface DaemonSettings {
  readonly checkIntervalMs: number;
  /** Where /metrics and /healthz listen; absent = no HTTP server. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** Requested after every successful cycle (a dead man's switch); a secret (it may hold a token). */
  readonly heartbeat?: { readonly url: string; readonly timeoutMs: number };
  /** `certpilot check`: no successful run recorded for longer than this is `renewer-silent`. */
  readonly silentAfterMs?: number;
  /** `certpilot run`: how often endpoints (managed and watched) are probed for the inventory. */
  readonly endpointIntervalMs?: number;
  /** `certpilot run`: how often the renewal-readiness canary runs; 0 = never. */
  readonly readinessIntervalMs?: number;
  /** `certpilot run`: the wait after the first failed self-healing redeploy (then doubling). */
  readonly redeployBackoffMs?: number;
}

export interface DnsProviderInstance {
  /** Instance name used by certificates (`dns.providers.<name>`). */
  readonly name: string;
  /** Provider code from the registry (`rfc2136`, `route53`, ...). */
  readonly type: string;
  /** Options validated against the provider's option schema; may hold secrets. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Where each secret option came from (absent = inline). */
  readonly secretOrigins?: Readonly<Record<string, SecretOrigin>>;
  /** Zones this instance may write (suffixes); empty = any zone. */
  readonly zones: readonly string[];
  readonly ttl: number;
  readonly propagationTimeoutMs: number;
  readonly propagationIntervalMs: number;
  /**
   * With no `zones`: also write where an `_acme-challenge` CNAME points into a zone no instance
   * lists. Absent = false: a stale or spoofed CNAME must not redirect writes.
   */
  readonly cnameToAnyZone?: boolean;
}

export interface DnsSettings {
  /**
   * Recursive resolvers ("host" or "host:port", IPv6 as "[::1]:53") used to find zones and the
   * addresses of nameservers. Empty = the system's resolvers.
   */
  readonly resolvers: readonly string[];
  /**
   * Port on which the zones' authoritative nameservers are queried for propagation. 53 in
   * production; tests run BIND on a high port.
   */
  readonly nameserverPort: number;
  /** Timeout of one DNS query. */
  readonly queryTimeoutMs: number;
  /** How propagation is confirmed (dns.propagation); absent = every address, IPv6 included. */
  readonly propagation?: PropagationPolicy;
  readonly providers: Readonly<Record<string, DnsProviderInstance>>;
}

/** dns.propagation: what to do with nameservers this host cannot ask (docs/configuration.md). */
export interface PropagationPolicy {
  /** Ask the authoritative nameservers, or only wait `waitMs` (no DNS egress). */
  readonly mode: 'authoritative' | 'wait';
  /** An address that does not answer: keep waiting for it, or skip it once others confirm. */
  readonly unreachable: 'fail' | 'skip';
  /** IPv6 addresses of nameservers: always, never, or when this host has a global IPv6 address. */
  readonly ipv6: 'on' | 'off' | 'auto';
  readonly waitMs: number;
}

export interface FileOutput {
  /** Absolute paths; each may be omitted. */
  readonly cert?: string;
  readonly chain?: string;
  readonly fullchain?: string;
  readonly key?: string;
  /** User/group names or numeric ids; applied when running as root. */
  readonly owner?: string;
  readonly group?: string;
  /**
   * Mode of certificate files (default 0644) and of the key (default 0600). An entry with a
   * `format` writes one file at `path` with mode `certMode` (default 0600 when it holds the key).
   */
  readonly certMode: number;
  readonly keyMode: number;
  /** A single file in another format, instead of the PEM files above. */
  readonly path?: string;
  readonly format?: OutputFormat;
  /** `der` only: the leaf certificate (default) or the private key (PKCS#8). */
  readonly content?: 'cert' | 'key';
  /** `pkcs12` only: the file holding the password (a secret file, read at each install). */
  readonly passwordFile?: string;
  /** `pkcs12` only: the friendly name (keytool's alias); default the certificate's name. */
  readonly friendlyName?: string;
}

/** `pkcs12`: key, leaf and chain under a password; `pem-bundle`: chain and key in one PEM; `der`: one DER. */
export type OutputFormat = 'pkcs12' | 'pem-bundle' | 'der';

/** `required`: no order when the CA does not offer the profile; `preferred`: order without it. */
export type ProfileMode = 'required' | 'preferred';

export interface CertificateSpec {
  /** Unique, file-name safe ([a-z0-9][a-z0-9._-]*). */
  readonly name: string;
  /** Lower-case, de-duplicated, in configured order; first is the common name. */
  readonly domains: readonly string[];
  readonly keyType: KeyType;
  readonly reuseKey: boolean;
  /** Default DNS provider instance for the certificate's names. */
  readonly dnsProvider?: string;
  /** Per-domain provider instance, overriding `dnsProvider` (key: domain as configured). */
  readonly domainProviders: Readonly<Record<string, string>>;
  readonly outputs: readonly FileOutput[];
  /** ACME profile to order (e.g. `tlsserver`, `shortlived`). */
  readonly profile?: string;
  /** Set with `profile`: `required` fails when the CA lacks it, `preferred` orders without it. */
  readonly profileMode?: ProfileMode;
  /** The lifetime `profile` promises (ms), for CAs other than Let's Encrypt (`profileLifetime`). */
  readonly profileLifetimeMs?: number;
  /** TLS endpoints that serve this certificate (deploy verification, `check`). */
  readonly endpoints?: readonly Endpoint[];
  readonly hooks?: HookSet;
  readonly deploy?: readonly DeployStep[];
  /** Restore the previous pair when deploy or verification fails (default: endpoints declared). */
  readonly rollback?: boolean;
  /** `certificates[].check`: thresholds for `certpilot check` that override the global ones. */
  readonly thresholds?: ThresholdOverrides;
}

/**
 * When `certpilot check` calls a certificate WARNING or CRITICAL. The effective threshold is
 * the smaller of the day count and the fraction of the certificate's lifetime (see
 * src/inspect/findings.ts, which owns the defaults and the reasons for them).
 */
export interface ThresholdSettings {
  readonly warningDays: number;
  readonly criticalDays: number;
  readonly warningRatio?: number;
  readonly criticalRatio?: number;
}

/** Per entry: only what the entry sets; the rest comes from the global `check` section. */
export type ThresholdOverrides = Partial<ThresholdSettings>;

/** The global `check:` section (src/config/check.ts). */
export interface CheckSettings {
  readonly thresholds: ThresholdSettings;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** Probes (and file reads) in flight at once. */
  readonly concurrency: number;
}

/** `watch.files[]`: PEM files certpilot does not manage but reports on. */
export interface WatchedFile {
  /** Absolute path or glob pattern. */
  readonly path: string;
  /** Row name in `check` output and metrics (default: the file path). */
  readonly name?: string;
  /** Private key to check against the certificate (absolute path). */
  readonly key?: string;
  /** Check that the file carries the intermediates after the leaf (default true). */
  readonly checkChain: boolean;
  /** Names the certificate must cover; unset = not checked. */
  readonly names?: readonly string[];
  readonly thresholds: ThresholdOverrides;
}

/** `watch.endpoints[]`: a TLS endpoint whatever certificate it serves. */
export interface WatchedEndpoint extends Endpoint {
  readonly name?: string;
  readonly names?: readonly string[];
  readonly thresholds: ThresholdOverrides;
}

export interface WatchSettings {
  readonly files: readonly WatchedFile[];
  readonly endpoints: readonly WatchedEndpoint[];
}

export interface AgentConfig {
  /** Where the config came from (path), for messages. */
  readonly source: string;
  readonly acme: AcmeSettings;
  readonly storage: StorageSettings;
  readonly renewal: RenewalPolicy;
  readonly defaultKeyType: KeyType;
  /** How many orders may run at once. */
  readonly concurrency: number;
  readonly daemon: DaemonSettings;
  readonly dns: DnsSettings;
  readonly certificates: readonly CertificateSpec[];
  /** Global hooks (pre once, deploy per certificate, post once); see src/config/hooks.ts. */
  readonly hooks?: HookSet;
  readonly notify?: NotifySettings;
  readonly verify?: VerifySettings;
  /** Present when the file has a `check:` section; see checkSettingsOf for the defaults. */
  readonly check?: CheckSettings;
  /** Present when the file has a `watch:` section. */
  readonly watch?: WatchSettings;
  /** Present when the file has a `fleet:` section (storage.backend must be etcd). */
  readonly fleet?: FleetSettings;
}

// ---- deploy, hooks, verification and alerts (parsed by src/config/deploy.ts and neighbours) ----

/** A secret given inline or as a file read at use time (rotatable, never copied into logs). */
export type SecretRef = { readonly value: string } | { readonly file: string };

/** A program to run: argv without a shell, or a shell command only when asked for explicitly. */
export interface CommandSpec {
  /** argv form: argv[0] is looked up in PATH; no shell ever sees it. */
  readonly argv?: readonly string[];
  /** shell form: run by /bin/sh -c. Certificate data reaches it only through environment variables. */
  readonly shell?: string;
  readonly timeoutMs: number;
  readonly cwd?: string;
  /** Extra environment for this command. */
  readonly env: Readonly<Record<string, string>>;
}

export interface HookSet {
  readonly pre: readonly CommandSpec[];
  readonly deploy: readonly CommandSpec[];
  readonly post: readonly CommandSpec[];
}

export type DeployStep =
  | {
      readonly type: 'nginx';
      readonly name?: string;
      /** Run before the config test: e.g. copy files to a CDN origin. */
      readonly push: readonly CommandSpec[];
      readonly test: CommandSpec;
      readonly reload: CommandSpec;
    }
  | {
      readonly type: 'systemd';
      readonly name?: string;
      readonly unit: string;
      readonly action: 'reload' | 'restart';
      readonly systemctl: string;
      readonly timeoutMs: number;
    }
  | {
      readonly type: 'webhook';
      readonly name?: string;
      readonly url: string;
      readonly secret?: SecretRef;
      readonly signatureHeader: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly retries: number;
      readonly timeoutMs: number;
      /** Send the PEM certificate chain in the body (never the key). */
      readonly includeCertificate: boolean;
    }
  | { readonly type: 'command'; readonly name?: string; readonly command: CommandSpec };

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
  /** Address to connect to instead of resolving host: one origin behind a CDN or balancer. */
  readonly connectAddress?: string;
  /** PEM file of CA certificates (absolute path); only the fingerprint decides, trust is reported. */
  readonly caBundle?: string;
  /** Upgrade a plain connection first (SMTP STARTTLS: a mail server's certificate on port 25/587). */
  readonly starttls?: 'smtp';
}

export interface VerifySettings {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly maxIntervalMs: number;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
}

export type AlertKind =
  | 'renewal-failed'
  | 'deploy-failed'
  | 'verify-failed'
  | 'rollback'
  | 'rollback-failed'
  | 'critical'
  | 'expiry-warning'
  | 'expiry-critical'
  | 'expiry-resolved'
  | 'readiness-failed'
  | 'readiness-resolved'
  | 'digest'
  /** Fleet canary rollout: the canary node failed to deploy or verify a new version (src/fleet). */
  | 'fleet-canary-failed'
  | 'redeploy-failed'
  | 'redeploy-resolved'
  | 'ca-failover';
export const ALERT_KINDS: readonly AlertKind[] = [
  'renewal-failed',
  'deploy-failed',
  'verify-failed',
  'rollback',
  'rollback-failed',
  'critical',
  'expiry-warning',
  'expiry-critical',
  'expiry-resolved',
  'readiness-failed',
  'readiness-resolved',
  'digest',
  'fleet-canary-failed',
  'redeploy-failed',
  'redeploy-resolved',
  'ca-failover',
];

export interface WebhookAlert {
  readonly url: string;
  readonly format: 'json' | 'slack';
  readonly secret?: SecretRef;
  readonly signatureHeader: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly retries: number;
  readonly timeoutMs: number;
}

export interface EmailAlert {
  readonly host: string;
  readonly port: number;
  /** implicit = TLS from the first byte (465); starttls = required upgrade (587); none = loopback relays only. */
  readonly tls: 'implicit' | 'starttls' | 'none';
  readonly username?: string;
  readonly password?: SecretRef;
  readonly from: string;
  readonly to: readonly string[];
  readonly timeoutMs: number;
  /** PEM file of CAs to trust for the SMTP server. */
  readonly caBundle?: string;
}

export interface NotifySettings {
  readonly on: readonly AlertKind[];
  readonly criticalDays: number;
  readonly webhooks: readonly WebhookAlert[];
  readonly email?: EmailAlert;
  /** `certpilot run`: one summary of everything not OK; absent = no digest. */
  readonly digest?: DigestSchedule;
}

/** Daily at a UTC time of day (`HH:MM`), or every interval. */
export type DigestSchedule = { readonly atMinuteOfDay: number } | { readonly intervalMs: number };

/** Global part, extends AgentConfig. */
export interface DeploySettings {
  readonly hooks: HookSet;
  readonly notify: NotifySettings;
  readonly verify: VerifySettings;
}

/** Per certificate, extends CertificateSpec. */
export interface CertificateDeploySpec {
  readonly endpoints: readonly Endpoint[];
  readonly hooks: HookSet;
  readonly deploy: readonly DeployStep[];
  /** Default: true when endpoints are declared (nothing to verify a rollback against otherwise). */
  readonly rollback: boolean;
}

export type DeployAwareSpec = CertificateSpec & Partial<CertificateDeploySpec>;
export type DeployAwareConfig = Omit<AgentConfig, 'certificates'> &
  Partial<DeploySettings> & { readonly certificates: readonly DeployAwareSpec[] };

export interface ParsedDeployConfig {
  readonly settings: DeploySettings;
  /** By certificate name as written in the raw document. */
  readonly certificates: Readonly<Record<string, CertificateDeploySpec>>;
}
