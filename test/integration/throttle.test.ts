// Login throttling through the real gateway: 429 + Retry-After, bounded lockout, other addresses unaffected.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, CA, startStack, type Stack } from './setup.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    config: { auth: { throttle: { windowSeconds: 2, perUserAndAddress: 3, perAddress: 20, perUser: 6 } } },
  });
});
afterAll(async () => {
  await stack?.close();
});

/** POST /login from a chosen loopback source address. */
function login(password: string, from: string, username = 'admin'): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL('/login', stack.url),
      { method: 'POST', ca: CA, localAddress: from, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ username, password }));
  });
}

describe('login throttling', () => {
  it('answers 429 with Retry-After after the configured failures, even for the right password', async () => {
    for (let i = 0; i < 3; i++) expect((await login('wrong', '127.0.0.1')).status).toBe(401);
    const blocked = await login(ADMIN_PASSWORD, '127.0.0.1');
    expect(blocked.status).toBe(429);
    expect(blocked.body.error).toBe('too_many_requests');
    expect(Object.keys(blocked.body).sort()).toEqual(['error', 'message', 'requestId']);
    const retry = Number(blocked.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(2);
    expect(stack.logLines.some((l) => l.includes('"event":"login.throttled"'))).toBe(true);
  });

  it('still lets the right password in from another address', async () => {
    expect((await login(ADMIN_PASSWORD, '127.0.0.2')).status).toBe(200);
  });

  it('honours Retry-After: after the window the same address logs in again', async () => {
    const blocked = await login(ADMIN_PASSWORD, '127.0.0.1');
    expect(blocked.status).toBe(429);
    await new Promise((r) => setTimeout(r, Number(blocked.headers['retry-after']) * 1000 + 200));
    expect((await login(ADMIN_PASSWORD, '127.0.0.1')).status).toBe(200);
  });

  it('a distributed attack blocks the user for one window at most', async () => {
    await new Promise((r) => setTimeout(r, 2200)); // a fresh window
    const from = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15', '127.0.0.16'];
    // At once, so all six fall in one 2 s window even when each argon2 check is slow (full suite on 2 cores).
    for (const r of await Promise.all(from.map((a) => login('wrong', a)))) expect(r.status).toBe(401);
    // The user-wide limit is reached: every address waits, the real user included...
    const blocked = await login(ADMIN_PASSWORD, '127.0.0.20');
    expect(blocked.status).toBe(429);
    // ...but only until the window ends.
    await new Promise((r) => setTimeout(r, Number(blocked.headers['retry-after']) * 1000 + 200));
    expect((await login(ADMIN_PASSWORD, '127.0.0.20')).status).toBe(200);
  });

  it('a burst of parallel guesses gets no more password checks than the limit (attempts are counted before the check)', async () => {
    await new Promise((r) => setTimeout(r, 2200)); // a fresh window
    const answers = await Promise.all(Array.from({ length: 20 }, () => login('wrong', '127.0.0.30')));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(17);
  });

  it('counts one user however the name is typed (case, spaces, Unicode compatibility forms)', async () => {
    await new Promise((r) => setTimeout(r, 2200)); // a fresh window
    for (let i = 0; i < 3; i++) expect((await login('wrong', '127.0.0.40')).status).toBe(401);
    for (const variant of [' ADMIN ', 'Admin', '\uFF41\uFF44\uFF4D\uFF49\uFF4E', 'adm\u0130n']) {
      expect((await login('wrong', '127.0.0.40', variant)).status, JSON.stringify(variant)).toBe(429);
    }
  });
});
