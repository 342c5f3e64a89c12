// Deterministic pseudo-random bytes for GET /download (streaming tests).
// xorshift32 over 32-bit words, fixed seed, emitted little-endian in 64 KiB blocks: byte i of every download
// is the same whatever its length, so a test can compare a prefix or recompute the digest with downloadSha256().

import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';

export const DOWNLOAD_BLOCK_BYTES = 64 * 1024;
const SEED = 0x9e3779b9;

export class PseudoRandomBlocks {
  #state = SEED;

  /** The next 64 KiB block, a fresh Buffer each call (safe to hand to a stream). */
  next(): Buffer {
    const words = new Uint32Array(DOWNLOAD_BLOCK_BYTES / 4);
    let x = this.#state;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      words[i] = x;
    }
    this.#state = x;
    // Uint32Array is host byte order; Node runs little-endian everywhere it is supported.
    return Buffer.from(words.buffer, 0, DOWNLOAD_BLOCK_BYTES);
  }
}

/** The first `bytes` bytes of the sequence, in chunks of at most one block. */
export function* pseudoRandomChunks(bytes: number): Generator<Buffer> {
  const gen = new PseudoRandomBlocks();
  for (let left = bytes; left > 0; ) {
    const block = gen.next();
    const chunk = left >= block.length ? block : block.subarray(0, left);
    left -= chunk.length;
    yield chunk;
  }
}

/** Writes the first `bytes` bytes to `out` with backpressure, then ends it; `onChunk` sees each chunk as it goes. */
export function writePseudoRandom(out: Writable, bytes: number, onChunk?: (chunk: Buffer) => void): void {
  const chunks = pseudoRandomChunks(bytes);
  const pump = (): void => {
    for (;;) {
      if (out.destroyed) return;
      const next = chunks.next();
      if (next.done) return void out.end();
      onChunk?.(next.value);
      if (!out.write(next.value)) return void out.once('drain', pump);
    }
  };
  pump();
}

/** Hex SHA-256 of what GET /download?bytes=n sends. */
export function downloadSha256(bytes: number): string {
  const h = createHash('sha256');
  for (const chunk of pseudoRandomChunks(bytes)) h.update(chunk);
  return h.digest('hex');
}
