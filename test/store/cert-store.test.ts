import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileOutput } from '../../src/config/types';
import type { Clock } from '../../src/core/clock';
import { CertpilotError } from '../../src/core/errors';
import { memoryLogger } from '../helpers/memory-logger';
import { CertStore, type CertificateFiles, type CertStoreOptions } from '../../src/store/cert-store';
import { parseCertificate } from '../../src/x509';
import { makeCa, makeCertificate, type KeyPairPem } from '../helpers/certs';

let root: string;
let stateDir: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'certpilot-store-'));
  stateDir = path.join(root, 'state');
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const ca = makeCa();
const DAY = 86_400_000;

/** A clock that moves one second per call, so version and archive names are distinct and ordered. */
function steppingClock(start = '2026-11-01T00:00:00Z'): Clock {
  let t = Date.parse(start);
  return { now: () => new Date((t += 1000)) };
}

function store(over: Partial<CertStoreOptions> = {}): CertStore {
  return new CertStore({ stateDir, archiveDepth: 3, clock: steppingClock(), ...over });
}

function issue(
  names = ['example.test', 'www.example.test'],
  keyPem?: string,
): CertificateFiles & { pair: KeyPairPem } {
  const pair = makeCertificate({
    names,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 89 * DAY),
    issuer: ca,
    keyPem,
  });
  return {
    cert: pair.certPem,
    chain: ca.certPem,
    fullchain: pair.certPem + ca.certPem,
    key: pair.keyPem,
    pair,
  };
}

const modeOf = (p: string): number => fs.statSync(p).mode & 0o777;

/** Every path under `dir` with its bytes (symlinks as "-> target"), to show nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else out[rel] = fs.readFileSync(p, 'latin1');
    }
  };
  walk(dir);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertpilotError);
  return (err as CertpilotError).code;
}

describe('CertStore', () => {
  it('paths() are stable per name and reject names that could escape the state dir', () => {
    const s = store();
    expect(s.paths('site')).toEqual({
      dir: path.join(stateDir, 'certs', 'site'),
      cert: path.join(stateDir, 'certs', 'site', 'cert.pem'),
      chain: path.join(stateDir, 'certs', 'site', 'chain.pem'),
      fullchain: path.join(stateDir, 'certs', 'site', 'fullchain.pem'),
      key: path.join(stateDir, 'certs', 'site', 'privkey.pem'),
    });
    for (const bad of ['../etc', 'a/b', '', '.hidden', 'UPPER'])
      expect(() => s.paths(bad)).toThrow(CertpilotError);
  });

  it('read() of a certificate never installed is null (state dir absent or empty)', async () => {
    expect(await store().read('site')).toBeNull();
    fs.mkdirSync(path.join(stateDir, 'certs', 'site'), { recursive: true });
    expect(await store().read('site')).toBeNull();
  });

  it('installs, reads back, and uses modes 0600 / 0644 / 0700', async () => {
    const s = store();
    const v1 = issue();
    const result = await s.install('site', v1);
    expect(result.archived).toBeUndefined();
    expect(result.info.serial).toBe(parseCertificate(v1.cert).serial);

    const got = await s.read('site');
    expect(got).not.toBeNull();
    expect(got).toMatchObject({
      name: 'site',
      cert: v1.cert,
      chain: v1.chain,
      fullchain: v1.fullchain,
      key: v1.key,
    });
    expect(got?.info.names).toEqual(['example.test', 'www.example.test']);

    // Stable paths resolve to the same bytes.
    const p = s.paths('site');
    expect(fs.readFileSync(p.cert, 'utf8')).toBe(v1.cert);
    expect(fs.readFileSync(p.chain, 'utf8')).toBe(v1.chain);
    expect(fs.readFileSync(p.fullchain, 'utf8')).toBe(v1.fullchain);
    expect(fs.readFileSync(p.key, 'utf8')).toBe(v1.key);
    expect(fs.lstatSync(p.cert).isSymbolicLink()).toBe(true);

    expect(modeOf(p.key)).toBe(0o600);
    for (const f of [p.cert, p.chain, p.fullchain]) expect(modeOf(f)).toBe(0o644);
    for (const d of [stateDir, path.join(stateDir, 'certs'), p.dir, path.join(p.dir, 'versions'), got!.dir]) {
      expect(modeOf(d)).toBe(0o700);
    }
  });

  it('refuses a key that does not match, writing nothing (fresh and over an existing version)', async () => {
    const s = store();
    const other = issue();
    const mismatched = { ...issue(), key: other.key };
    expect(await codeOf(s.install('site', mismatched))).toBe('STORE_KEY_MISMATCH');
    expect(fs.existsSync(stateDir)).toBe(false);

    await s.install('site', issue());
    const before = snapshot(stateDir);
    const output: FileOutput = {
      cert: path.join(root, 'out', 'c.pem'),
      key: path.join(root, 'out', 'k.pem'),
      certMode: 0o644,
      keyMode: 0o600,
    };
    expect(await codeOf(s.install('site', mismatched, [output]))).toBe('STORE_KEY_MISMATCH');
    expect(snapshot(stateDir)).toEqual(before);
    expect(fs.existsSync(path.join(root, 'out'))).toBe(false);
  });

  it('refuses a fullchain that does not begin with the certificate', async () => {
    const v = issue();
    expect(await codeOf(store().install('site', { ...v, fullchain: ca.certPem + v.cert }))).toBe(
      'X509_PARSE',
    );
    expect(fs.existsSync(stateDir)).toBe(false);
  });

  it('archives the previous version, newest first, and keeps only archiveDepth of them', async () => {
    const s = store({ archiveDepth: 2 });
    const versions = [issue(), issue(), issue(), issue()];
    const archivedDirs: (string | undefined)[] = [];
    for (const v of versions) archivedDirs.push((await s.install('site', v)).archived);

    expect(archivedDirs[0]).toBeUndefined();
    const serial = (v: CertificateFiles): string => parseCertificate(v.cert).serial;
    const list = await s.listArchive('site');
    // v4 is current; v3 and v2 are the two most recent previous versions; v1 was pruned.
    expect(list).toEqual([archivedDirs[3], archivedDirs[2]]);
    expect(path.basename(list[0])).toMatch(new RegExp(`^\\d{8}T\\d{6}\\.\\d{3}Z-${serial(versions[2])}$`));
    const [newest, older] = await Promise.all(list.map((d) => s.readArchived(d)));
    expect(newest).toMatchObject({
      name: 'site',
      cert: versions[2].cert,
      key: versions[2].key,
      dir: list[0],
    });
    expect(older.info.serial).toBe(serial(versions[1]));
    expect((await s.read('site'))?.info.serial).toBe(serial(versions[3]));

    // Only the live version directory remains; archived keys are 0600 in 0700 directories.
    expect(fs.readdirSync(path.join(s.paths('site').dir, 'versions'))).toHaveLength(1);
    expect(modeOf(path.join(stateDir, 'archive', 'site'))).toBe(0o700);
    expect(modeOf(list[0])).toBe(0o700);
    expect(modeOf(path.join(list[0], 'privkey.pem'))).toBe(0o600);
    expect(modeOf(path.join(list[0], 'cert.pem'))).toBe(0o644);
  });

  it('archiveDepth 0 keeps no previous versions', async () => {
    const s = store({ archiveDepth: 0 });
    await s.install('site', issue());
    const r = await s.install('site', issue());
    expect(r.archived).toBeUndefined();
    expect(await s.listArchive('site')).toEqual([]);
  });

  it('an install interrupted before the swap leaves the live version untouched', async () => {
    const v1 = issue();
    await store().install('site', v1);
    const p = store().paths('site');
    const before = snapshot(p.dir);
    let seenDuring: string | undefined;
    const failing = store({
      faults: {
        beforeSwap: async () => {
          // The new version is fully written but not live: a reader still sees all of v1.
          seenDuring = (await store().read('site'))?.info.serial;
          throw new Error('killed');
        },
      },
    });
    expect(await codeOf(failing.install('site', issue()))).toBe('STORE_IO');
    expect(seenDuring).toBe(parseCertificate(v1.cert).serial);
    expect(snapshot(p.dir)).toEqual(before);
    expect(await store().listArchive('site')).toEqual([]);
    expect((await store().read('site'))?.key).toBe(v1.key);
  });

  it('read() refuses a key and certificate from different versions', async () => {
    const s = store();
    const v1 = issue();
    await s.install('site', v1);
    const live = (await s.read('site'))!.dir;
    fs.writeFileSync(path.join(live, 'privkey.pem'), issue().key);
    expect(await codeOf(s.read('site'))).toBe('STORE_KEY_MISMATCH');

    fs.writeFileSync(path.join(live, 'privkey.pem'), v1.key);
    fs.writeFileSync(path.join(live, 'fullchain.pem'), issue(undefined, v1.key).fullchain); // same key, other cert
    expect(await codeOf(s.read('site'))).toBe('STORE_KEY_MISMATCH');
  });

  it('read() reports corrupt or incomplete files with typed errors', async () => {
    const s = store();
    await s.install('site', issue());
    const live = (await s.read('site'))!.dir;
    fs.writeFileSync(path.join(live, 'cert.pem'), 'garbage');
    expect(await codeOf(s.read('site'))).toBe('X509_PARSE');
    fs.rmSync(path.join(live, 'cert.pem'));
    expect(await codeOf(s.read('site'))).toBe('STORE_IO');
  });

  it('reads plain files left by another tool and replaces them on install', async () => {
    const s = store();
    const p = s.paths('site');
    const legacy = issue();
    fs.mkdirSync(p.dir, { recursive: true });
    fs.writeFileSync(p.cert, legacy.cert);
    fs.writeFileSync(p.chain, legacy.chain);
    fs.writeFileSync(p.fullchain, legacy.fullchain);
    fs.writeFileSync(p.key, legacy.key);
    expect((await s.read('site'))?.dir).toBe(p.dir);

    const next = issue();
    const { archived } = await s.install('site', next);
    expect((await s.readArchived(archived!)).cert).toBe(legacy.cert);
    expect(fs.lstatSync(p.key).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(p.key, 'utf8')).toBe(next.key);
  });

  it('installs over an unreadable current version, warning instead of archiving it', async () => {
    const log = memoryLogger();
    const s = store({ log });
    await s.install('site', issue());
    fs.writeFileSync(path.join((await s.read('site'))!.dir, 'cert.pem'), 'garbage');
    const next = issue();
    const r = await s.install('site', next);
    expect(r.archived).toBeUndefined();
    expect((await s.read('site'))?.cert).toBe(next.cert);
    expect(log.records.some((rec) => rec.level === 'warn' && /not archived/.test(rec.message))).toBe(true);
    // Logs never carry the key.
    expect(JSON.stringify(log.records)).not.toContain('PRIVATE KEY');
  });

  describe('outputs', () => {
    it('copies files with the configured modes and creates missing directories', async () => {
      const out = path.join(root, 'etc', 'nginx', 'tls');
      const outputs: FileOutput[] = [
        {
          fullchain: path.join(out, 'site.crt'),
          key: path.join(out, 'site.key'),
          certMode: 0o644,
          keyMode: 0o600,
        },
        {
          cert: path.join(root, 'cdn', 'cert.pem'),
          chain: path.join(root, 'cdn', 'chain.pem'),
          key: path.join(root, 'cdn', 'key.pem'),
          certMode: 0o640,
          keyMode: 0o640,
        },
      ];
      const v = issue();
      await store().install('site', v, outputs);
      expect(fs.readFileSync(path.join(out, 'site.crt'), 'utf8')).toBe(v.fullchain);
      expect(fs.readFileSync(path.join(out, 'site.key'), 'utf8')).toBe(v.key);
      expect(modeOf(path.join(out, 'site.crt'))).toBe(0o644);
      expect(modeOf(path.join(out, 'site.key'))).toBe(0o600);
      expect(fs.readFileSync(path.join(root, 'cdn', 'chain.pem'), 'utf8')).toBe(v.chain);
      expect(modeOf(path.join(root, 'cdn', 'cert.pem'))).toBe(0o640);
      expect(modeOf(path.join(root, 'cdn', 'key.pem'))).toBe(0o640);
      expect(fs.readdirSync(out).sort()).toEqual(['site.crt', 'site.key']);

      // A renewal replaces them in place.
      const v2 = issue();
      await store().install('site', v2, outputs);
      expect(fs.readFileSync(path.join(out, 'site.key'), 'utf8')).toBe(v2.key);
    });

    it('applies owner and group (numeric and by name) when running as root', async () => {
      const asRoot = process.getuid?.() === 0;
      const outputs: FileOutput[] = [
        {
          cert: path.join(root, 'o1', 'c.pem'),
          key: path.join(root, 'o1', 'k.pem'),
          owner: '1234',
          group: '2345',
          certMode: 0o644,
          keyMode: 0o600,
        },
        {
          key: path.join(root, 'o2', 'k.pem'),
          owner: 'nobody',
          group: 'nogroup',
          certMode: 0o644,
          keyMode: 0o600,
        },
      ];
      const log = memoryLogger();
      await store({ log }).install('site', issue(), outputs);
      const own = (p: string): [number, number] => {
        const st = fs.statSync(p);
        return [st.uid, st.gid];
      };
      const me: [number, number] = [process.getuid?.() ?? 0, process.getgid?.() ?? 0];
      // Only root can give files away; otherwise the owner is ignored with a warning.
      expect(own(path.join(root, 'o1', 'k.pem'))).toEqual(asRoot ? [1234, 2345] : me);
      expect(own(path.join(root, 'o1', 'c.pem'))).toEqual(asRoot ? [1234, 2345] : me);
      expect(own(path.join(root, 'o2', 'k.pem'))).toEqual(asRoot ? [65534, 65534] : me);
      expect(log.records.some((r) => r.level === 'warn')).toBe(!asRoot);
    });

    it('an unknown owner fails before anything is written', async () => {
      const asRoot = process.getuid?.() === 0;
      const outputs: FileOutput[] = [
        {
          key: path.join(root, 'o', 'k.pem'),
          owner: 'no-such-user-certpilot',
          certMode: 0o644,
          keyMode: 0o600,
        },
      ];
      const attempt = store().install('site', issue(), outputs);
      if (asRoot) {
        expect(await codeOf(attempt)).toBe('STORE_IO');
        expect(fs.existsSync(stateDir)).toBe(false);
        expect(fs.existsSync(path.join(root, 'o'))).toBe(false);
      } else {
        await attempt; // not root: owners are not resolved at all
        expect(fs.existsSync(path.join(root, 'o', 'k.pem'))).toBe(true);
      }
    });
  });
});
