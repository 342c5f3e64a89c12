import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it, expect } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { InvalidToken } from '../../src/errors.ts';
import { AccessTokens, KeyRing, generatePrivateKeyPem } from '../../src/tokens/index.ts';
import type { SigningAlgorithm } from '../../src/tokens/index.ts';
import { AUDIENCE, ISSUER, accessOptions, rejection } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'mlgate-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function keyFile(alg: SigningAlgorithm, name: string): Promise<string> {
  const file = join(dir, `${name}.pem`);
  writeFileSync(file, await generatePrivateKeyPem(alg), { mode: 0o600 });
  return file;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const NOW = 1_760_000_000_000;
const CLAIMS = { sub: 'bob', name: 'Bob', roles: ['Reader'], idp: 'admin', sid: 'fam-k' };

describe('KeyRing.fromFiles', () => {
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
    it(`${alg}: loads a generated PEM, signs tokens that verify, and publishes only the public key`, async () => {
      const file = await keyFile(alg, `key-${alg}`);
      const ring = await KeyRing.fromFiles(alg, [{ kid: `kid-${alg}`, privateKeyFile: file, active: true }]);
      expect(ring.alg).toBe(alg);
      expect(ring.signer.kid).toBe(`kid-${alg}`);
      expect(ring.hasGeneratedKeys).toBe(false);

      const jwks = ring.jwks();
      expect(jwks.keys).toHaveLength(1);
      const jwk = jwks.keys[0]!;
      expect(jwk).toMatchObject({ kid: `kid-${alg}`, alg, use: 'sig' });
      for (const m of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(m);
      expect(JSON.stringify(jwks)).not.toContain('PRIVATE');

      const access = new AccessTokens(ring, accessOptions());
      const { token } = await access.issue(CLAIMS, NOW);
      expect(decodeProtectedHeader(token)).toMatchObject({ alg, kid: `kid-${alg}` });
      await expect(access.verify(token, NOW)).resolves.toMatchObject(CLAIMS);

      // what a client or a node does with /.well-known/jwks.json
      const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(NOW),
      });
      expect(payload.sub).toBe('bob');
    });
  }

  it('two instances loading the same key file verify each other\'s tokens (shared signing key)', async () => {
    const file = await keyFile('ES256', 'shared');
    const a = new AccessTokens(await KeyRing.fromFiles('ES256', [{ kid: 's1', privateKeyFile: file, active: true }]), accessOptions());
    const b = new AccessTokens(await KeyRing.fromFiles('ES256', [{ kid: 's1', privateKeyFile: file, active: true }]), accessOptions());
    const { token } = await a.issue(CLAIMS, NOW);
    await expect(b.verify(token, NOW)).resolves.toMatchObject({ sub: 'bob' });
  });

  it('rotation overlap: an inactive old key keeps verifying, the active new key signs', async () => {
    const oldFile = await keyFile('ES256', 'old');
    const newFile = await keyFile('ES256', 'new');
    const before = new AccessTokens(await KeyRing.fromFiles('ES256', [{ kid: 'old', privateKeyFile: oldFile, active: true }]), accessOptions());
    const oldToken = (await before.issue(CLAIMS, NOW)).token;

    const ring = await KeyRing.fromFiles('ES256', [
      { kid: 'old', privateKeyFile: oldFile, active: false },
      { kid: 'new', privateKeyFile: newFile, active: true },
    ]);
    expect(ring.signer.kid).toBe('new');
    expect(ring.jwks().keys.map((k) => k.kid).sort()).toEqual(['new', 'old']);
    const during = new AccessTokens(ring, accessOptions());
    await expect(during.verify(oldToken, NOW)).resolves.toMatchObject({ sub: 'bob' });
    const newToken = (await during.issue(CLAIMS, NOW)).token;
    expect(decodeProtectedHeader(newToken).kid).toBe('new');

    // once the old key is removed, its tokens are refused
    const after = new AccessTokens(await KeyRing.fromFiles('ES256', [{ kid: 'new', privateKeyFile: newFile, active: true }]), accessOptions());
    expect(await rejection(after.verify(oldToken, NOW))).toBeInstanceOf(InvalidToken);
    await expect(after.verify(newToken, NOW)).resolves.toMatchObject({ sub: 'bob' });
  });

  it('refuses a key set without an active key', async () => {
    const file = await keyFile('ES256', 'inactive');
    await expect(KeyRing.fromFiles('ES256', [{ kid: 'x', privateKeyFile: file, active: false }])).rejects.toThrow();
  });

  it('refuses a key file of another algorithm than configured', async () => {
    const file = await keyFile('ES256', 'wrong-alg');
    await expect(KeyRing.fromFiles('RS256', [{ kid: 'x', privateKeyFile: file, active: true }])).rejects.toThrow();
  });

  it('dates each key by its file (createdAt = the file modification time), for the admin console', async () => {
    const file = await keyFile('ES256', 'dated');
    utimesSync(file, new Date('2026-03-01T12:00:00Z'), new Date('2026-03-01T12:00:00Z'));
    const ring = await KeyRing.fromFiles('ES256', [{ kid: 'dated', privateKeyFile: file, active: true }]);
    expect(new Date(ring.signer.createdAt).toISOString()).toBe('2026-03-01T12:00:00.000Z');
    const generated = await KeyRing.generate('ES256');
    expect(Math.abs(generated.signer.createdAt - Date.now())).toBeLessThan(5_000);
  });
});

describe('KeyRing.generate (dev mode)', () => {
  it('is marked generated and publishes a JWKS entry with kid/alg/use and no private part', async () => {
    const ring = await KeyRing.generate('ES256');
    expect(ring.hasGeneratedKeys).toBe(true);
    const jwk = ring.jwks().keys[0]!;
    expect(jwk).toMatchObject({ kid: ring.signer.kid, alg: 'ES256', use: 'sig', kty: 'EC', crv: 'P-256' });
    for (const m of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(m);
  });

  it('two generated rings do not accept each other\'s tokens', async () => {
    const a = new AccessTokens(await KeyRing.generate('ES256'), accessOptions());
    const b = new AccessTokens(await KeyRing.generate('ES256'), accessOptions());
    const { token } = await a.issue(CLAIMS, NOW);
    expect(await rejection(b.verify(token, NOW))).toBeInstanceOf(InvalidToken);
  });
});
