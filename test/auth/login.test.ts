import { beforeAll, describe, it, expect } from 'vitest';
import { AdminProvider, CredentialChain, hashPassword } from '../../src/auth/index.ts';
import type { CredentialProvider, Identity } from '../../src/auth/index.ts';
import { DirectoryUnavailable, GatewayError, InvalidCredentials, InvalidRefreshToken, TooManyRequests } from '../../src/errors.ts';

const PASSWORD = 'correct horse battery staple';
let admin: AdminProvider;

beforeAll(async () => {
  admin = new AdminProvider({ username: 'admin', passwordHash: await hashPassword(PASSWORD) }); // once per file
});

const identity = (subject: string, provider: string, now: number): Identity => ({
  subject,
  displayName: subject,
  groups: [],
  provider,
  authTime: now,
});

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

/** A provider that knows `users`, and blocks each check until released (or for `delayMs`). */
class SlowProvider implements CredentialProvider {
  readonly name: string;
  active = 0;
  maxActive = 0;
  calls: string[] = [];
  private readonly waiting: Array<() => void> = [];
  private readonly delayMs: number | undefined;
  private readonly users: Set<string>;
  constructor(name: string, users: string[], delayMs?: number) {
    this.name = name;
    this.users = new Set(users);
    this.delayMs = delayMs;
  }
  async verify(username: string, password: string, now: number): Promise<Identity | null> {
    this.calls.push(username);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs !== undefined) await new Promise((r) => setTimeout(r, this.delayMs));
      else await new Promise<void>((r) => this.waiting.push(r));
    } finally {
      this.active--;
    }
    if (!this.users.has(username)) return null;
    if (password !== 'pw') throw new InvalidCredentials(`${this.name}: wrong password`);
    return identity(username, this.name, now);
  }
  async revalidate(i: Identity): Promise<Identity> {
    return i;
  }
  releaseOne(): boolean {
    const r = this.waiting.shift();
    r?.();
    return r !== undefined;
  }
  get queued(): number {
    return this.waiting.length;
  }
}

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

describe('CredentialChain: one answer for unknown users and wrong passwords', () => {
  it('unknown user and wrong password give errors with identical class, status, code and message', async () => {
    const chain = new CredentialChain([admin], { maxConcurrent: 2 });
    const unknown = await failure(chain.verify('nobody', PASSWORD));
    const wrong = await failure(chain.verify('admin', 'not the password'));
    expect(unknown).toBeInstanceOf(InvalidCredentials);
    expect(wrong).toBeInstanceOf(InvalidCredentials);
    expect(unknown.constructor).toBe(wrong.constructor);
    expect(unknown.status).toBe(401);
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.code).toBe(wrong.code);
    expect(unknown.message).toBe(wrong.message);
    expect(unknown.headers).toEqual(wrong.headers);
    // the message names neither the user nor which half was wrong
    expect(unknown.message).not.toMatch(/nobody|admin|unknown|exist/i);
  });

  it('an unknown user costs a password check too (no fast path that tells them apart)', async () => {
    const chain = new CredentialChain([admin], { maxConcurrent: 1 });
    await failure(chain.verify('warm-up', 'x')); // first unknown user also makes the dummy hash
    const time = async (user: string) => {
      const t = performance.now();
      await failure(chain.verify(user, 'nope'));
      return performance.now() - t;
    };
    const best = (xs: number[]) => Math.min(...xs);
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 2; i++) {
      unknown.push(await time(`ghost-${i}`));
      wrong.push(await time('admin'));
    }
    expect(best(unknown)).toBeGreaterThan(best(wrong) * 0.3);
    expect(best(wrong)).toBeGreaterThan(best(unknown) * 0.3);
  });

  it('the right password returns the identity', async () => {
    const chain = new CredentialChain([admin], { maxConcurrent: 1 });
    await expect(chain.verify('admin', PASSWORD, 42)).resolves.toMatchObject({ subject: 'admin', provider: 'admin', authTime: 42 });
  });
});

describe('CredentialChain: provider order', () => {
  it('asks providers in order; the first that knows the user decides', async () => {
    const ldap = new SlowProvider('ldap', ['alice', 'admin'], 0);
    const chain = new CredentialChain([admin, ldap], { maxConcurrent: 2 });
    await expect(chain.verify('alice', 'pw')).resolves.toMatchObject({ subject: 'alice', provider: 'ldap' });
    // admin knows 'admin': a wrong admin password is final, ldap is not asked
    ldap.calls = [];
    await failure(chain.verify('admin', 'pw'));
    expect(ldap.calls).toEqual([]);
  });

  it('a directory outage is a 503, not a 401', async () => {
    const down: CredentialProvider = {
      name: 'ldap',
      verify: async () => {
        throw new DirectoryUnavailable('ldap unreachable');
      },
      revalidate: async (i) => i,
    };
    const chain = new CredentialChain([admin, down], { maxConcurrent: 1 });
    const err = await failure(chain.verify('alice', 'pw'));
    expect(err).toBeInstanceOf(DirectoryUnavailable);
    expect(err.status).toBe(503);
  });

  it('revalidate goes to the provider that issued the identity; a provider no longer enabled ends the session', async () => {
    const ldap = new SlowProvider('ldap', ['alice'], 0);
    const chain = new CredentialChain([admin, ldap], { maxConcurrent: 1 });
    const alice = identity('alice', 'ldap', 1);
    await expect(chain.revalidate(alice)).resolves.toEqual(alice);
    await expect(chain.revalidate(identity('bob', 'aad', 1))).rejects.toBeInstanceOf(InvalidRefreshToken);
  });
});

describe('CredentialChain: the local admin subject is reserved', () => {
  it('a directory user whose subject is the local admin (any case) is refused with 403 subject_reserved; the admin and others log in', async () => {
    const directory = new SlowProvider('ldap', ['Admin', 'ADMIN', 'carol'], 0);
    const chain = new CredentialChain([admin, directory], { maxConcurrent: 2 });
    for (const name of ['Admin', 'ADMIN']) {
      const err = await failure(chain.verify(name, 'pw'));
      expect([err.status, err.code], name).toEqual([403, 'subject_reserved']);
    }
    expect((await chain.verify('admin', PASSWORD)).provider).toBe('admin');
    expect((await chain.verify('carol', 'pw')).subject).toBe('carol');
    // Without the local admin account enabled, nothing is reserved.
    expect((await new CredentialChain([directory], { maxConcurrent: 2 }).verify('Admin', 'pw')).subject).toBe('Admin');
  });
});

describe('CredentialChain: concurrency cap', () => {
  it('maxConcurrent 1: two verifies do not overlap, and both complete', async () => {
    const slow = new SlowProvider('slow', ['a', 'b'], 50);
    const chain = new CredentialChain([slow], { maxConcurrent: 1 });
    const t = performance.now();
    const [a, b] = await Promise.all([chain.verify('a', 'pw'), chain.verify('b', 'pw')]);
    expect(a.subject).toBe('a');
    expect(b.subject).toBe('b');
    expect(slow.maxActive).toBe(1);
    expect(performance.now() - t).toBeGreaterThanOrEqual(95);
  });

  it('maxConcurrent 2: at most two at once among eight, in arrival order', async () => {
    const slow = new SlowProvider('slow', ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']);
    const chain = new CredentialChain([slow], { maxConcurrent: 2 });
    const all = Promise.all(Array.from({ length: 8 }, (_, i) => chain.verify(`u${i}`, 'pw')));
    await tick(5);
    expect(slow.active).toBe(2);
    expect(slow.calls).toEqual(['u0', 'u1']);
    while (slow.calls.length < 8 || slow.queued > 0) {
      slow.releaseOne();
      await tick();
    }
    expect((await all).map((i) => i.subject)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']);
    expect(slow.calls).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']);
    expect(slow.maxActive).toBe(2);
  });

  it('a failing check frees its slot', async () => {
    const slow = new SlowProvider('slow', ['a', 'b'], 1);
    const chain = new CredentialChain([slow], { maxConcurrent: 1 });
    await failure(chain.verify('a', 'wrong'));
    await expect(chain.verify('b', 'pw')).resolves.toMatchObject({ subject: 'b' });
  });

  it('a full waiting line is answered 429 with Retry-After, and the line still drains', async () => {
    const slow = new SlowProvider('slow', Array.from({ length: 70 }, (_, i) => `u${i}`));
    const chain = new CredentialChain([slow], { maxConcurrent: 1 });
    const settled = Array.from({ length: 70 }, (_, i) =>
      chain.verify(`u${i}`, 'pw').then(
        () => 'ok' as const,
        (e: unknown) => e,
      ),
    );
    await tick(5);
    expect(slow.active).toBe(1);
    for (let i = 0; i < 200 && (slow.queued > 0 || slow.active > 0); i++) {
      slow.releaseOne();
      await tick();
    }
    const results = await Promise.all(settled);
    const rejected = results.filter((r) => r !== 'ok');
    expect(rejected.length).toBeGreaterThan(0);
    expect(results.filter((r) => r === 'ok').length).toBeGreaterThanOrEqual(60);
    for (const r of rejected) {
      expect(r).toBeInstanceOf(TooManyRequests);
      expect((r as TooManyRequests).status).toBe(429);
      expect(Number((r as TooManyRequests).headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    }
    expect(slow.maxActive).toBe(1);
  });

  // Regression: a finishing check once freed its slot before the woken waiter took it, so a caller arriving
  // in between ran too (two checks at once with maxConcurrent 1). The slot is now handed over directly.
  it('maxConcurrent 1 holds when a new check arrives while a waiter is being woken', async () => {
    let max = 0;
    for (let depth = 0; depth < 16; depth++) {
      const slow = new SlowProvider('slow', ['a', 'b', 'c']);
      const chain = new CredentialChain([slow], { maxConcurrent: 1 });
      const all: Promise<unknown>[] = [chain.verify('a', 'pw'), chain.verify('b', 'pw')];
      await tick(2);
      slow.releaseOne(); // a finishes; b is woken
      let p: Promise<void> = Promise.resolve();
      for (let k = 0; k < depth; k++) p = p.then(() => {});
      all.push(p.then(() => chain.verify('c', 'pw')));
      for (let i = 0; i < 20 && (slow.queued > 0 || slow.active > 0 || slow.calls.length < 3); i++) {
        await tick();
        slow.releaseOne();
      }
      await Promise.all(all);
      max = Math.max(max, slow.maxActive);
    }
    expect(max).toBe(1);
  });
});
