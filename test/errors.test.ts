import { describe, expect, it } from 'vitest';
import { GatewayError, InvalidRefreshToken, StoreUnavailable } from '../src/errors.ts';

describe('GatewayError', () => {
  it('keeps name, message, code, status and detail, and carries no stack frames (never logged, costly to capture)', () => {
    const err = new InvalidRefreshToken('unknown token');
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.name).toBe('InvalidRefreshToken');
    expect(err.status).toBe(401);
    expect(err.detail).toBe('unknown token');
    expect(err.stack ?? '').not.toMatch(/\n\s+at /);
  });

  it('leaves the stack of every other error alone', () => {
    void new StoreUnavailable('down');
    expect(new Error('x').stack).toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBeGreaterThan(0);
  });
});
