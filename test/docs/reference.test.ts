import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { OWN_ROOT_KEYS } from '../../src/config/load';
import { schemaLeaves, schemaShape } from '../../src/config/schema';
import { METRIC_DEFINITIONS } from '../../src/metrics/definitions';
import { updateReadme } from '../../src/dns/provider-docs';
import {
  configurationReference,
  METRICS,
  metricsReference,
  REFERENCE,
  UNDOCUMENTED,
  updateBlock,
} from '../../scripts/config-reference';

/**
 * docs/configuration.md and the README's /metrics table are generated from the code (`npm run
 * docs`): the committed files must be what the generator writes, and the generator must find a
 * doc for every key the loader accepts.
 */

const root = path.join(__dirname, '..', '..');

/** `npm run docs` formats with prettier (as `npm run lint` requires); compare the same way. */
function prettier(text: string, file: string): string {
  const res = spawnSync(
    process.execPath,
    [require.resolve('prettier/bin/prettier.cjs'), '--stdin-filepath', file],
    {
      input: text,
      encoding: 'utf8',
    },
  );
  expect(res.status).toBe(0);
  return res.stdout;
}

describe('generated documentation matches the code (run `npm run docs` when this fails)', () => {
  test('docs/configuration.md', async () => {
    const file = path.join(root, 'docs', 'configuration.md');
    const committed = await readFile(file, 'utf8');
    expect(prettier(updateBlock(committed, REFERENCE), file)).toBe(committed);
  });

  test('README.md: the /metrics table (and the provider section)', async () => {
    const file = path.join(root, 'README.md');
    const committed = await readFile(file, 'utf8');
    expect(prettier(updateBlock(updateReadme(committed), METRICS), file)).toBe(committed);
  });
});

describe('the reference documents every key', () => {
  const reference = configurationReference();

  test('no key is accepted without a doc', () => {
    const rows = reference.split('\n').filter((l) => l.includes(UNDOCUMENTED));
    expect(rows).toEqual([]);
  });

  test('every schema leaf has a row, with its variable', () => {
    for (const leaf of schemaLeaves().filter((l) => l.path !== 'certificates')) {
      expect(reference).toContain(`| \`${leaf.path}\` |`);
      if (leaf.env) expect(reference).toContain(`| \`${leaf.env}\` | \`${leaf.path}\` |`);
    }
  });

  test('every top-level section has a heading', () => {
    for (const key of [...Object.keys(schemaShape()), ...OWN_ROOT_KEYS])
      expect(reference).toMatch(new RegExp(`^## \`${key}(\\[\\])?\``, 'm'));
  });

  test('the options the issue found missing are there', () => {
    for (const heading of [
      '### `certificates[].deploy[]`',
      '## `hooks` (and `certificates[].hooks`)',
      '### `certificates[].endpoints[]` (and `watch.endpoints[]`)',
      '## `notify`',
      '## `verify`',
      '### `certificates[].check` (thresholds)',
    ])
      expect(reference).toContain(heading);
    expect(reference).toContain('| `rollback` |');
  });

  test('every metric definition is in the /metrics table', () => {
    const md = metricsReference();
    for (const m of METRIC_DEFINITIONS) expect(md).toContain(`| \`${m.name}\` | ${m.type} |`);
  });
});
