import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { listProviders } from '../../src/dns/registry';
import { providersMarkdown, updateReadme } from '../../src/dns/provider-docs';
import { runCli } from '../helpers/testbed';

describe('provider documentation is generated from the definitions', () => {
  test('README.md provider section matches the registry (run `npm run docs` when this fails)', async () => {
    const file = path.join(__dirname, '..', '..', 'README.md');
    const readme = await readFile(file, 'utf8');
    // `npm run docs` formats with prettier (as `npm run lint` requires); compare the same way.
    // (prettier 3 is ESM-only inside jest, so run its CLI.)
    const formatted = spawnSync(
      process.execPath,
      [require.resolve('prettier/bin/prettier.cjs'), '--stdin-filepath', file],
      {
        input: updateReadme(readme),
        encoding: 'utf8',
      },
    );
    expect(formatted.status).toBe(0);
    expect(formatted.stdout).toBe(readme);
  });

  test('every provider and option appears in the generated section', () => {
    const md = providersMarkdown();
    for (const def of listProviders()) {
      expect(md).toContain(`### \`${def.code}\``);
      for (const opt of Object.keys(def.options)) expect(md).toContain(`| \`${opt}\` |`);
    }
  });

  test('`certpilot providers --json` lists the same definitions', async () => {
    const res = await runCli(['providers', '--json']);
    expect(res.code).toBe(0);
    const listed = JSON.parse(res.stdout) as { code: string; options: Record<string, unknown> }[];
    expect(listed.map((p) => p.code)).toEqual(listProviders().map((d) => d.code));
    expect(listed.map((p) => Object.keys(p.options))).toEqual(
      listProviders().map((d) => Object.keys(d.options)),
    );
  });

  test('`certpilot providers` prints each provider with its options', async () => {
    const res = await runCli(['providers']);
    expect(res.code).toBe(0);
    for (const def of listProviders()) expect(res.stdout).toMatch(new RegExp(`^${def.code}\\b`, 'm'));
    expect(res.stdout).toMatch(/tsigSecret\s+string \(required; env CERTPILOT_RFC2136_TSIG_SECRET; secret/);
  });
});
