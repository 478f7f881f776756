/** `npm run docs`: regenerates the generated sections of README.md and docs/configuration.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { updateReadme } from '../src/dns/provider-docs';
import { METRICS, REFERENCE, updateBlock } from './config-reference';

const root = path.join(__dirname, '..');
const files: [string, (text: string) => string][] = [
  ['README.md', (text) => updateBlock(updateReadme(text), METRICS)],
  [path.join('docs', 'configuration.md'), (text) => updateBlock(text, REFERENCE)],
];
for (const [name, update] of files) {
  const file = path.join(root, name);
  const before = readFileSync(file, 'utf8');
  const after = update(before);
  if (after !== before) writeFileSync(file, after);
  console.log(after === before ? `${name} is up to date` : `${name} updated`);
}
