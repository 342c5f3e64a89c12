// Login throttling shared through Redis: failures on one instance count on the other; Redis down never means 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/tokens/index.ts';
import { startRedis, type RedisServer } from './servers/redis.ts';
import { ADMIN_PASSWORD, request, startStack, type Stack } from './setup.ts';

let redis: RedisServer;
let a: Stack;
let b: Stack;

beforeAll(async () => {
  redis = await startRedis();
  const keys = await KeyRing.generate('ES256');
  const config = {
    store: { kind: 'redis', redis: { mode: 'standalone', url: redis.url, commandTimeoutMs: 500, connectTimeoutMs: 500 } },
    auth: { throttle: { windowSeconds: 30, perUserAndAddress: 3, perAddress: 50, perUser: 50 } },
  };
  [a, b] = await Promise.all([startStack({ config, keys }), startStack({ config, keys })]);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.close();
});

const login = (s: Stack, password: string) => request(s, 'POST', '/login', { json: { username: 'admin', password } });

describe('login throttling with the Redis store', () => {
  it('counts failures across instances: 2 on A and 1 on B block the next attempt on A', async () => {
    expect((await login(a, 'wrong')).status).toBe(401);
    expect((await login(a, 'wrong')).status).toBe(401);
    expect((await login(b, 'wrong')).status).toBe(401);
    const blocked = await login(a, ADMIN_PASSWORD);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await login(b, ADMIN_PASSWORD)).status).toBe(429);
    expect(Number(await redis.cli('DBSIZE'))).toBeGreaterThan(0);
  });

  it('with Redis down, counting goes on in memory and logins answer 401/503, never 500', async () => {
    await redis.cli('FLUSHALL');
    await redis.kill();
    try {
      expect((await login(a, 'wrong')).status).toBe(401);
      const ok = await login(a, ADMIN_PASSWORD);
      expect(ok.status).toBe(503);
      expect(ok.json().error).toBe('store_unavailable');
    } finally {
      await redis.start();
    }
  });
});
