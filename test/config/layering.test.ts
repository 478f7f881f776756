import fs from 'node:fs';
import path from 'node:path';

/**
 * src/config sits below deploy, renew and inspect: they import its types and parsers, never the
 * other way round (that was an import cycle), and types.ts is a leaf every layer can import.
 */

const CONFIG = path.join(__dirname, '..', '..', 'src', 'config');

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(CONFIG, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
}

const files = fs.readdirSync(CONFIG).filter((f) => f.endsWith('.ts'));

test('src/config imports nothing from deploy, renew, inspect, store, state or acme', () => {
  const upward = files.flatMap((f) =>
    importsOf(f)
      .filter((s) => /^\.\.\/(deploy|renew|inspect|store|state|acme|daemon|cli|notify)(\/|$)/.test(s))
      .map((s) => `${f} -> ${s}`),
  );
  expect(files.length).toBeGreaterThan(10);
  expect(upward).toEqual([]);
});

test('src/config/types.ts imports nothing', () => {
  expect(importsOf('types.ts')).toEqual([]);
});

test('no section parser has a helper set of its own: isSet and the mapping checks come from the combinators', () => {
  const ownHelpers = files
    .filter((f) => f !== 'combinators.ts')
    .filter((f) =>
      /const isSet =|function isSet\(|function keys\(|class Issues\b/.test(
        fs.readFileSync(path.join(CONFIG, f), 'utf8'),
      ),
    );
  expect(ownHelpers).toEqual([]);
});
