// The local `admin` account: one argon2id hash from config, always role Owner.
import argon2 from 'argon2';
import { InvalidCredentials, InvalidRefreshToken } from '../errors.ts';
import type { CredentialProvider, Identity } from './types.ts';

export const ADMIN_PROVIDER = 'admin';

export class AdminProvider implements CredentialProvider {
  readonly name = ADMIN_PROVIDER;
  private readonly username: string;
  private readonly passwordHash: string;

  /** The subject of the local admin account: no other provider may hand out the same one (see CredentialChain). */
  get subject(): string {
    return this.username;
  }

  constructor(opts: { username: string; passwordHash: string }) {
    this.username = opts.username;
    this.passwordHash = opts.passwordHash;
  }

  async verify(username: string, password: string, now: number): Promise<Identity | null> {
    if (username !== this.username) return null;
    // argon2.verify compares the derived hash in constant time.
    if (!(await argon2.verify(this.passwordHash, password))) throw new InvalidCredentials('admin: wrong password');
    return { subject: this.username, displayName: this.username, groups: [], provider: ADMIN_PROVIDER, authTime: now };
  }

  async revalidate(identity: Identity): Promise<Identity> {
    if (identity.subject !== this.username) throw new InvalidRefreshToken('admin account renamed or disabled');
    return identity;
  }
}

export async function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}
