import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Real servers and argon2 compete for two cores; a few files at a time keeps timings sane.
    maxWorkers: 2,
    allowOnly: false,
    passWithNoTests: false,
  },
});
