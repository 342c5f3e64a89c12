// CredentialProvider: one small interface for admin, ldap and aad.
import type { IdentitySnapshot } from '../store/index.ts';

export type Identity = IdentitySnapshot;

export interface CredentialProvider {
  readonly name: string;
  /**
   * null: this provider does not know the user (the next provider is asked).
   * Throws InvalidCredentials for a known user with a wrong password, DirectoryUnavailable when it cannot tell.
   */
  verify(username: string, password: string, now: number): Promise<Identity | null>;
  /** On refresh: the user as it is now. Throws InvalidRefreshToken when the user may no longer have a session. */
  revalidate(identity: Identity, now: number): Promise<Identity>;
  /** Releases connections (gateway shutdown). */
  close?(): Promise<void>;
}
