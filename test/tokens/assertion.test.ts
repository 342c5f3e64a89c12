import { beforeAll, describe, it, expect } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { AccessTokens, AssertionMinter, KeyRing } from '../../src/tokens/index.ts';
import { accessOptions } from './helpers.ts';

const T0 = 1_760_000_000_000;
const CLAIMS = { sub: 'alice', name: 'Alice Example', roles: ['Contributor'], idp: 'ldap', sid: 'fam-a' };
const NODE_AUD = 'mlserver-node';

let ring: KeyRing;
beforeAll(async () => {
  ring = await KeyRing.generate('ES256');
});

async function verified(ttlSeconds = 3600, now = T0) {
  const access = new AccessTokens(ring, accessOptions({ ttlSeconds }));
  const { token } = await access.issue(CLAIMS, now);
  return access.verify(token, now);
}

describe('AssertionMinter', () => {
  it('mints a JWT for the node carrying the user, verifiable with the published JWKS', async () => {
    const minter = new AssertionMinter(ring, { issuer: 'mlgate', audience: NODE_AUD, ttlSeconds: 60 });
    const t = await verified();
    const value = await minter.forToken(t, T0);
    expect(decodeProtectedHeader(value)).toMatchObject({ alg: 'ES256', kid: ring.signer.kid, typ: 'mlgate-assertion+jwt' });
    const { payload } = await jwtVerify(value, createLocalJWKSet(ring.jwks()), {
      issuer: 'mlgate',
      audience: NODE_AUD,
      currentDate: new Date(T0),
    });
    expect(payload).toMatchObject({ sub: 'alice', name: 'Alice Example', roles: ['Contributor'], idp: 'ldap', sid: 'fam-a' });
    expect(payload.exp).toBe(Math.floor(T0 / 1000) + 60);
  });

  it('is minted once per token while fresh', async () => {
    const minter = new AssertionMinter(ring, { issuer: 'mlgate', audience: NODE_AUD, ttlSeconds: 60 });
    const t = await verified();
    const first = await minter.forToken(t, T0);
    for (let i = 1; i <= 49; i++) expect(await minter.forToken(t, T0 + i * 1000)).toBe(first);
    expect(minter.stats.minted).toBe(1);

    // another access token gets its own assertion
    const other = await verified();
    expect(await minter.forToken(other, T0)).not.toBe(first);
    expect(minter.stats.minted).toBe(2);
  });

  it('is minted again when near its expiry, and the new one is valid for longer', async () => {
    const minter = new AssertionMinter(ring, { issuer: 'mlgate', audience: NODE_AUD, ttlSeconds: 60 });
    const t = await verified();
    const first = await minter.forToken(t, T0);
    const renewed = await minter.forToken(t, T0 + 55_000); // 5 s before the first one expires
    expect(renewed).not.toBe(first);
    expect(minter.stats.minted).toBe(2);
    expect(decodeJwt(renewed).exp).toBe(Math.floor((T0 + 55_000) / 1000) + 60);
    expect(await minter.forToken(t, T0 + 56_000)).toBe(renewed);
    expect(minter.stats.minted).toBe(2);
  });

  it('never outlives the access token it stands for', async () => {
    const minter = new AssertionMinter(ring, { issuer: 'mlgate', audience: NODE_AUD, ttlSeconds: 3600 });
    const t = await verified(120);
    expect(decodeJwt(await minter.forToken(t, T0)).exp).toBe(t.exp);

    const late = await verified(3600, T0);
    const nearEnd = late.exp * 1000 - 30_000;
    const value = await minter.forToken(late, nearEnd);
    expect(decodeJwt(value).exp).toBeLessThanOrEqual(late.exp);
  });
});
