import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{log-store,rules,firmware-bridge,agent,test}/**/*.test.ts'],
    // Two cores on CI: forks keep native modules (sqlite3, serialport) isolated per file.
    pool: 'forks',
    maxWorkers: 2,
    // Tests check behaviour, not speed: the generous timeout only stops a hung test from hanging CI.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
