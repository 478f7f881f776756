/**
 * The help text as data, and its renderers. `--help`, the man page certpilot(1) and the bash
 * completion are all rendered from this one module (scripts/package-docs.ts renders the last
 * two), so they cannot drift apart; test/package/man-page.test.ts compares them.
 */

export interface OptionHelp {
  /** As shown: "-c, --config PATH", "--force". An upper-case word is the option's value. */
  flags: string;
  description: string;
}

export interface CommandHelp {
  name: string;
  summary: string;
  /** Usage lines, each starting with "certpilot <name>". */
  synopsis: readonly string[];
  options: readonly OptionHelp[];
  /** Paragraphs after the options (behaviour, exit status). */
  notes: readonly string[];
}

export const GLOBAL_OPTIONS: readonly OptionHelp[] = [
  {
    flags: '-c, --config PATH',
    description: 'configuration file (env CERTPILOT_CONFIG; default /etc/certpilot/certpilot.yaml)',
  },
  { flags: '--log-level LEVEL', description: 'error | warn | info | debug (default info)' },
  { flags: '--log-format FMT', description: 'text | json (default text; logs go to stderr)' },
  { flags: '--json', description: 'machine-readable output on stdout' },
  {
    flags: '--staging',
    description:
      "renew/run against the CA's staging directory: a rehearsal kept in <stateDir>/staging, no outputs, deploy or hooks",
  },
  { flags: '-h, --help', description: 'help (also `certpilot <command> --help`)' },
  { flags: '-V, --version', description: 'print the version' },
];

export const PROGRAM_SUMMARY =
  'keeps TLS certificates from expiring (ACME DNS-01, atomic storage, verified deploy).';

export const COMMAND_HELP: readonly CommandHelp[] = [
  {
    name: 'renew',
    summary: 'Renew the certificates that are due (all, or the NAMEs given).',
    synopsis: ['certpilot renew [NAME...] [--force] [--dry-run] [--override-guard] [--json]'],
    options: [
      { flags: '--force', description: 'renew even when not due or held back by backoff' },
      {
        flags: '--override-guard',
        description:
          'order the NAMEs now despite the exact-set guard (implies --force; only at a terminal: stdin must be a TTY)',
      },
      { flags: '--dry-run', description: 'print the plan; contact nothing, write nothing' },
      { flags: '--json', description: 'one JSON document on stdout instead of status lines' },
    ],
    notes: [
      'Exit status: 0 every selected certificate is valid afterwards; 1 a renewal failed; 2 usage or configuration error.',
    ],
  },
  {
    name: 'check',
    summary: 'Check certificates, files and endpoints; a Nagios/Icinga plugin (exit 0-3).',
    synopsis: [
      'certpilot check [NAME...] [--json] [--only-problems] [--prometheus FILE]',
      '                [--connect-timeout DURATION] [--handshake-timeout DURATION] [--concurrency N]',
      '                [--readiness]',
    ],
    options: [
      { flags: 'NAME', description: 'managed certificates or named watch entries (default: all)' },
      { flags: '--json', description: 'one JSON document on stdout (schema in README.md)' },
      {
        flags: '--only-problems',
        description: 'list only rows that are not OK (the exit code still counts all)',
      },
      {
        flags: '--prometheus FILE',
        description: 'also write node_exporter textfile metrics to FILE, atomically',
      },
      {
        flags: '--connect-timeout D',
        description: 'TCP connect timeout per endpoint (default 5s; config check.connectTimeout)',
      },
      {
        flags: '--handshake-timeout D',
        description: 'TLS/STARTTLS handshake timeout (default 10s; config check.handshakeTimeout)',
      },
      {
        flags: '--concurrency N',
        description: 'endpoints probed at once (default 64; config check.concurrency)',
      },
      {
        flags: '--readiness',
        description:
          'also prove each managed certificate can renew: account, CAA, CNAME, DNS write canary, ARI (no order)',
      },
    ],
    notes: [
      'Exit status (Nagios plugin codes): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The worst row decides, in the order CRITICAL > WARNING > UNKNOWN > OK. Configuration errors, unknown NAMEs, unknown flags and bad option values exit 3 (UNKNOWN), not 2.',
      'Durations: 500ms, 30s, 5m, 14d; a bare number is seconds.',
    ],
  },
  {
    name: 'run',
    summary: 'Run as a service: renew on schedule (ARI), serve /metrics and /healthz.',
    synopsis: ['certpilot run'],
    options: [],
    notes: [
      'Runs in the foreground (for systemd). Checks every daemon.checkInterval (default 10m) and wakes for each planned renewal, retry or ARI poll. SIGHUP re-reads the configuration (an invalid one is logged and the running one kept); SIGTERM or SIGINT cancel in-flight orders, remove their TXT records and exit 0. Metrics and health on daemon.listen (default 127.0.0.1:9612): /metrics, /healthz.',
    ],
  },
  {
    name: 'init',
    summary: 'Write a first configuration (asks on a terminal; every answer is also a flag).',
    synopsis: [
      'certpilot init [--ca PRESET|URL] [--ca-bundle PATH] [--email ADDR] [--agree-tos]',
      '               [--eab-kid ID --eab-hmac-file PATH] [--provider TYPE] [--provider-option KEY=VALUE]...',
      '               [--name NAME] [--domain NAME]... [--output-dir DIR] [--deploy none|nginx]',
      '               [--endpoint HOST:PORT] [--state-dir DIR] [--set KEY.PATH=VALUE]... [--yes] [--force]',
    ],
    options: [
      {
        flags: '--ca PRESET|URL',
        description: 'letsencrypt (default), letsencrypt-staging, zerossl, google, buypass, or a URL',
      },
      {
        flags: '--ca-bundle PATH',
        description: 'extra CA certificates to trust for the ACME server (a private CA)',
      },
      { flags: '--email ADDR', description: 'contact address of the ACME account' },
      { flags: '--agree-tos', description: "agree to the CA's terms of service" },
      { flags: '--eab-kid ID', description: 'External Account Binding key id (zerossl, google)' },
      { flags: '--eab-hmac-file PATH', description: 'file holding the EAB HMAC key (mode 0600)' },
      { flags: '--provider TYPE', description: 'DNS provider: rfc2136 (default), route53, cloudflare, exec' },
      {
        flags: '--provider-option K=V',
        description: 'a provider option, repeatable; secrets as K_file=PATH (see certpilot providers)',
      },
      { flags: '--name NAME', description: 'name of the first certificate' },
      { flags: '--domain NAME', description: 'a domain of the first certificate (repeat for more)' },
      {
        flags: '--output-dir DIR',
        description: 'also copy fullchain and key to DIR/NAME.fullchain.pem and DIR/NAME.key',
      },
      { flags: '--deploy TARGET', description: 'what to reload after a renewal: none (default) or nginx' },
      { flags: '--endpoint HOST:PORT', description: 'a TLS endpoint that must serve the new certificate' },
      {
        flags: '--state-dir DIR',
        description: 'where certificates and state live (default /var/lib/certpilot)',
      },
      {
        flags: '--set KEY=VALUE',
        description: 'any other setting by dotted path, e.g. --set dns.resolvers=[127.0.0.1]',
      },
      {
        flags: '--yes',
        description: 'never ask: take flags and defaults (also when stdin is not a terminal)',
      },
      { flags: '--force', description: 'replace an existing file' },
    ],
    notes: [
      'Writes the file named by --config (default /etc/certpilot/certpilot.yaml). The file is checked as `certpilot config check` would before it is written; a problem is reported with its path and nothing is written. Exit status: 0 written, 2 usage or invalid.',
    ],
  },
  {
    name: 'certificates',
    summary:
      'List managed and stored certificates: names, key, CA, expiry, next renewal and why, deploy state.',
    synopsis: ['certpilot certificates [NAME...] [--json]'],
    options: [{ flags: '--json', description: 'one JSON document on stdout' }],
    notes: [
      'The plan is the one `renew --dry-run` prints: nothing is contacted and nothing is written. Certificates still in the store but no longer configured are listed as "stored, not configured". Exit status: 0 listed, 1 a certificate could not be read, 2 usage or configuration error.',
    ],
  },
  {
    name: 'delete',
    summary: 'Remove a certificate that is no longer configured from the store (archived first).',
    synopsis: ['certpilot delete NAME [--json]'],
    options: [{ flags: '--json', description: 'print what was deleted and where it was archived as JSON' }],
    notes: [
      "The live version is copied to the archive (<stateDir>/archive/NAME) before anything is removed; the scheduling state stays, because the CA's rate limits still count the orders it records. A configured certificate is refused: remove it from certificates[] first. Exit status: 0 deleted, 1 locked by a running certpilot or a killed run's challenge records still to clean, 2 usage error.",
    ],
  },
  {
    name: 'revoke',
    summary:
      'Revoke the live version of a stored certificate; with keyCompromise, renew it at once on a fresh key.',
    synopsis: ['certpilot revoke NAME [--reason REASON] [--with-cert-key] [--json]'],
    options: [
      {
        flags: '--reason REASON',
        description:
          'unspecified | keyCompromise | affiliationChanged | superseded | cessationOfOperation (default unspecified)',
      },
      {
        flags: '--with-cert-key',
        description: "sign the request with the certificate's own key instead of the account key",
      },
      { flags: '--json', description: 'what was revoked (and renewed) as JSON' },
    ],
    notes: [
      'The revocation is recorded in <stateDir>/revocations/NAME/SERIAL.json. With --reason keyCompromise a configured certificate is renewed at once with a new key, whatever reuseKey says. Exit status: 0 revoked (and renewed), 1 the CA refused or the renewal failed, 2 usage or configuration error.',
    ],
  },
  {
    name: 'account',
    summary: 'The ACME account: show it, replace its key (rollover) or deactivate it.',
    synopsis: ['certpilot account show|rollover|deactivate [--yes] [--json]'],
    options: [
      { flags: 'show', description: "the account's URL, status and contact as the CA has them" },
      {
        flags: 'rollover',
        description:
          'replace the account key (RFC 8555 key change); the new key is saved before the CA is told',
      },
      {
        flags: 'deactivate',
        description: 'deactivate the account at the CA (final) and move its files aside',
      },
      { flags: '--yes', description: 'confirm deactivate without asking (needed when there is no terminal)' },
      { flags: '--json', description: 'the result as JSON' },
    ],
    notes: [
      'A rollover interrupted at any point leaves a usable account: the next start asks the CA which of the two keys it knows and keeps that one. After deactivate the next renew registers a new account. Exit status: 0 done, 1 the CA refused or deactivate was not confirmed, 2 usage or configuration error.',
    ],
  },
  {
    name: 'import',
    summary: "Take over certbot's or lego's certificates, account and DNS settings.",
    synopsis: [
      'certpilot import certbot [NAME...] [--dir DIR] [--ca URL] [--write] [--dry-run] [--force]',
      'certpilot import lego [NAME...] [--path DIR] [--ca URL] [--provider TYPE] [--write] [--dry-run] [--force]',
    ],
    options: [
      { flags: 'NAME', description: 'certbot lineages or lego certificate names (default: all)' },
      { flags: '--dir DIR', description: "certbot's configuration directory (default /etc/letsencrypt)" },
      { flags: '--path DIR', description: "lego's --path directory (default ./.lego)" },
      {
        flags: '--ca URL',
        description:
          'the ACME directory to import for (default: the configured one, or the one certbot used)',
      },
      {
        flags: '--provider TYPE',
        description:
          "lego: the DNS provider lego used (rfc2136, route53, cloudflare), read from lego's environment",
      },
      { flags: '--write', description: 'merge the snippet into the configuration file' },
      { flags: '--dry-run', description: 'print the snippet and the plan; write nothing' },
      { flags: '--force', description: 'replace a stored certificate of the same name' },
      { flags: '--state-dir DIR', description: 'state directory when there is no configuration file yet' },
    ],
    notes: [
      'Prints a configuration snippet and the plan, writes secrets (TSIG secret, API token) to 0600 files beside the configuration, imports the ACME account (no new registration) and installs the certificates as current versions: the next renew is a no-op until the normal renewal time. See docs/import.md. Exit status: 0 imported, 2 usage or configuration error.',
    ],
  },
  {
    name: 'storage',
    summary: "Copy this host's store between the state directory and the etcd cluster (fleet mode).",
    synopsis: ['certpilot storage migrate --to etcd|file [--dry-run] [--json]'],
    options: [
      { flags: '--to etcd', description: 'copy from storage.stateDir into storage.etcd' },
      { flags: '--to file', description: 'copy from storage.etcd back into storage.stateDir' },
      { flags: '--dry-run', description: 'list what would be copied; write nothing' },
      { flags: '--json', description: 'the result per certificate as JSON' },
    ],
    notes: [
      'Copies every certificate version, the archive, the scheduling state and the challenge journal, each certificate under its lock on both sides, reading every key back after writing it. The source is left as it was; a second run copies nothing. A certificate the destination already holds with other content is not copied (conflict). The ACME account stays in the state directory. See docs/fleet.md. Exit status: 0 copied or nothing to do, 1 a certificate was busy or in conflict, 2 usage or configuration error.',
    ],
  },
  {
    name: 'providers',
    summary: 'List the DNS providers and their options.',
    synopsis: ['certpilot providers [--json]'],
    options: [{ flags: '--json', description: 'the providers as a JSON array' }],
    notes: [],
  },
  {
    name: 'config',
    summary: 'Configuration tools: `config check` validates and prints the normalised config.',
    synopsis: ['certpilot config check [--json]'],
    options: [
      { flags: 'check', description: 'validate the configuration file and print it normalised' },
      { flags: '--json', description: 'print the normalised configuration as JSON' },
    ],
    notes: ['Secrets are masked. Exit status: 0 valid, 2 invalid.'],
  },
  {
    name: 'version',
    summary: 'Print the version (same as --version).',
    synopsis: ['certpilot version'],
    options: [],
    notes: [],
  },
  {
    name: 'help',
    summary: 'Print help, or the help of one command.',
    synopsis: ['certpilot help [COMMAND]'],
    options: [],
    notes: [],
  },
];

/** Width of the command column of `--help`: the longest command name and a space. */
const COMMAND_COLUMN = Math.max(...COMMAND_HELP.map((c) => c.name.length)) + 1;

/** Subcommands of `config`, printed by `certpilot config` alone. */
export const CONFIG_SUBCOMMANDS: readonly OptionHelp[] = COMMAND_HELP.find(
  (c) => c.name === 'config',
)!.options.filter((o) => !o.flags.startsWith('-'));

/** Wraps prose to `width` columns, continuation lines indented by `indent`. */
export function wrapText(text: string, width: number, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line = line ? `${line} ${word}` : indent + word;
  }
  if (line) lines.push(line);
  return lines;
}

function optionLines(options: readonly OptionHelp[], column: number): string[] {
  return options.map((o) => `  ${o.flags.padEnd(column - 3)} ${o.description}`);
}

/** `certpilot <command> --help`. */
export function renderCommandHelp(c: CommandHelp): string {
  const column = Math.max(...c.options.map((o) => o.flags.length + 3), 14);
  const parts = [`Usage: ${c.synopsis.join('\n')}`];
  if (c.options.length > 0) parts.push(optionLines(c.options, column).join('\n'));
  for (const note of c.notes) parts.push(wrapText(note, 94).join('\n'));
  return parts.join('\n\n');
}

/** `certpilot --help`. */
export function renderGlobalHelp(): string {
  return [
    `certpilot: ${PROGRAM_SUMMARY}`,
    '',
    'Usage: certpilot <command> [options]',
    '',
    'Commands:',
    ...COMMAND_HELP.map((c) => `  ${c.name.padEnd(COMMAND_COLUMN)} ${c.summary}`),
    '',
    'Global options:',
    ...GLOBAL_OPTIONS.map(
      (o) => `  ${o.flags.startsWith('--') ? '    ' : ''}${o.flags}`.padEnd(25) + ` ${o.description}`,
    ),
  ].join('\n');
}

export function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}
