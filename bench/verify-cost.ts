// Token CPU per algorithm: one jose verify vs mlgate's verified-token cache, and one access-token signature (the
// part of every login and refresh that no store or cache can remove).
import { generateKeyPair, exportPKCS8, SignJWT } from 'jose';
import { createPrivateKey, sign as nodeSign, subtle } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessTokens, KeyRing, type SigningAlgorithm } from '../src/tokens/index.ts';

export async function verifyCost(): Promise<Array<{ alg: SigningAlgorithm; uncachedUs: number; cachedUs: number; issueUs: number }>> {
  const out: Array<{ alg: SigningAlgorithm; uncachedUs: number; cachedUs: number; issueUs: number }> = [];
  const dir = mkdtempSync(join(tmpdir(), 'mlgate-verify-'));
  try {
    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      const { privateKey } = await generateKeyPair(alg, { extractable: true });
      const file = join(dir, `${alg}.pem`);
      writeFileSync(file, await exportPKCS8(privateKey));
      const keys = await KeyRing.fromFiles(alg, [{ kid: alg, privateKeyFile: file, active: true }]);
      const opts = { issuer: 'mlgate', audience: 'mlserver', ttlSeconds: 3600, clockToleranceSeconds: 30 };
      const uncached = new AccessTokens(keys, { ...opts, cacheSize: 0 });
      const cached = new AccessTokens(keys, { ...opts, cacheSize: 1000 });
      const now = Date.now();
      const tokens: string[] = [];
      for (let i = 0; i < 200; i++) tokens.push((await uncached.issue({ sub: `u${i}`, name: 'u', roles: ['Reader'], idp: 'bench', sid: `s${i}` }, now)).token);
      const n1 = alg === 'RS256' ? 1000 : 2000;
      for (let i = 0; i < 100; i++) await uncached.verify(tokens[i % tokens.length]!, now); // warm-up
      let t0 = performance.now();
      for (let i = 0; i < n1; i++) await uncached.verify(tokens[i % tokens.length]!, now);
      const uncachedUs = ((performance.now() - t0) * 1000) / n1;
      for (const t of tokens) await cached.verify(t, now);
      const n2 = 200_000;
      t0 = performance.now();
      for (let i = 0; i < n2; i++) await cached.verify(tokens[i % tokens.length]!, now);
      const cachedUs = ((performance.now() - t0) * 1000) / n2;
      // CPU, not wall time: WebCrypto signs on the libuv pool, 32 at a time as under refresh load.
      const n3 = alg === 'RS256' ? 320 : 3200;
      const c0 = process.cpuUsage();
      for (let i = 0; i < n3 / 32; i++) await Promise.all(Array.from({ length: 32 }, (_, j) => uncached.issue({ sub: `u${j}`, name: 'u', roles: ['Reader'], idp: 'bench', sid: `s${i}` }, now)));
      const c = process.cpuUsage(c0);
      out.push({ alg, uncachedUs, cachedUs, issueUs: (c.user + c.system) / n3 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export interface SignLayer { layer: string; us: number }

/**
 * Where one ES256 access-token signature's CPU goes, layer by layer (same key, same bytes, one core, 32 at a time).
 * jose v6 signs through WebCrypto only, which asks OpenSSL for the raw r||s form (P1363); node:crypto's DER form
 * is shown for comparison, not used: converting signatures by hand is the JWT code mlgate must not write.
 */
export async function es256SignLayers(): Promise<SignLayer[]> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const keyObject = createPrivateKey(await exportPKCS8(privateKey));
  const data = new TextEncoder().encode(`${'e'.repeat(36)}.${'p'.repeat(300)}`);
  const cpuPerOp = async (n: number, op: () => unknown): Promise<number> => {
    for (let i = 0; i < 100; i++) await op();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n / 32; i++) await Promise.all(Array.from({ length: 32 }, op));
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  const n = 3200;
  return [
    { layer: 'node:crypto sign, DER signature', us: await cpuPerOp(n, () => nodeSign('sha256', data, keyObject)) },
    { layer: 'node:crypto sign, P1363 signature (r and s side by side, what JWS needs)', us: await cpuPerOp(n, () => nodeSign('sha256', data, { key: keyObject, dsaEncoding: 'ieee-p1363' })) },
    { layer: 'crypto.subtle.sign ECDSA P-256 (WebCrypto, P1363)', us: await cpuPerOp(n, () => subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, data)) },
    { layer: 'jose SignJWT ES256 (WebCrypto + claims + base64url)', us: await cpuPerOp(n, () => new SignJWT({ sub: 'u', roles: ['Reader'] }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuedAt().setExpirationTime('1h').sign(privateKey)) },
  ];
}

if (process.argv[1] === import.meta.filename) {
  for (const l of await es256SignLayers()) console.log(`ES256 ${l.layer}: ${l.us.toFixed(1)} us CPU/op`);
  for (const r of await verifyCost()) console.log(`${r.alg}: jose verify ${r.uncachedUs.toFixed(1)} us/op, cached ${r.cachedUs.toFixed(2)} us/op, issue (sign) ${r.issueUs.toFixed(1)} us CPU/op`);
}
