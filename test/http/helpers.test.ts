// readJsonObjectFrom against a real Node HTTP server and raw client sockets: the body limit, chunked bodies, and a
// client that goes away mid-body (the read must settle, not wait forever).
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { readJsonObjectFrom } from '../../src/http/helpers.ts';

const LIMIT = 1024;
let server: http.Server;
let port: number;
const outcomes: Array<Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; status: number; code: string }>> = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const outcome = readJsonObjectFrom(req, LIMIT).then(
      (body) => ({ ok: true as const, body }),
      (err: unknown) => (err instanceof GatewayError ? { ok: false as const, status: err.status, code: err.code } : { ok: false as const, status: 500, code: String(err) }),
    );
    outcomes.push(outcome);
    void outcome.then((o) => {
      if (!res.destroyed) res.writeHead(o.ok ? 200 : o.status, { connection: 'close' }).end(JSON.stringify(o));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Writes raw bytes; resolves with the answer's status line (or '' when the connection closed without one). */
function send(raw: string, opts: { destroyAfterWrite?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(raw);
      if (opts.destroyAfterWrite) setTimeout(() => socket.destroy(), 50);
    });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''));
    socket.on('error', () => undefined);
  });
}
const head = (extra: string) => `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}\r\n`;
const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

describe('readJsonObjectFrom', () => {
  it('reads a body with Content-Length', async () => {
    const body = '{"refreshToken":"abc"}';
    expect(await send(head(`Content-Length: ${body.length}\r\n`) + body)).toBe('HTTP/1.1 200 OK');
    expect(await outcomes.at(-1)).toEqual({ ok: true, body: { refreshToken: 'abc' } });
  });

  it('reads a chunked body split across chunks', async () => {
    expect(await send(head('Transfer-Encoding: chunked\r\n') + chunk('{"a":') + chunk('"b"}') + '0\r\n\r\n')).toBe('HTTP/1.1 200 OK');
    expect(await outcomes.at(-1)).toEqual({ ok: true, body: { a: 'b' } });
  });

  it('refuses a declared Content-Length over the limit before reading anything (413)', async () => {
    expect(await send(head(`Content-Length: ${LIMIT + 1}\r\n`))).toBe('HTTP/1.1 413 Payload Too Large');
    expect(await outcomes.at(-1)).toEqual({ ok: false, status: 413, code: 'payload_too_large' });
  });

  it('cuts a chunked body at the limit (413)', async () => {
    const big = chunk(`{"a":"${'x'.repeat(LIMIT)}"}`);
    expect(await send(head('Transfer-Encoding: chunked\r\n') + big + '0\r\n\r\n')).toBe('HTTP/1.1 413 Payload Too Large');
    expect(await outcomes.at(-1)).toEqual({ ok: false, status: 413, code: 'payload_too_large' });
  });

  it('settles with 400 when the client goes away mid-body', async () => {
    const before = outcomes.length;
    await send(head('Content-Length: 100\r\n') + '{"refreshToken":', { destroyAfterWrite: true });
    expect(outcomes.length).toBe(before + 1);
    expect(await outcomes.at(-1)).toEqual({ ok: false, status: 400, code: 'malformed_json' });
  });

  it.each([
    ['text/plain', 415, 'unsupported_media_type'],
    ['application/json', 400, 'malformed_json'],
  ])('answers a non-JSON body sent as %s with %i', async (type, status, code) => {
    const body = 'username=admin';
    await send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(await outcomes.at(-1)).toEqual({ ok: false, status, code });
  });
});
