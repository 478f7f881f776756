// The import rules of src/, checked by `npm run deps` and by test/architecture/layers.test.ts
// (part of `npm test`). docs/architecture.md explains the layers.
//
// LAYERS lists the parts of src/ from the top (entry points) to the bottom (core). A module
// may import its own layer and any layer below it, never one above: an import that climbs is
// a design question, not a convenience. Because the order is total, no two folders can import
// each other (no folder cycles); `no-circular` forbids cycles between files as well.
'use strict';

/** [name, path regex]: top first. */
const LAYERS = [
  ['cli', '^src/cli/'],
  ['index', '^src/index\\.ts$'],
  ['import', '^src/import/'],
  ['daemon', '^src/daemon/'],
  ['fleet', '^src/fleet/'],
  ['config-loader', '^src/config/(?!(types|defaults|access|secrets|issues)\\.ts$)'],
  ['renew', '^src/renew/'],
  ['metrics', '^src/metrics/'],
  ['deploy', '^src/deploy/'],
  ['notify', '^src/notify/'],
  ['inspect', '^src/inspect/'],
  ['plan', '^src/plan/'],
  ['acme', '^src/acme/'],
  ['dns', '^src/dns/'],
  ['state', '^src/state/'],
  ['store', '^src/store/'],
  ['x509', '^src/x509/'],
  ['config-types', '^src/config/(types|defaults|access|secrets|issues)\\.ts$'],
  ['core', '^src/core/'],
];

const climbing = LAYERS.slice(1).map(([name, from], i) => ({
  name: `layer-${name}`,
  comment: `${name} may not import a layer above it (${LAYERS.slice(0, i + 1)
    .map(([n]) => n)
    .join(', ')})`,
  severity: 'error',
  from: { path: from },
  to: { path: LAYERS.slice(0, i + 1).map(([, p]) => `(${p})`) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles between files make load order and initialisation fragile.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-src',
      comment: 'Production code never imports test helpers.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'unlayered',
      comment: 'Every folder of src/ has a place in LAYERS (.dependency-cruiser.cjs).',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map(([, p]) => `(${p})`) },
      to: {},
    },
    ...climbing,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    // Type-only imports count: a type that climbs still couples the layers.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['cjs', 'es6'],
  },
};
