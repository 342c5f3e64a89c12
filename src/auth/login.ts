// Credential checks across providers, with one answer for unknown users and wrong passwords.
import argon2 from 'argon2';
import { Forbidden, InvalidCredentials, InvalidRefreshToken, TooManyRequests } from '../errors.ts';
import { ADMIN_PROVIDER, AdminProvider } from './admin.ts';
import type { CredentialProvider, Identity } from './types.ts';

/** Bounds concurrent password checks: each argon2 verify holds 64 MiB and a libuv thread. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly limit: number;
  private readonly maxQueue: number;
  constructor(limit: number, maxQueue: number) {
    this.limit = limit;
    this.maxQueue = maxQueue;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.maxQueue) throw new TooManyRequests(1, 'password check queue full');
      // The finishing run hands its slot straight to us, so a newcomer cannot slip in between.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class CredentialChain {
  private readonly providers: readonly CredentialProvider[];
  private readonly gate: Gate;
  private dummyHash: Promise<string> | undefined;

  /** The local admin's subject, lower-cased, while that account is enabled. */
  private readonly reservedSubject: string | undefined;

  constructor(providers: readonly CredentialProvider[], opts: { maxConcurrent: number }) {
    this.providers = providers;
    this.reservedSubject = providers.find((p): p is AdminProvider => p instanceof AdminProvider)?.subject.toLowerCase();
    this.gate = new Gate(opts.maxConcurrent, opts.maxConcurrent * 64);
  }

  async verify(username: string, password: string, now = Date.now()): Promise<Identity> {
    return this.gate.run(async () => {
      for (const p of this.providers) {
        let identity: Identity | null;
        try {
          identity = await p.verify(username, password, now);
        } catch (err) {
          // A refused directory bind is quick; an unknown user costs an argon2 check below. Spend the same
          // here, so timing does not tell a known user with a wrong password from an unknown one.
          if (err instanceof InvalidCredentials && p.name !== ADMIN_PROVIDER) await this.spendHash(password);
          throw err;
        }
        if (identity) {
          // Ownership, revocation and audit go by subject: a directory user named like the local admin account would
          // be taken for it (its services, its revocations). Refused until the operator renames one of them.
          if (identity.provider !== ADMIN_PROVIDER && identity.subject.toLowerCase() === this.reservedSubject) {
            throw new Forbidden(
              'This account name is reserved for the gateway\'s local admin account; ask the operator to rename or disable one of them.',
              'subject_reserved',
              `${identity.provider} user "${identity.subject}" has the local admin account's subject`,
            );
          }
          return identity;
        }
      }
      // Unknown user: spend the same work as a wrong password so timing does not tell them apart.
      await this.spendHash(password);
      throw new InvalidCredentials('no provider knows this user');
    });
  }

  private async spendHash(password: string): Promise<void> {
    this.dummyHash ??= argon2.hash('mlgate-unknown-user', { type: argon2.argon2id });
    await argon2.verify(await this.dummyHash, password);
  }

  async revalidate(identity: Identity, now = Date.now()): Promise<Identity> {
    const p = this.providers.find((x) => x.name === identity.provider);
    if (!p) throw new InvalidRefreshToken(`provider ${identity.provider} is no longer enabled`);
    return p.revalidate(identity, now);
  }
}
