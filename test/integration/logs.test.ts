// Secrets never reach a log line: passwords, refresh tokens, access tokens, node assertions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, loginAdmin, request, startStack, type Stack } from './setup.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ config: { log: { level: 'trace' } } });
});
afterAll(async () => {
  await stack?.close();
});

describe('logs', () => {
  it('never contain a password, refresh token, access token or assertion, while the audit trail is complete', async () => {
    const secrets: string[] = [ADMIN_PASSWORD, 'Wrong-Password-Secret-9'];
    await request(stack, 'POST', '/login', { json: { username: 'admin', password: 'Wrong-Password-Secret-9' } });
    await request(stack, 'POST', '/login', { json: { username: 'nobody', password: 'Wrong-Password-Secret-9' } });
    const t1 = await loginAdmin(stack);
    secrets.push(t1.access_token, t1.refresh_token);
    const before = stack.node.received.length;
    await request(stack, 'GET', '/status', { token: t1.access_token });
    await request(stack, 'GET', '/status', { headers: { authorization: `Bearer ${t1.access_token}x` } });
    for (const r of stack.node.received.slice(before)) {
      const a = r.headers['x-mlgate-assertion'];
      if (typeof a === 'string') secrets.push(a);
    }
    const r2 = (await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: t1.refresh_token } })).json();
    secrets.push(r2.access_token, r2.refresh_token);
    await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: t1.refresh_token } }); // reuse
    const t3 = await loginAdmin(stack);
    secrets.push(t3.access_token, t3.refresh_token);
    await request(stack, 'DELETE', `/login/refreshToken?refreshToken=${t3.refresh_token}`);
    await request(stack, 'DELETE', `/login/refreshToken?refreshToken=${t3.refresh_token}`); // unknown now
    await request(stack, 'DELETE', `/login//refreshToken?refreshToken=${t3.refresh_token}`); // refused path
    await request(stack, 'POST', '/login', { body: `{"username":"admin","password":"${ADMIN_PASSWORD}"`, headers: { 'content-type': 'application/json' } });

    const all = stack.logLines.join('\n');
    expect(stack.logLines.length).toBeGreaterThan(5);
    for (const s of secrets) {
      expect(all.includes(s), `a secret (${s.slice(0, 6)}…) appears in the logs`).toBe(false);
      // Also no fragment long enough to be useful (JWT signature or token halves).
      if (s.length > 40) expect(all.includes(s.slice(-24)), 'a token fragment appears in the logs').toBe(false);
    }
    const events = stack.logLines.map((l) => JSON.parse(l)).filter((e) => e.audit).map((e) => e.event);
    expect(events).toEqual(expect.arrayContaining(['login.failed', 'login.ok', 'refresh.ok', 'refresh.reuse_detected', 'revoke.refresh_token']));
  });
});
