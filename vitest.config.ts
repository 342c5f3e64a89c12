import { defineConfig } from 'vitest/config';

// Suites that load both cores for tens of seconds (thousands of requests, 100,000 logins) run after the others,
// alone, so they cannot stretch the timing windows of other suites (throttle windows, failover timers).
const LOAD = ['test/integration/redis-gateway.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real servers on free ports; two cores, so keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'suites', include: ['test/**/*.test.ts'], exclude: LOAD, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'load', include: LOAD, sequence: { groupOrder: 1 } } },
    ],
  },
});
