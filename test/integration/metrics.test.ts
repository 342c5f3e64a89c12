// Prometheus metrics through the real gateway.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginAdmin, request, startStack, type Stack } from './setup.ts';

let stack: Stack;
let closed: Stack;
beforeAll(async () => {
  stack = await startStack();
  closed = await startStack({ config: { metrics: { allowFrom: ['10.0.0.0/8'] } } });
});
afterAll(async () => {
  await stack?.close();
  await closed?.close();
});

function sample(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('GET /mlgate/metrics', () => {
  it('counts requests by route class and status, logins by provider, and store latency', async () => {
    const { access_token } = await loginAdmin(stack);
    for (let i = 0; i < 3; i++) expect((await request(stack, 'GET', '/status', { token: access_token })).status).toBe(200);
    expect((await request(stack, 'GET', '/status')).status).toBe(401);
    const r = await request(stack, 'GET', '/mlgate/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/plain');
    const ok = sample(r.text, 'mlgate_http_requests_total', { method: 'GET', status: '200', route_class: 'status' });
    const unauth = sample(r.text, 'mlgate_http_requests_total', { method: 'GET', status: '401', route_class: 'status' });
    expect(ok).toBe(3);
    expect(unauth).toBe(1);
    expect(sample(r.text, 'mlgate_logins_total', { provider: 'admin', outcome: 'ok' })).toBe(1);
    expect(sample(r.text, 'mlgate_store_operation_duration_seconds_count', { op: 'createFamily', outcome: 'ok' })).toBe(1);
    expect(r.text).toContain('mlgate_revocation_view_age_seconds 0');
    expect(r.text).toMatch(/mlgate_access_token_verifications\{kind="cache"\} [1-9]/);
    expect(r.text).toContain('mlgate_process_cpu_seconds_total');
  });

  it('refuses clients outside metrics.allowFrom with a JSON 403', async () => {
    const r = await request(closed, 'GET', '/mlgate/metrics');
    expect(r.status).toBe(403);
    expect(r.json().error).toBe('forbidden');
  });
});
