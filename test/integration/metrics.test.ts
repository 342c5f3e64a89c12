// Prometheus metrics through the real gateway.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/index.ts';
import { listenMetrics } from '../../src/server.ts';
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

describe('the separate metrics port (metrics.port)', () => {
  it('serves GET /mlgate/metrics over plain HTTP on its own port, and nothing else', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const s = await startStack({ config: { metrics: { port } } });
    const m = await listenMetrics(s.gateway, createLogger('silent'));
    try {
      expect(m?.port).toBe(port);
      const get = (path: string) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          }).on('error', reject);
        });
      const ok = await get('/mlgate/metrics');
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('mlgate_http_requests_total');
      const other = await get('/status');
      expect(other.status).toBe(404);
      expect(JSON.parse(other.text).error).toBe('route_not_found');
    } finally {
      await m?.close();
      await s.close();
    }
  });
});
