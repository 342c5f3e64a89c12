import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import { describe, it, expect, beforeAll } from 'vitest';
import { SignJWT, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { InvalidToken } from '../../src/errors.ts';
import { AccessTokens, KeyRing } from '../../src/tokens/index.ts';
import { AUDIENCE, ISSUER, accessOptions, devAccess, rejection } from './helpers.ts';

const NOW = 1_760_000_000_000; // fixed clock for every token in this file
const NOW_S = Math.floor(NOW / 1000);
const CLAIMS = { sub: 'alice', name: 'Alice Example', roles: ['Contributor'], idp: 'ldap', sid: 'fam-123' };

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

function payload(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'mallory',
    name: 'Mallory',
    roles: ['Owner'],
    idp: 'admin',
    sid: 'fam-forged',
    jti: randomUUID(),
    iat: NOW_S,
    exp: NOW_S + 3600,
    ...over,
  };
}

async function sign(key: CryptoKey, header: Record<string, unknown>, body: Record<string, unknown>): Promise<string> {
  return new SignJWT(body).setProtectedHeader(header as { alg: string }).sign(key);
}

function hs256(secret: string | Buffer, header: Record<string, unknown>, body: Record<string, unknown>): string {
  const input = `${b64({ alg: 'HS256', ...header })}.${b64(body)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function expectInvalid(access: AccessTokens, token: string, code = 'invalid_token'): Promise<InvalidToken> {
  const err = await rejection(access.verify(token, NOW));
  expect(err).toBeInstanceOf(InvalidToken);
  const e = err as InvalidToken;
  expect(e.status).toBe(401);
  expect(e.code).toBe(code);
  expect(e.headers['WWW-Authenticate']).toBe('Bearer');
  return e;
}

describe('AccessTokens', () => {
  let ring: KeyRing;
  let access: AccessTokens;
  let attacker: { privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK };

  beforeAll(async () => {
    ({ ring, access } = await devAccess());
    const kp = await generateKeyPair('ES256', { extractable: true });
    attacker = { ...kp, jwk: { ...(await exportJWK(kp.publicKey)), kid: 'attacker-key', alg: 'ES256', use: 'sig' } };
  });

  describe('issue then verify', () => {
    it('returns the claims it was issued with, and exp = iat + ttl', async () => {
      const { token, exp } = await access.issue(CLAIMS, NOW);
      expect(exp).toBe(NOW_S + 3600);
      const v = await access.verify(token, NOW + 1_000);
      expect(v).toMatchObject({ ...CLAIMS, iat: NOW_S, exp: NOW_S + 3600 });
      expect(typeof v.jti).toBe('string');
      expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: ring.signer.kid, typ: 'JWT' });
    });

    it('gives every token its own jti', async () => {
      const a = await access.verify((await access.issue(CLAIMS, NOW)).token, NOW);
      const b = await access.verify((await access.issue(CLAIMS, NOW)).token, NOW);
      expect(a.jti).not.toBe(b.jti);
    });

    it('a token of ours, crafted with the signing key, verifies: the control for the forgeries below', async () => {
      const token = await sign(ring.signer.privateKey, { alg: 'ES256', kid: ring.signer.kid }, payload());
      await expect(access.verify(token, NOW)).resolves.toMatchObject({ sub: 'mallory', roles: ['Owner'] });
    });
  });

  describe('expiry', () => {
    it('is accepted within the clock tolerance and refused after it with token_expired', async () => {
      const { token, exp } = await access.issue(CLAIMS, NOW);
      const fresh = new AccessTokens(ring, accessOptions());
      await expect(fresh.verify(token, exp * 1000 + 29_000)).resolves.toMatchObject({ sub: 'alice' });

      const other = new AccessTokens(ring, accessOptions());
      const err = await rejection(other.verify(token, exp * 1000 + 31_000));
      expect(err).toBeInstanceOf(InvalidToken);
      expect((err as InvalidToken).code).toBe('token_expired');
      expect((err as InvalidToken).status).toBe(401);
    });

    it('a token verified (and cached) while valid is refused once it has expired', async () => {
      const a = new AccessTokens(ring, accessOptions());
      const { token, exp } = await a.issue(CLAIMS, NOW);
      await a.verify(token, NOW);
      const err = await rejection(a.verify(token, exp * 1000 + 31_000));
      expect(err).toBeInstanceOf(InvalidToken);
      expect((err as InvalidToken).code).toBe('token_expired');
      // and stays refused
      expect(((await rejection(a.verify(token, exp * 1000 + 32_000))) as InvalidToken).code).toBe('token_expired');
    });
  });

  describe('forgeries are refused with invalid_token', () => {
    it('alg "none"', async () => {
      const unsigned = `${b64({ alg: 'none', typ: 'JWT', kid: ring.signer.kid })}.${b64(payload())}.`;
      await expectInvalid(access, unsigned);
      const noneUpper = `${b64({ alg: 'NONE', kid: ring.signer.kid })}.${b64(payload())}.`;
      await expectInvalid(access, noneUpper);
    });

    it('signed by another key that claims our kid', async () => {
      const token = await sign(attacker.privateKey, { alg: 'ES256', kid: ring.signer.kid }, payload());
      await expectInvalid(access, token);
    });

    it('HS256 keyed with our public key (JWK JSON, PEM, or the x coordinate)', async () => {
      const jwk = ring.jwks().keys[0]!;
      const pem = createPublicKey({ key: jwk, format: 'jwk' } as Parameters<typeof createPublicKey>[0])
        .export({ type: 'spki', format: 'pem' })
        .toString();
      for (const secret of [JSON.stringify(jwk), pem, String(jwk.x)]) {
        await expectInvalid(access, hs256(secret, { kid: ring.signer.kid, typ: 'JWT' }, payload()));
      }
    });

    it('a tampered payload keeps the original signature', async () => {
      const { token } = await access.issue({ ...CLAIMS, roles: ['Reader'] }, NOW);
      const [h, , s] = token.split('.');
      const original = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      const tampered = `${h}.${b64({ ...original, roles: ['Owner'] })}.${s}`;
      await expectInvalid(new AccessTokens(ring, accessOptions()), tampered);
      // with the original still accepted
      await expect(access.verify(token, NOW)).resolves.toMatchObject({ roles: ['Reader'] });
    });

    it('tampering is refused even when the genuine token is already in the verified cache', async () => {
      const a = new AccessTokens(ring, accessOptions());
      const { token } = await a.issue({ ...CLAIMS, roles: ['Reader'] }, NOW);
      await a.verify(token, NOW);
      const [h, p, s] = token.split('.');
      const original = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
      await expectInvalid(a, `${h}.${b64({ ...original, roles: ['Owner'] })}.${s}`);
    });

    it('the wrong issuer or audience, signed with our own key', async () => {
      const hdr = { alg: 'ES256', kid: ring.signer.kid };
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, payload({ iss: 'someone-else' })));
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, payload({ aud: 'other-service' })));
      const { iss: _i, ...noIss } = payload();
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, noIss));
      const { aud: _a, ...noAud } = payload();
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, noAud));
    });

    it('a token without sid or jti, signed with our own key', async () => {
      const hdr = { alg: 'ES256', kid: ring.signer.kid };
      const { sid: _s, ...noSid } = payload();
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, noSid));
      const { jti: _j, ...noJti } = payload();
      await expectInvalid(access, await sign(ring.signer.privateKey, hdr, noJti));
    });

    it('keys named by the token itself (jwk, jku, x5u headers) are never used', async () => {
      const forge = (hdr: Record<string, unknown>) => sign(attacker.privateKey, { alg: 'ES256', ...hdr }, payload());
      await expectInvalid(access, await forge({ kid: 'attacker-key', jwk: attacker.jwk }));
      await expectInvalid(access, await forge({ kid: ring.signer.kid, jwk: attacker.jwk }));
      await expectInvalid(access, await forge({ jwk: attacker.jwk }));
      await expectInvalid(access, await forge({ kid: 'attacker-key', jku: 'https://attacker.example/jwks.json' }));
      await expectInvalid(access, await forge({ kid: ring.signer.kid, jku: 'https://attacker.example/jwks.json' }));
      await expectInvalid(access, await forge({ kid: ring.signer.kid, x5u: 'https://attacker.example/cert.pem' }));
    });

    it('a different algorithm than the configured one, even with a key it could verify', async () => {
      const rs = await KeyRing.generate('RS256');
      const rsToken = await sign(rs.signer.privateKey, { alg: 'RS256', kid: rs.signer.kid }, payload());
      await expectInvalid(access, rsToken);
    });

    it('garbage strings', async () => {
      for (const t of ['', 'abc', 'a.b.c', `${b64({ alg: 'ES256' })}.${b64(payload())}`]) {
        await expectInvalid(access, t);
      }
    });
  });

  describe('size limit', () => {
    it('refuses a correctly signed token over 8 KB, accepts the same shape below it', async () => {
      const hdr = { alg: 'ES256', kid: ring.signer.kid };
      const small = await sign(ring.signer.privateKey, hdr, payload({ pad: 'x'.repeat(1000) }));
      await expect(access.verify(small, NOW)).resolves.toMatchObject({ sub: 'mallory' });
      const big = await sign(ring.signer.privateKey, hdr, payload({ pad: 'x'.repeat(9000) }));
      expect(big.length).toBeGreaterThan(8192);
      await expectInvalid(access, big);
    });
  });

  describe('verified cache', () => {
    it('the second verify of a token returns the same object from the cache', async () => {
      const a = new AccessTokens(ring, accessOptions());
      const { token } = await a.issue(CLAIMS, NOW);
      const first = await a.verify(token, NOW);
      expect(a.stats).toEqual({ verified: 1, cacheHits: 0 });
      const second = await a.verify(token, NOW + 60_000);
      expect(second).toBe(first);
      expect(a.stats).toEqual({ verified: 1, cacheHits: 1 });
      await a.verify(token, NOW + 120_000);
      expect(a.stats.cacheHits).toBe(2);
    });

    it('with cacheSize 0 every verify checks the signature again', async () => {
      const a = new AccessTokens(ring, accessOptions({ cacheSize: 0 }));
      const { token } = await a.issue(CLAIMS, NOW);
      await a.verify(token, NOW);
      await a.verify(token, NOW);
      expect(a.stats).toEqual({ verified: 2, cacheHits: 0 });
    });

    it('stays within cacheSize: the oldest entry is verified again after being evicted', async () => {
      const a = new AccessTokens(ring, accessOptions({ cacheSize: 2 }));
      const t1 = (await a.issue(CLAIMS, NOW)).token;
      const t2 = (await a.issue(CLAIMS, NOW)).token;
      const t3 = (await a.issue(CLAIMS, NOW)).token;
      for (const t of [t1, t2, t3]) await a.verify(t, NOW);
      await a.verify(t3, NOW);
      expect(a.stats).toEqual({ verified: 3, cacheHits: 1 });
      await a.verify(t1, NOW);
      expect(a.stats).toEqual({ verified: 4, cacheHits: 1 });
    });
  });
});
