// Test-only entry point: the real src/main.ts, plus SIGUSR2 = one full garbage collection (node --expose-gc), so a
// test can read the process's resident memory without the garbage that is merely waiting to be collected.
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ msg: 'gc done', heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })}\n`);
});
await import('../../src/main.ts');
