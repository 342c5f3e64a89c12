// Signing keys: PEM files in production (shared by every instance), generated at start in dev mode.
import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';

export type SigningAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
  active: boolean;
  /** True for a key made at start: refused in production. */
  generated: boolean;
  /** ms: when the key was made (generated) or its PEM file last written (shown by the admin console). */
  createdAt: number;
}

export interface KeyFile {
  kid: string;
  privateKeyFile: string;
  active: boolean;
}

export class KeyRing {
  readonly keys: readonly SigningKey[];
  readonly alg: SigningAlgorithm;
  readonly signer: SigningKey;
  readonly getVerificationKey: JWTVerifyGetKey;
  private readonly jwksDoc: { keys: JWK[] };

  private constructor(alg: SigningAlgorithm, keys: SigningKey[]) {
    const signer = keys.find((k) => k.active);
    if (!signer) throw new Error('no active signing key');
    this.alg = alg;
    this.keys = keys;
    this.signer = signer;
    this.jwksDoc = { keys: keys.map((k) => k.publicJwk) };
    // Only our own keys, looked up by kid; keys named by the token (jwk, jku, x5u) are never used.
    this.getVerificationKey = createLocalJWKSet(this.jwksDoc);
  }

  static async fromFiles(alg: SigningAlgorithm, files: readonly KeyFile[]): Promise<KeyRing> {
    const keys: SigningKey[] = [];
    for (const f of files) {
      const pem = readFileSync(f.privateKeyFile, 'utf8');
      const privateKey = await importPKCS8(pem, alg);
      const spki = createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
      const publicJwk = await exportJWK(await importSPKI(spki, alg, { extractable: true }));
      keys.push({ kid: f.kid, alg, privateKey, publicJwk: { ...publicJwk, kid: f.kid, alg, use: 'sig' }, active: f.active, generated: false, createdAt: Math.floor(statSync(f.privateKeyFile).mtimeMs) });
    }
    return new KeyRing(alg, keys);
  }

  static async generate(alg: SigningAlgorithm): Promise<KeyRing> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return new KeyRing(alg, [
      { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, active: true, generated: true, createdAt: Date.now() },
    ]);
  }

  jwks(): { keys: JWK[] } {
    return this.jwksDoc;
  }

  get hasGeneratedKeys(): boolean {
    return this.keys.some((k) => k.generated);
  }
}

/** PEM of a freshly generated key, for `mlgate gen-keys` and tests. */
export async function generatePrivateKeyPem(alg: SigningAlgorithm): Promise<string> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return exportPKCS8(privateKey);
}
