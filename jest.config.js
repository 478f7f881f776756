/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/global-setup.js',
  // Integration tests start real servers (Pebble, BIND); keep them from fighting over 2 cores.
  maxWorkers: 2,
  testTimeout: 60000,
};
