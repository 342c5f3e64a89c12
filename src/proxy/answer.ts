// Reading a small node answer alongside the stream that carries it to the client (publish bookkeeping).
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * Collects the node's answer as text while it is piped to the client: a tap, not a buffer in the path — the
 * client gets every byte as it comes whatever happens here. Resolves null (and stops collecting) when the answer
 * is larger than maxBytes, content-encoded, or cut off. Call it from the proxyRes hook, before the pipe starts.
 */
export function tapSmallAnswer(answer: Readable & { headers: IncomingHttpHeaders }, maxBytes: number): Promise<string | null> {
  return new Promise((resolve) => {
    const encoding = answer.headers['content-encoding'];
    const declared = Number(answer.headers['content-length'] ?? 0);
    if ((encoding !== undefined && encoding.toLowerCase() !== 'identity') || declared > maxBytes) {
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        stop();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onClose = (): void => {
      stop();
      resolve(null); // no-op when 'end' came first
    };
    const stop = (): void => {
      answer.off('data', onData);
      answer.off('end', onEnd);
      answer.off('close', onClose);
    };
    answer.on('data', onData);
    answer.once('end', onEnd);
    answer.once('close', onClose);
  });
}
