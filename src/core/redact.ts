/**
 * Redaction, one policy for everything certpilot prints or sends: log records, error messages,
 * `config check` output and alerts.
 *
 *  - By value: every secret the configuration resolves (inline, from a `_file`, from the
 *    environment) is registered once with registerSecret(), and wherever that exact text shows
 *    up later (an error echoing a request, a hook's output, a server's reply) it is replaced.
 *    This catches what no naming convention can: a secret quoted inside a message.
 *  - By name: a value stored under a name that says "secret" (`password`, `X-Api-Key`,
 *    `AWS_SECRET_ACCESS_KEY`, `hmacKey`) is replaced whatever it is, registered or not.
 *  - By shape: PEM private key blocks (also a block cut short by a bounded buffer), HTTP
 *    credential headers (`Authorization: Bearer ...`, as `curl -v` prints them) and the parts of
 *    a URL that carry credentials. A program's own token, never given to certpilot, is caught
 *    this way.
 */

/** What replaces a secret. */
export const REDACTED = '[redacted]';

/**
 * Shorter values are not masked by value: a 3-character "secret" would turn every occurrence of
 * those letters into [redacted] and make logs unreadable. Real keys and tokens are far longer;
 * short passwords are still masked by name.
 */
export const MIN_SECRET_LENGTH = 6;

const PEM_PRIVATE = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g;
/** What is left of a key block whose start or end was cut off (the tail of a long output). */
const PEM_PRIVATE_HEAD = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*$/;
const PEM_PRIVATE_TAIL = /^[\s\S]*-----END [A-Z ]*PRIVATE KEY-----/;
/**
 * Credential-carrying HTTP headers, wherever they appear in text (`> Authorization: Basic ...`
 * in `curl -v` output quoted inside an error): the value up to the end of the line is masked,
 * the scheme kept.
 */
const CREDENTIAL_HEADER =
  /\b((?:proxy-)?authorization|(?:set-)?cookie|x-api-key|x-auth-token|api-key)(\s*:\s*)((?:basic|bearer|digest|negotiate|token)\s+)?[^\r\n]+/gi;
/** A bearer token on its own (`-H "Bearer ..."`, `token_type Bearer ...`). */
const BEARER_TOKEN = /\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi;

const registered = new Set<string>();
let pattern: RegExp | undefined;

/**
 * Registers a secret value to be masked everywhere from now on. Safe to call repeatedly with the
 * same value. Also registers the forms the value takes when quoted in JSON or in a URL, since
 * that is how it tends to reappear in messages.
 */
export function registerSecret(value: unknown): void {
  if (typeof value !== 'string') return;
  const trimmed = value.trim();
  for (const form of [value, trimmed, JSON.stringify(trimmed).slice(1, -1), encodeURIComponent(trimmed)]) {
    if (form.length >= MIN_SECRET_LENGTH && !registered.has(form)) {
      registered.add(form);
      pattern = undefined;
    }
  }
}

/** Length of the longest registered form: text cut at most this far into a secret can hold a piece of it. */
export function longestSecretLength(): number {
  let longest = 0;
  for (const s of registered) longest = Math.max(longest, s.length);
  return longest;
}

/** Forgets every registered secret. For tests only: production never unregisters. */
export function clearRegisteredSecrets(): void {
  registered.clear();
  pattern = undefined;
}

function secretPattern(): RegExp | undefined {
  if (registered.size === 0) return undefined;
  if (pattern) return pattern;
  // Longest first, so a secret that contains another is masked whole.
  const alternatives = [...registered]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  pattern = new RegExp(alternatives.join('|'), 'g');
  return pattern;
}

/** `text` with PEM private keys and every registered secret value replaced. */
export function redactText(text: string): string {
  const masked = text
    .replace(PEM_PRIVATE, '[private key redacted]')
    .replace(PEM_PRIVATE_HEAD, '[private key redacted]')
    .replace(PEM_PRIVATE_TAIL, '[private key redacted]')
    .replace(CREDENTIAL_HEADER, `$1$2$3${REDACTED}`)
    .replace(BEARER_TOKEN, `$1${REDACTED}`);
  const secrets = secretPattern();
  return secrets ? masked.replace(secrets, REDACTED) : masked;
}

/** `NAME: value` or `NAME=value` on one line of a program's output: a header, an `env` dump. */
const NAMED_VALUE_LINE = /^([\s>*<|#-]*)([A-Za-z][A-Za-z0-9_.-]*)(\s*[:=]\s*)(\S.*)$/;

/**
 * What another program printed (a hook's stderr, `curl -v`, `set -x`, `env`), made fit to log,
 * store and send: redactText() plus, line by line, the value of every `name: value` or
 * `name=value` whose name says it is secret (`X-Auth-Token: ...`, `API_TOKEN=...`). Such output
 * is written by code certpilot does not control, so it is treated as hostile.
 */
export function redactOutput(text: string): string {
  return redactText(text)
    .split('\n')
    .map((line) => {
      const m = NAMED_VALUE_LINE.exec(line);
      // Already masked by shape (`Authorization: Bearer [redacted]` keeps its scheme).
      if (!m || !isSecretName(m[2]!) || m[4]!.endsWith(REDACTED)) return line;
      return `${m[1]}${m[2]}${m[3]}${REDACTED}`;
    })
    .join('\n');
}

/** Words that make a name secret wherever they stand: `Authorization`, `X-Auth-Token`, `session`. */
const SECRET_WORDS = new Set([
  'auth',
  'authorization',
  'bearer',
  'cookie',
  'credential',
  'credentials',
  'hmac',
  'passphrase',
  'passwd',
  'password',
  'pwd',
  'secret',
  'secrets',
  'session',
  'signature',
  'token',
  'tokens',
]);
/** Stems found even inside run-together names: `PGPASSWORD`, `APITOKEN`, `x-apikey`. */
const SECRET_STEMS = /secret|passw|token|hmac|credential|apikey|privatekey/;
/**
 * A last word that says the value is about a secret, not the secret: `secret_file` is a path,
 * `signatureHeader` a header name, `keyId` an identifier, `sessionName` a label.
 */
const DESCRIPTOR_WORDS = new Set([
  'algorithm',
  'at',
  'count',
  'dir',
  'env',
  'expires',
  'file',
  'format',
  'header',
  'id',
  'length',
  'mode',
  'name',
  'path',
  'size',
  'ttl',
  'type',
  'url',
]);

/** `X-Api-Key` -> [x, api, key]; `hmacKey_file` -> [hmac, key, file]; `AWS_SECRET_ACCESS_KEY` -> [aws, secret, access, key]. */
function wordsOf(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
}

/**
 * Whether a field, header or environment variable of this name holds a secret. The one rule for
 * log metadata keys, webhook headers and hook environment variables.
 */
export function isSecretName(name: string): boolean {
  let secret = nameCache.get(name);
  if (secret === undefined) {
    secret = judgeName(name);
    // Log field names are a small fixed vocabulary; the bound only guards against odd callers.
    if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
    nameCache.set(name, secret);
  }
  return secret;
}

/** Every log record asks about each of its field names: remember the answers. */
const nameCache = new Map<string, boolean>();
const NAME_CACHE_MAX = 1_000;

function judgeName(name: string): boolean {
  const words = wordsOf(name);
  const last = words[words.length - 1];
  if (last === undefined || DESCRIPTOR_WORDS.has(last)) return false;
  // `key` alone, `apiKey`, `privateKey`, `AWS_SECRET_ACCESS_KEY`; not `keyType` or `keyPath`.
  if (last === 'key' || last === 'keys') return true;
  return words.some((w) => SECRET_WORDS.has(w)) || SECRET_STEMS.test(words.join(''));
}

/**
 * A copy of `value` fit to print: strings through redactText(), fields with a secret name
 * replaced (booleans excepted: `tokenSet: true` says nothing), Errors reduced to their
 * (redacted) message, Dates to ISO text. Depth is bounded: log metadata is shallow, and a
 * cycle must not hang the logger.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redactText(value.message);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] =
      isSecretName(k) && v !== undefined && v !== null && typeof v !== 'boolean'
        ? REDACTED
        : redact(v, depth + 1);
  }
  return out;
}

/**
 * A copy of `value` with every string through redactText(), field names ignored: for documents
 * with a fixed schema whose field names are not a hint (`outputs[].key` is a file path), such as
 * the `config check` view and alert bodies.
 */
export function redactStrings(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 16 || value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => redactStrings(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactStrings(v, depth + 1)]),
  );
}

/** `/services/T0/B0/xyz` -> `/services/[redacted]`; a one-segment path is kept. */
export function maskPath(pathname: string): string {
  const [first, ...rest] = pathname.split('/').filter((p) => p !== '');
  if (first === undefined) return pathname;
  return rest.length > 0 ? `/${first}/${REDACTED}` : `/${first}`;
}

/**
 * A URL without what may be a credential: the userinfo password, the query values
 * (`?token=...`) and the path after its first segment (Slack-style webhook URLs carry the
 * secret in the path: /services/T.../B.../<secret>). Scheme, user, host and the first path
 * segment stay, so the operator still sees where it goes. Text that is not a URL is returned
 * through redactText().
 */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return redactText(url);
  }
  const userinfo = u.username || u.password ? `${u.username}${u.password ? `:${REDACTED}` : ''}@` : '';
  const query = [...u.searchParams.keys()].map((k) => `${k}=${REDACTED}`).join('&');
  return `${u.protocol}//${userinfo}${u.host}${maskPath(u.pathname)}${query ? `?${query}` : ''}`;
}
