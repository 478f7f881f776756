import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestbed, runCli, type Testbed } from '../helpers/testbed';

/**
 * The walking skeleton end to end: real Pebble, real BIND (RFC 2136 + TSIG), the real CLI.
 */
let tb: Testbed;
let configPath: string;

const CERTS = [
  { name: 'single', domains: ['a.example.test'], dns: { provider: 'bind' } },
  {
    name: 'multi',
    domains: ['b.example.test', 'c.example.test', 'd.example.test'],
    dns: { provider: 'bind' },
  },
  {
    name: 'wild',
    domains: ['example.test', '*.example.test'],
    dns: { provider: 'bind' },
    keyType: 'rsa-2048',
  },
  // sub.example.test is a delegated child zone: the TXT must go to the child, not the parent.
  { name: 'child', domains: ['www.sub.example.test'], dns: { provider: 'bind' }, keyType: 'ec-p384' },
];

beforeAll(async () => {
  tb = await startTestbed();
  configPath = await tb.writeConfig(CERTS);
}, 60_000);

afterAll(async () => {
  await tb?.stop();
});

function stateFile(name: string, file: string): string {
  return path.join(tb.dir, 'state', 'certs', name, file);
}

function leafOf(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^DNS:/, ''))
    .sort();
}

function jsonLogs(stderr: string): { message: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { message: string });
}

async function challengeValues(): Promise<string[]> {
  const names = ['a', 'b', 'c', 'd'].map((l) => `_acme-challenge.${l}.example.test`);
  names.push('_acme-challenge.example.test', '_acme-challenge.www.sub.example.test');
  const all = await Promise.all(names.map((n) => tb.bind.queryTxt(n)));
  return all.flat();
}

describe('certpilot renew against Pebble + BIND', () => {
  let firstSerials: Record<string, string> = {};

  test('issues every configured certificate, chained to Pebble, with exactly the configured names', async () => {
    const res = await runCli(['renew', '--config', configPath, '--json', '--log-format', 'json']);
    expect(res.stderr).not.toMatch(/unexpected error/);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as {
      certificates: { name: string; status: string; reason: string; serial: string }[];
    };
    expect(report.certificates.map((c) => [c.name, c.status, c.reason])).toEqual(
      CERTS.map((c) => [c.name, 'renewed', 'missing']),
    );

    const root = new X509Certificate(await tb.pebble.issuingRoot());
    for (const spec of CERTS) {
      const leafPem = await readFile(stateFile(spec.name, 'cert.pem'), 'utf8');
      const chainPem = await readFile(stateFile(spec.name, 'chain.pem'), 'utf8');
      const fullchain = await readFile(stateFile(spec.name, 'fullchain.pem'), 'utf8');
      const key = await readFile(stateFile(spec.name, 'privkey.pem'), 'utf8');
      const leaf = leafOf(leafPem);
      const intermediate = new X509Certificate(chainPem);
      expect(fullchain).toBe(leafPem + chainPem);
      expect(sanNames(leaf)).toEqual([...spec.domains].sort());
      expect(leaf.verify(intermediate.publicKey)).toBe(true);
      expect(intermediate.verify(root.publicKey)).toBe(true);
      expect(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(key)))).toBe(
        true,
      );
      firstSerials[spec.name] = leaf.serialNumber;
    }
    const wild = leafOf(await readFile(stateFile('wild', 'cert.pem'), 'utf8'));
    expect(wild.publicKey.asymmetricKeyType).toBe('rsa');
    const child = leafOf(await readFile(stateFile('child', 'cert.pem'), 'utf8'));
    expect(child.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');

    expect(jsonLogs(res.stderr).filter((l) => l.message === 'acme account registered')).toHaveLength(1);
    expect(await challengeValues()).toEqual([]);
  });

  test('a second run renews nothing and reuses the account', async () => {
    const res = await runCli(['renew', '--config', configPath, '--json', '--log-format', 'json']);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as {
      certificates: { name: string; status: string; serial: string }[];
    };
    expect(report.certificates.map((c) => c.status)).toEqual(CERTS.map(() => 'valid'));
    expect(Object.fromEntries(report.certificates.map((c) => [c.name, c.serial]))).toEqual(firstSerials);
    const messages = jsonLogs(res.stderr).map((l) => l.message);
    expect(messages).not.toContain('acme account registered');
    expect(messages).not.toContain('order created');
  });

  test('--force renews the named certificate with the stored account, reusing nonces', async () => {
    const res = await runCli([
      'renew',
      'single',
      '--force',
      '--config',
      configPath,
      '--log-format',
      'json',
      '--json',
    ]);
    expect(res.code).toBe(0);
    const json = JSON.parse(res.stdout) as {
      certificates: { status: string }[];
      acmeRequests: { total: number; byEndpoint: Record<string, number> };
    };
    expect(json.certificates[0]!.status).toBe('renewed');
    // Every response's Replay-Nonce is reused (RFC 8555 §7.2): at most one HEAD newNonce for
    // the whole order (none when this process kept one from earlier) instead of one before
    // each of its signed requests.
    const heads = Object.entries(json.acmeRequests.byEndpoint)
      .filter(([k]) => k.startsWith('HEAD '))
      .reduce((n, [, v]) => n + v, 0);
    expect(heads).toBeLessThanOrEqual(1);
    expect(json.acmeRequests.total).toBeLessThanOrEqual(12);
    const leaf = leafOf(await readFile(stateFile('single', 'cert.pem'), 'utf8'));
    expect(leaf.serialNumber).not.toBe(firstSerials.single);
    const messages = jsonLogs(res.stderr).map((l) => l.message);
    expect(messages).not.toContain('acme account registered');
    expect(messages).toContain('order created');
    firstSerials = { ...firstSerials, single: leaf.serialNumber };
  });

  test('--dry-run prints the plan and contacts nothing', async () => {
    const res = await runCli([
      'renew',
      '--force',
      '--dry-run',
      '--config',
      configPath,
      '--log-format',
      'json',
    ]);
    expect(res.code).toBe(0);
    for (const c of CERTS) expect(res.stdout).toMatch(new RegExp(`^${c.name}\\s+planned\\s+`, 'm'));
    expect(jsonLogs(res.stderr).map((l) => l.message)).not.toContain('order created');
  });

  test('a frozen zone fails the renewal clearly and leaves the stored pair byte-identical; after thaw it succeeds', async () => {
    const files = ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem'];
    const before = await Promise.all(files.map((f) => readFile(stateFile('multi', f))));
    await tb.bind.freeze('example.test');
    let thawed = false;
    try {
      const res = await runCli(['renew', 'multi', '--force', '--config', configPath]);
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/^multi\s+failed\s+.*error: .*rfc2136.*(REFUSED|SERVFAIL|NOTAUTH)/m);
      const after = await Promise.all(files.map((f) => readFile(stateFile('multi', f))));
      after.forEach((buf, i) => expect(buf.equals(before[i]!)).toBe(true));
      await tb.bind.thaw('example.test');
      thawed = true;
      const again = await runCli(['renew', 'multi', '--force', '--config', configPath]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/^multi\s+renewed/m);
      expect(await challengeValues()).toEqual([]);
    } finally {
      if (!thawed) await tb.bind.thaw('example.test');
    }
  });

  test('the exact-set guard refuses another order of the same names within the week, before any order', async () => {
    const config = await tb.writeConfig(
      [{ name: 'guarded', domains: ['g.example.test'], dns: { provider: 'bind' } }],
      {
        storage: { stateDir: path.join(tb.dir, 'state-guard') },
        defaults: { renewal: { maxOrdersPerWeek: 1 } },
      },
    );
    const first = await runCli(['renew', '--config', config]);
    expect(first.code).toBe(0);
    const again = await runCli(['renew', '--force', '--config', config, '--json', '--log-format', 'json']);
    expect(again.code).toBe(1);
    const report = JSON.parse(again.stdout) as {
      certificates: { status: string; reason: string; errorCode: string; error: string }[];
    };
    expect(report.certificates[0]).toMatchObject({
      status: 'failed',
      reason: 'guarded',
      errorCode: 'GUARDED',
    });
    expect(report.certificates[0]!.error).toMatch(
      /1 certificates? (was|were) already issued for exactly g\.example\.test by this CA in the last 7 days \(defaults\.renewal\.maxOrdersPerWeek is 1\)/,
    );
    const messages = jsonLogs(again.stderr).map((l) => l.message);
    expect(messages).toContain('exact-set guard: not ordering again');
    expect(messages).not.toContain('order created');
  });
});
