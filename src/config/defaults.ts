import {
  ALERT_KINDS,
  type HookSet,
  type KeyType,
  type NotifySettings,
  type RenewalPolicy,
  type ThresholdSettings,
  type VerifySettings,
} from './types';

/**
 * Every default of the configuration, each defined once with the reason for its value. The
 * convict schema, the section parsers, the planner (src/plan) and the inspection code
 * (src/inspect) all import them from here, so changing one changes it everywhere.
 */

// ---- acme, storage ---------------------------------------------------------------------------

/** Production Let's Encrypt: the CA most users mean; staging must be asked for explicitly. */
export const DEFAULT_ACME_DIRECTORY = 'letsencrypt';
/** One ACME request; Let's Encrypt answers in well under a second, 30s rides out a slow spell. */
export const DEFAULT_REQUEST_TIMEOUT = '30s';
/** FHS location for state that persists across reboots. */
export const DEFAULT_STATE_DIR = '/var/lib/certpilot';
/** Five previous versions are enough to roll back a bad deploy and cost a few kilobytes. */
export const DEFAULT_ARCHIVE_DEPTH = 5;

// ---- defaults: key type, renewal policy, concurrency -------------------------------------------

/** Let's Encrypt's own recommendation: ECDSA P-256 is small, fast and universally supported. */
export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';
/**
 * Let's Encrypt's advice without ARI: renew with a third of the lifetime left (30 days of 90).
 * https://letsencrypt.org/docs/integration-guide/#when-to-renew
 */
export const DEFAULT_RENEW_RATIO = 1 / 3;
/**
 * Short-lived certificates (6-day `shortlived` profile) renew with half the lifetime left: a
 * third of six days leaves two days to notice and fix a failure, half leaves three.
 */
export const DEFAULT_SHORT_LIFETIME_RATIO = 1 / 2;
/** "Short" is under 10 days, the threshold Let's Encrypt gives for the half rule. */
export const DEFAULT_SHORT_LIFETIME_DAYS = 10;
/** Let's Encrypt allows 5 certificates per exact set of names per 7 days; stop at 3 to keep 2 for a human. */
export const DEFAULT_MAX_ORDERS_PER_WEEK = 3;

export const DEFAULT_RENEWAL_POLICY: RenewalPolicy = {
  renewRatio: DEFAULT_RENEW_RATIO,
  shortLifetimeRatio: DEFAULT_SHORT_LIFETIME_RATIO,
  shortLifetimeDays: DEFAULT_SHORT_LIFETIME_DAYS,
  maxOrdersPerWeek: DEFAULT_MAX_ORDERS_PER_WEEK,
};

/** Four orders at once keeps well inside Let's Encrypt's 300 new orders per 3 hours. */
export const DEFAULT_CONCURRENCY = 4;

// ---- daemon, dns --------------------------------------------------------------------------------

/** Caddy and Let's Encrypt's advice: look often (ARI changes), cheap when nothing is due. */
export const DEFAULT_CHECK_INTERVAL = '10m';
/** Metrics and health on loopback only by default: nothing is exposed without a decision. */
export const DEFAULT_DAEMON_LISTEN = '127.0.0.1:9612';
/** Authoritative DNS listens on 53; tests point this at BIND on a high port. */
export const DEFAULT_NAMESERVER_PORT = 53;
/** One DNS query; a healthy nameserver answers in milliseconds, 5s covers a retry over TCP. */
export const DEFAULT_QUERY_TIMEOUT = '5s';

// ---- certificates -------------------------------------------------------------------------------

/** Reuse of a key across renewals is opt-in: a fresh key limits the damage of an unnoticed leak. */
export const DEFAULT_REUSE_KEY = false;
/** Certificates carry no secret: readable by everyone, as web servers expect. */
export const DEFAULT_CERT_MODE = 0o644;
/** Private keys: owner only. */
export const DEFAULT_KEY_MODE = 0o600;

// ---- check thresholds and probes ----------------------------------------------------------------

/**
 * Renewal normally happens with a third of the lifetime left (30 days for a 90-day
 * certificate, see DEFAULT_RENEW_RATIO). A certificate that still has under 21 days has
 * therefore missed about nine days of renewal attempts: someone should look. 21 days is also
 * roughly when Let's Encrypt used to send its first expiry e-mail (20 days).
 */
export const DEFAULT_WARNING_DAYS = 21;
/**
 * One week: enough time to fix DNS credentials or issue by hand before clients break. Also the
 * day count of the `critical` alert (notify.criticalDays): Let's Encrypt's expiry mails (gone
 * since 2025-06) warned at 7 days, so operators already act on that number.
 */
export const DEFAULT_CRITICAL_DAYS = 7;
/**
 * Day thresholds alone do not fit short-lived certificates: a 6-day certificate would always
 * be "critical" and a 47-day one (the CA/B Forum maximum from 2029) would warn days after each
 * renewal. The effective threshold is the smaller of the day count and this fraction of the
 * lifetime. A quarter is past the 1/3 renewal point, so it still means "renewal is overdue";
 * for 90-day certificates it is 22.5 days, so the 21-day rule decides there.
 */
export const DEFAULT_WARNING_RATIO = 1 / 4;
/** A tenth of the lifetime: 9 days of a 90-day certificate (the 7-day rule decides there). */
export const DEFAULT_CRITICAL_RATIO = 1 / 10;

export const DEFAULT_THRESHOLDS: ThresholdSettings = Object.freeze({
  warningDays: DEFAULT_WARNING_DAYS,
  criticalDays: DEFAULT_CRITICAL_DAYS,
  warningRatio: DEFAULT_WARNING_RATIO,
  criticalRatio: DEFAULT_CRITICAL_RATIO,
});

/** Most TCP connects on a LAN or the Internet finish in well under a second; 5 s allows for a slow path. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** TLS handshake, and separately the SMTP dialogue before STARTTLS (greylisting MTAs can delay the greeting by seconds). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Each probe holds one socket: 64 stays far below the usual 1024 descriptor limit and does not
 * look like a port scan to the endpoints, yet checks 1,000 endpoints in ~16 rounds.
 */
export const DEFAULT_PROBE_CONCURRENCY = 64;

// ---- hooks, deploy, verification, alerts --------------------------------------------------------

/** A reload or a config test takes seconds; a minute means the hook is stuck, not slow. */
export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
/** nginx reloads asynchronously and CDNs take a while: two minutes before calling it stale. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 120_000;
/** First retry soon (nginx usually swaps workers within a second), then back off. */
export const DEFAULT_VERIFY_INTERVAL_MS = 1_000;
/** Backoff cap: a CDN that takes minutes is still asked a few times a minute. */
export const DEFAULT_VERIFY_MAX_INTERVAL_MS = 15_000;
/** A webhook receiver answers in milliseconds; ten seconds means it is down. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Three tries ride out a receiver restart without holding a run for long. */
export const DEFAULT_WEBHOOK_RETRIES = 2;
/** SMTP servers may delay the greeting on purpose (greylisting, tarpits); 30s outlasts that. */
export const DEFAULT_SMTP_TIMEOUT_MS = 30_000;
/**
 * nginx deployer without `test`/`reload`: empty = certpilot runs no nginx command itself (the
 * service user may not: NoNewPrivileges, no polkit) and asks the root-run
 * certpilot-reload-nginx.path to test and reload nginx (src/deploy/deployers.ts).
 */
export const DEFAULT_NGINX_TEST: readonly string[] = [];
export const DEFAULT_NGINX_RELOAD: readonly string[] = [];
/** Header that carries the HMAC of a webhook body. */
export const DEFAULT_SIGNATURE_HEADER = 'X-Certpilot-Signature';

export const EMPTY_HOOKS: HookSet = { pre: [], deploy: [], post: [] };
export const DEFAULT_VERIFY: VerifySettings = {
  timeoutMs: DEFAULT_VERIFY_TIMEOUT_MS,
  intervalMs: DEFAULT_VERIFY_INTERVAL_MS,
  maxIntervalMs: DEFAULT_VERIFY_MAX_INTERVAL_MS,
  // Verification probes the served certificate the way `check` does: same timeouts.
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
};
/** Every alert kind on by default: an alert nobody asked for is cheaper than a silent outage. */
export const DEFAULT_NOTIFY: NotifySettings = {
  on: ALERT_KINDS,
  criticalDays: DEFAULT_CRITICAL_DAYS,
  webhooks: [],
};
