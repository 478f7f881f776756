import type { Endpoint, HookSet, DeployStep, NotifySettings, VerifySettings } from '../deploy/config';

/**
 * The normalised, validated configuration every other module receives. Produced once by
 * `loadConfig` (src/config/load.ts); nothing downstream reads raw config or environment.
 */

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

export interface EabSettings {
  readonly keyId: string;
  /** Sensitive. base64url HMAC key from the CA. */
  readonly hmacKey: string;
}

export interface AcmeSettings {
  /** Resolved directory URL (a preset name is expanded by the loader). */
  readonly directoryUrl: string;
  readonly email?: string;
  readonly termsAgreed: boolean;
  readonly eab?: EabSettings;
  /** Absolute path of extra CA certificates (PEM) to trust for the ACME server. */
  readonly caBundle?: string;
  /** Timeout of one HTTP request to the CA. */
  readonly requestTimeoutMs: number;
}

export interface StorageSettings {
  /** Absolute; holds accounts/, certs/, archive/, locks. */
  readonly stateDir: string;
  /** How many previous versions of each certificate to keep. */
  readonly archiveDepth: number;
}

export interface RenewalPolicy {
  /** Renew when this fraction of the lifetime is left (default 1/3). */
  readonly renewRatio: number;
  /** For lifetimes under `shortLifetimeDays`, renew at this fraction instead (default 1/2). */
  readonly shortLifetimeRatio: number;
  readonly shortLifetimeDays: number;
}

export interface DnsProviderInstance {
  /** Instance name used by certificates (`dns.providers.<name>`). */
  readonly name: string;
  /** Provider code from the registry (`rfc2136`, `route53`, ...). */
  readonly type: string;
  /** Options validated against the provider's option schema; may hold secrets. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Zones this instance may write (suffixes); empty = any zone. */
  readonly zones: readonly string[];
  readonly ttl: number;
  readonly propagationTimeoutMs: number;
  readonly propagationIntervalMs: number;
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
  readonly providers: Readonly<Record<string, DnsProviderInstance>>;
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
  /** Mode of certificate files (default 0644) and of the key (default 0600). */
  readonly certMode: number;
  readonly keyMode: number;
}

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
  /** TLS endpoints that serve this certificate (deploy verification, `check`). */
  readonly endpoints?: readonly Endpoint[];
  readonly hooks?: HookSet;
  readonly deploy?: readonly DeployStep[];
  /** Restore the previous pair when deploy or verification fails (default: endpoints declared). */
  readonly rollback?: boolean;
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
  readonly dns: DnsSettings;
  readonly certificates: readonly CertificateSpec[];
  /** Global hooks (pre once, deploy per certificate, post once); see src/deploy/config.ts. */
  readonly hooks?: HookSet;
  readonly notify?: NotifySettings;
  readonly verify?: VerifySettings;
}
