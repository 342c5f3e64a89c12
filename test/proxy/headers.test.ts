import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { droppedResponseHeaders, strippedRequestHeaders } from '../../src/proxy/index.ts';
import { forwardedHeaderList, responseHeaderList, stripRequestHeaders } from '../../src/proxy/headers.ts';

describe('request header hygiene', () => {
  it('drops hop-by-hop headers, the ones the client named in Connection, and client-asserted identity', () => {
    const dropped = strippedRequestHeaders(
      {
        connection: 'keep-alive, X-Hop-One ,x-hop-two, close',
        'x-hop-one': '1',
        'x-hop-two': '2',
        'x-mlgate-user': 'root',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-whatever': 'x',
        forwarded: 'for=1.2.3.4',
        authorization: 'Bearer t',
        'content-type': 'application/json',
      },
      true,
    );
    for (const name of ['connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'x-hop-one', 'x-hop-two', 'x-mlgate-user', 'x-forwarded-host', 'x-forwarded-whatever', 'forwarded', 'x-request-id', 'x-http-method-override', 'expect', 'authorization']) {
      expect(dropped, name).toContain(name);
    }
    expect(dropped).not.toContain('content-type');
    expect(dropped).not.toContain('close');
  });

  it('keeps the body framing even when the client names it in Connection (or the node would read the body as requests)', () => {
    const client = { connection: 'content-length, Transfer-Encoding, x-hop', 'content-length': '45', 'transfer-encoding': 'chunked', 'x-hop': '1' };
    const dropped = strippedRequestHeaders(client, true);
    expect(dropped).toContain('x-hop');
    expect(dropped).not.toContain('content-length');
    expect(dropped).not.toContain('transfer-encoding');
    const inPlace: IncomingHttpHeaders = { ...client };
    stripRequestHeaders(inPlace, true);
    expect(inPlace).toEqual({ 'content-length': '45', 'transfer-encoding': 'chunked' });
    const names = forwardedHeaderList(client, true, {}).filter((_, i) => i % 2 === 0);
    expect(names).toEqual(['content-length']); // undici frames a chunked body itself
  });

  it('keeps Authorization in passthrough mode', () => {
    expect(strippedRequestHeaders({ authorization: 'Bearer t' }, false)).not.toContain('authorization');
  });
});

describe('response header hygiene', () => {
  it('drops hop-by-hop headers and the ones the node named in Connection', () => {
    const dropped = droppedResponseHeaders({ connection: 'X-Node-Hop', 'x-node-hop': '1', 'content-length': '5' });
    for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'x-node-hop']) expect(dropped.has(name), name).toBe(true);
    expect(dropped.has('content-length')).toBe(false);
  });
});

describe('the engines apply the same hygiene', () => {
  const client = {
    connection: 'keep-alive, X-Hop-One',
    'x-hop-one': '1',
    'x-mlgate-user': 'root',
    'x-forwarded-host': 'evil.example',
    forwarded: 'for=1.2.3.4',
    te: 'trailers',
    expect: '100-continue',
    authorization: 'Bearer t',
    host: 'gateway.example',
    'transfer-encoding': 'chunked',
    'content-type': 'application/json',
    'set-cookie': ['a=1', 'b=2'],
  };
  const own = { 'x-request-id': 'rid-12345678', 'x-forwarded-for': '10.0.0.1' };

  it.each([true, false])('hpm (in place) and undici (name/value list) keep the same names, dropAuthorization %s', (drop) => {
    const dropped = new Set(strippedRequestHeaders(client, drop));
    const expected = Object.keys(client).filter((n) => !dropped.has(n));
    const inPlace: IncomingHttpHeaders = { ...client };
    stripRequestHeaders(inPlace, drop);
    expect(Object.keys(inPlace)).toEqual(expected);
    // undici: the same, minus what it sets itself (host, transfer-encoding), plus mlgate's own headers last.
    const list = forwardedHeaderList(client, drop, own);
    const names = list.filter((_, i) => i % 2 === 0);
    expect(names).toEqual([...expected.filter((n) => n !== 'host' && n !== 'transfer-encoding'), ...Object.keys(own)]);
    expect(list[names.indexOf('set-cookie') * 2 + 1]).toEqual(['a=1', 'b=2']);
  });
});

describe('the answer headers the client gets, with Connection on several lines', () => {
  it('drops what any Connection line names (undici gives them as an array)', () => {
    const node = { connection: ['keep-alive', 'x-secret'], 'x-secret': 'leaked', 'content-type': 'text/plain' } as unknown as IncomingHttpHeaders;
    expect(responseHeaderList(node, 'rid-1')).toEqual(['content-type', 'text/plain', 'x-request-id', 'rid-1']);
  });
});

describe('the answer headers the client gets', () => {
  it('as one name/value list: hop-by-hop and Connection-listed names dropped, duplicates kept, the node X-Request-Id replaced', () => {
    const list = responseHeaderList(
      { connection: 'X-Node-Hop', 'x-node-hop': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'node-id', 'content-type': 'text/plain' },
      'mlgate-id-1234',
    );
    expect(list).toEqual(['set-cookie', ['a=1', 'b=2'], 'content-type', 'text/plain', 'x-request-id', 'mlgate-id-1234']);
  });
});
