import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real servers on free ports; two cores, so keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
