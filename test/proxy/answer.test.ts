import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { tapSmallAnswer } from '../../src/proxy/index.ts';

function answer(headers: Record<string, string> = {}): PassThrough & IncomingMessage {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & IncomingMessage;
}

describe('tapSmallAnswer', () => {
  it('collects a small answer while another reader gets every byte', async () => {
    const a = answer();
    const tapped = tapSmallAnswer(a, 100);
    const piped: Buffer[] = [];
    a.on('data', (c: Buffer) => piped.push(c));
    a.write('"/api/x/');
    a.end('1"');
    expect(await tapped).toBe('"/api/x/1"');
    expect(Buffer.concat(piped).toString()).toBe('"/api/x/1"');
  });

  it('gives up on an answer over the limit without disturbing the stream', async () => {
    const a = answer();
    const tapped = tapSmallAnswer(a, 4);
    const piped: Buffer[] = [];
    a.on('data', (c: Buffer) => piped.push(c));
    a.write('12345');
    a.end('678');
    expect(await tapped).toBeNull();
    await new Promise((r) => a.once('end', r));
    expect(Buffer.concat(piped).toString()).toBe('12345678');
    expect(a.listenerCount('data')).toBe(1);
  });

  it('does not read a declared-too-large or content-encoded answer', async () => {
    expect(await tapSmallAnswer(answer({ 'content-length': '5000' }), 100)).toBeNull();
    expect(await tapSmallAnswer(answer({ 'content-encoding': 'gzip' }), 100)).toBeNull();
  });

  it('gives null for an answer cut off before its end', async () => {
    const a = answer();
    const tapped = tapSmallAnswer(a, 100);
    a.write('"/api');
    a.destroy();
    expect(await tapped).toBeNull();
  });
});
