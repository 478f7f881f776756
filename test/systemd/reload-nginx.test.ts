import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentConfig } from '../../src/config/types';
import { nginxReloadRequestPath, runStep, type StepContext } from '../../src/deploy/deployers';
import type { DeployStep } from '../../src/config/types';
import { silentLogger } from '../../src/core/logger';
import { loadConfig } from '../../src/config/load';

/**
 * The nginx reload as shipped: the nginx deployer's default writes the request file that
 * certpilot-reload-nginx.path waits for (PathExists=), and the service it starts takes the
 * request first. What only a running systemd can show (the path unit firing, nginx reloading)
 * is listed in docs/systemd.md; this checks that the three pieces name the same file, that
 * the deployer writes it without running any nginx or systemctl command, and that every path
 * the example configuration writes is writable under the units.
 */

const UNITS = path.join(__dirname, '../../systemd');
const unit = (name: string): string => readFileSync(path.join(UNITS, name), 'utf8');
const values = (text: string, key: string): string[] =>
  [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());

const STATE = '/var/lib/certpilot';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'certpilot-reload-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function stepContext(stateDir: string): StepContext {
  return {
    cert: {
      name: 'www',
      domains: ['www.example.test'],
      paths: {
        dir: path.join(stateDir, 'certs', 'www'),
        cert: path.join(stateDir, 'certs', 'www', 'cert.pem'),
        chain: path.join(stateDir, 'certs', 'www', 'chain.pem'),
        fullchain: path.join(stateDir, 'certs', 'www', 'fullchain.pem'),
        key: path.join(stateDir, 'certs', 'www', 'privkey.pem'),
      },
      serial: '0a1b',
      notAfter: new Date('2030-01-01T00:00:00Z'),
    },
    fullchainPem: '',
    fingerprint256: '',
    log: silentLogger,
  };
}

/** The example configuration, as the loader reads it (its nginx step sets no test/reload). */
async function loadExample(): Promise<AgentConfig> {
  const example = readFileSync(path.join(__dirname, '../../config/certpilot.example.yaml'), 'utf8');
  const secret = path.join(dir, 'tsig');
  await writeFile(secret, 'c2VjcmV0', { mode: 0o600 });
  const file = path.join(dir, 'example.yaml');
  await writeFile(file, example.replace(/\/etc\/certpilot\/tsig(-internal)?\.secret/g, secret));
  return loadConfig({ path: file, env: {} });
}

function explicitStep(test: string[], reload: string[]): DeployStep {
  const spec = (argv: string[]) => ({ argv, timeoutMs: 10_000, env: {} });
  return { type: 'nginx', push: [], test: spec(test), reload: spec(reload) };
}

test('the path unit, its service and the deployer name the same request file', () => {
  const request = nginxReloadRequestPath(path.join(STATE, 'certs', 'any'));
  expect(values(unit('certpilot-reload-nginx.path'), 'PathExists')).toEqual([request]);
  expect(values(unit('certpilot-reload-nginx.path'), 'Unit')).toEqual(['certpilot-reload-nginx.service']);
  const svc = unit('certpilot-reload-nginx.service');
  // Taken before anything can fail, so a stopped nginx does not re-trigger the path unit.
  expect(values(svc, 'ExecCondition')[0]).toBe(`/bin/rm -f ${request}`);
  expect(values(svc, 'ExecStart')).toEqual([
    '/usr/sbin/nginx -t -q',
    '/usr/bin/systemctl reload nginx.service',
  ]);
  expect(svc).not.toMatch(/^User=/m);
  // The request is made in the services' StateDirectory=, writable under ProtectSystem=strict.
  for (const name of ['certpilot.service', 'certpilot-renew.service']) {
    expect(values(unit(name), 'StateDirectory')).toEqual(['certpilot']);
    expect(values(unit(name), 'Wants')).toContain('certpilot-reload-nginx.path');
  }
});

test('the default nginx deployer writes the request and runs no command', async () => {
  const stateDir = path.join(dir, 'state');
  await mkdir(path.join(stateDir, 'certs', 'www'), { recursive: true });
  const step = (await loadExample()).certificates[0]!.deploy![0]!;
  expect(step.type).toBe('nginx');
  const old = process.env.PATH;
  // With no PATH, any nginx or systemctl the deployer tried to run would fail the step.
  process.env.PATH = '';
  try {
    await runStep(step, 0, stepContext(stateDir));
  } finally {
    process.env.PATH = old;
  }
  const request = path.join(stateDir, 'nginx-reload-request');
  expect(readFileSync(request, 'utf8')).toBe('www 0a1b\n');
  // What the service's first ExecCondition does, on the same file.
  await new Promise((resolve, reject) =>
    execFile('/bin/rm', ['-f', request], (err) => (err ? reject(err) : resolve(undefined))),
  );
  expect(existsSync(request)).toBe(false);
});

test('explicit test and reload commands still run, and no request is written', async () => {
  const stateDir = path.join(dir, 'explicit');
  await mkdir(path.join(stateDir, 'certs', 'www'), { recursive: true });
  const marker = path.join(dir, 'reloaded');
  await runStep(explicitStep(['true'], ['touch', marker]), 0, stepContext(stateDir));
  expect(existsSync(marker)).toBe(true);
  expect(existsSync(path.join(stateDir, 'nginx-reload-request'))).toBe(false);
  await expect(runStep(explicitStep(['false'], ['true']), 0, stepContext(stateDir))).rejects.toThrow(
    /config test/,
  );
  expect(existsSync(path.join(stateDir, 'nginx-reload-request'))).toBe(false);
});

test('the request fails the step with the file named when the state directory is not writable', async () => {
  const step = (await loadExample()).certificates[0]!.deploy![0]!;
  await expect(runStep(step, 3, stepContext(path.join(dir, 'missing')))).rejects.toThrow(
    /deploy\[3\] \(nginx\): cannot request an nginx reload \(.*missing\/nginx-reload-request\)/,
  );
});

test('every path the example configuration writes is writable under the units', async () => {
  const writable = ['certpilot.service', 'certpilot-renew.service'].map((name) => {
    const text = unit(name);
    return [
      ...values(text, 'ReadWritePaths').map((p) => p.replace(/^-/, '')),
      ...values(text, 'StateDirectory').map((d) => `/var/lib/${d}`),
    ];
  });
  const config = await loadExample();
  const paths = [
    config.storage.stateDir,
    ...config.certificates.flatMap((c) =>
      c.outputs.flatMap((o) => [o.cert, o.chain, o.fullchain, o.key].filter((p): p is string => !!p)),
    ),
  ];
  expect(paths.length).toBeGreaterThan(3);
  for (const allowed of writable) {
    const outside = paths.filter((p) => !allowed.some((a) => p === a || p.startsWith(`${a}/`)));
    expect(outside).toEqual([]);
  }
});

test('unit comments refer only to documents the project ships', () => {
  for (const name of [
    'certpilot.service',
    'certpilot-renew.service',
    'certpilot-renew.timer',
    'certpilot-reload-nginx.path',
    'certpilot-reload-nginx.service',
  ]) {
    const docs = [...unit(name).matchAll(/([\w./-]+\.md)\b/g)].map((m) => m[1]!);
    for (const doc of docs) {
      const local = path.join(__dirname, '../..', 'docs', path.basename(doc));
      expect({ name, doc, exists: existsSync(local) }).toEqual({ name, doc, exists: true });
    }
  }
});
