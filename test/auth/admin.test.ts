import { beforeAll, describe, it, expect } from 'vitest';
import { AdminProvider, hashPassword } from '../../src/auth/index.ts';
import { InvalidCredentials, InvalidRefreshToken } from '../../src/errors.ts';

const PASSWORD = 'correct horse battery staple';
let hash: string;
let admin: AdminProvider;

beforeAll(async () => {
  hash = await hashPassword(PASSWORD); // argon2 is slow: once per file
  admin = new AdminProvider({ username: 'admin', passwordHash: hash });
});

describe('hashPassword', () => {
  it('makes an argon2id hash that does not contain the password', () => {
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(hash).not.toContain(PASSWORD);
  });
});

describe('AdminProvider', () => {
  it('verifies the configured username and password as the admin identity', async () => {
    const now = 1_760_000_000_000;
    const id = await admin.verify('admin', PASSWORD, now);
    expect(id).toEqual({ subject: 'admin', displayName: 'admin', groups: [], provider: 'admin', authTime: now });
    expect(admin.name).toBe('admin');
  });

  it('a wrong password for the admin is InvalidCredentials (401)', async () => {
    for (const wrong of ['', `${PASSWORD} `]) {
      const err = await admin.verify('admin', wrong, 0).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidCredentials);
      expect((err as InvalidCredentials).status).toBe(401);
      expect((err as InvalidCredentials).code).toBe('invalid_credentials');
    }
  });

  it('does not know other usernames (null: the next provider is asked), even with the admin password', async () => {
    expect(await admin.verify('alice', PASSWORD, 0)).toBeNull();
    expect(await admin.verify('Admin', PASSWORD, 0)).toBeNull();
    expect(await admin.verify('', PASSWORD, 0)).toBeNull();
  });

  it('revalidates the admin on refresh, and ends a session of a renamed admin', async () => {
    const id = { subject: 'admin', displayName: 'admin', groups: [], provider: 'admin', authTime: 1 };
    await expect(admin.revalidate(id)).resolves.toEqual(id);
    const renamed = new AdminProvider({ username: 'root', passwordHash: hash });
    await expect(renamed.revalidate(id)).rejects.toBeInstanceOf(InvalidRefreshToken);
  });
});
