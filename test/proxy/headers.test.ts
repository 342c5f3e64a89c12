import { describe, expect, it } from 'vitest';
import { droppedResponseHeaders, strippedRequestHeaders } from '../../src/proxy/index.ts';

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
