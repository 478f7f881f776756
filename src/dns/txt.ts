/**
 * TXT presentation format as Route 53 speaks it: each value is one or more double-quoted
 * character-strings of at most 255 bytes (RFC 1035 §3.3.14); the SDK sends what it is given,
 * so quoting and splitting are ours. Route 53 returns non-printable bytes as `\ddd` octal.
 */

/** RFC 1035 §3.3: a character-string is at most 255 octets. */
export const TXT_STRING_MAX_BYTES = 255;

function escapeByte(b: number): string {
  if (b === 0x22 || b === 0x5c) return '\\' + String.fromCharCode(b);
  if (b < 0x20 || b > 0x7e) return '\\' + b.toString(8).padStart(3, '0');
  return String.fromCharCode(b);
}

/** `value` -> `"chunk1" "chunk2"`, each chunk at most 255 bytes before escaping. */
export function encodeTxtValue(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length === 0) return '""';
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += TXT_STRING_MAX_BYTES) {
    const chunk = bytes.subarray(i, i + TXT_STRING_MAX_BYTES);
    parts.push('"' + Array.from(chunk, escapeByte).join('') + '"');
  }
  return parts.join(' ');
}

/**
 * The logical value of one TXT record in presentation format: quoted strings are unescaped
 * and concatenated (that is how ACME validators read a split value). Unquoted tokens, which
 * other tools sometimes write, are accepted too.
 */
export function decodeTxtValue(raw: string): string {
  const out: number[] = [];
  let i = 0;
  while (i < raw.length) {
    const c = raw[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    const quoted = c === '"';
    if (quoted) i++;
    while (i < raw.length) {
      const ch = raw[i];
      if (quoted ? ch === '"' : ch === ' ' || ch === '\t') break;
      if (ch === '\\' && i + 1 < raw.length) {
        const oct = /^[0-7]{3}/.exec(raw.slice(i + 1, i + 4));
        if (oct) {
          out.push(parseInt(oct[0], 8) & 0xff);
          i += 4;
        } else {
          out.push(...Buffer.from(raw[i + 1], 'utf8'));
          i += 2;
        }
        continue;
      }
      out.push(...Buffer.from(ch, 'utf8'));
      i++;
    }
    if (quoted) i++; // closing quote
  }
  return Buffer.from(out).toString('utf8');
}

/** Route 53 names: lower case, no trailing dot, `\ddd` escapes (e.g. `\052` for `*`) decoded. */
export function normalizeDnsName(name: string): string {
  return name
    .replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
    .replace(/\.$/, '')
    .toLowerCase();
}
