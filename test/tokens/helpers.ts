// Shared fixtures for the token suites.
import { AccessTokens, KeyRing } from '../../src/tokens/index.ts';
import type { AccessTokenOptions } from '../../src/tokens/index.ts';

export const ISSUER = 'mlgate';
export const AUDIENCE = 'mlserver';

export function accessOptions(over: Partial<AccessTokenOptions> = {}): AccessTokenOptions {
  return { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 3600, clockToleranceSeconds: 30, cacheSize: 1000, ...over };
}

export async function devAccess(over: Partial<AccessTokenOptions> = {}): Promise<{ ring: KeyRing; access: AccessTokens }> {
  const ring = await KeyRing.generate('ES256');
  return { ring, access: new AccessTokens(ring, accessOptions(over)) };
}

/** Resolves to the error a promise rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
