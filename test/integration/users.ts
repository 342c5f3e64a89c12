// Non-admin users for integration tests: a CredentialProvider of our own (no directory server), whose groups the
// test can change between login and refresh, and the role mapping that goes with it.
import { InvalidCredentials, InvalidRefreshToken } from '../../src/errors.ts';
import type { CredentialProvider, Identity } from '../../src/auth/index.ts';
import { request, type Stack } from './setup.ts';

export const ROLES = { Owner: ['owners'], Contributor: ['contributors'], Reader: ['readers'] };
export const PASSWORD = 'test-user-pw-1';

export class TestDirectory implements CredentialProvider {
  readonly name = 'test-directory';
  /** username -> groups; edit it to move a user between roles (seen at the next login or refresh). */
  readonly groups = new Map<string, string[]>();

  constructor(users: Record<string, string[]>) {
    for (const [user, groups] of Object.entries(users)) this.groups.set(user, groups);
  }

  async verify(username: string, password: string, now: number): Promise<Identity | null> {
    const groups = this.groups.get(username);
    if (groups === undefined) return null;
    if (password !== PASSWORD) throw new InvalidCredentials(`${this.name}: wrong password`);
    return { subject: username, displayName: username, groups: [...groups], provider: this.name, authTime: now };
  }

  async revalidate(identity: Identity): Promise<Identity> {
    const groups = this.groups.get(identity.subject);
    if (groups === undefined) throw new InvalidRefreshToken(`${this.name}: user removed`);
    return { ...identity, groups: [...groups] };
  }
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
}

export async function login(stack: Stack, username: string): Promise<Tokens> {
  const r = await request(stack, 'POST', '/login', { json: { username, password: PASSWORD } });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${r.text}`);
  return r.json();
}

/** The role claim of an access token (decoded, not verified: the gateway verified it). */
export function roleIn(accessToken: string): string[] {
  return JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()).roles;
}
