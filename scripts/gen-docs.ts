/** `npm run docs`: regenerates the generated sections of README.md from the code. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { updateReadme } from '../src/dns/provider-docs';

const file = path.join(__dirname, '..', 'README.md');
const before = readFileSync(file, 'utf8');
const after = updateReadme(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? 'README.md is up to date' : 'README.md updated');
