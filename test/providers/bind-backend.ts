import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BindServer } from '../helpers/bind';

/**
 * Mirrors TXT sets from a provider test server into a real BIND with `nsupdate -k`, so the
 * conformance checks read what a resolver would see. Each call replaces the whole set at
 * `fqdn` in one signed update (delete-all + add each), so the last call wins.
 */
export interface BindBackend {
  /** Replace the TXT set at `fqdn` (in `zone`) by `values`; `[]` removes it. */
  apply(zone: string, fqdn: string, values: readonly string[]): Promise<void>;
  /** Path of the TSIG key file (mode 0600), for scripts that call nsupdate themselves. */
  readonly keyFile: string;
  close(): Promise<void>;
}

export function txtQuote(value: string): string {
  return '"' + value.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

export async function createBindBackend(bind: BindServer): Promise<BindBackend> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'certpilot-nsupdate-'));
  const keyFile = path.join(dir, 'tsig.key');
  await writeFile(
    keyFile,
    `key "${bind.tsig.name}" {\n  algorithm ${bind.tsig.algorithm};\n  secret "${bind.tsig.secret}";\n};\n`,
    {
      mode: 0o600,
    },
  );
  let closed = false;
  return {
    keyFile,
    async apply(zone, fqdn, values) {
      if (closed) return; // the test is over; BIND may be gone
      const script = [
        `server ${bind.address} ${bind.port}`,
        `zone ${zone}.`,
        `update delete ${fqdn}. TXT`,
        ...values.map((v) => `update add ${fqdn}. 60 TXT ${txtQuote(v)}`),
        'send',
        '',
      ].join('\n');
      await new Promise<void>((resolve, reject) => {
        const child = execFile('nsupdate', ['-k', keyFile], { timeout: 15_000 }, (err, _stdout, stderr) =>
          err ? reject(new Error(`nsupdate failed: ${stderr || err.message}`)) : resolve(),
        );
        child.stdin?.end(script);
      });
    },
    async close() {
      closed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
