import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, it, expect } from 'vitest';
import { DirectoryUnavailable, InvalidRefreshToken } from '../../src/errors.ts';
import { MemoryTokenStore } from '../../src/store/index.ts';
import type { IdentitySnapshot } from '../../src/store/index.ts';
import { AccessTokens, KeyRing, SessionService, hashRefreshToken } from '../../src/tokens/index.ts';
import type { SessionHooks, SessionOptions, TokenResponse } from '../../src/tokens/index.ts';
import { accessOptions, rejection } from './helpers.ts';

const T0 = 1_760_000_000_000;
const DAY_S = 86_400;

const alice: IdentitySnapshot = {
  subject: 'alice',
  displayName: 'Alice Example',
  email: 'alice@example.test',
  groups: ['stats'],
  provider: 'ldap',
  authTime: T0,
};

let ring: KeyRing;
beforeAll(async () => {
  ring = await KeyRing.generate('ES256');
});

const stores: MemoryTokenStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function setup(opts: Partial<SessionOptions> = {}, hooks: Partial<SessionHooks> = {}) {
  const store = new MemoryTokenStore({ revocationTtlMs: 3_630_000 });
  stores.push(store);
  const access = new AccessTokens(ring, accessOptions());
  const audit: { event: string; fields: Record<string, unknown> }[] = [];
  const sessions = new SessionService(
    store,
    access,
    {
      refreshIdleTtlSeconds: 14 * DAY_S,
      refreshMaxLifetimeSeconds: 90 * DAY_S,
      reuseGraceSeconds: 0,
      graceKey: randomBytes(32),
      ...opts,
    },
    {
      rolesOf: () => ['Contributor'],
      revalidate: async (i) => i,
      audit: (event, fields) => audit.push({ event, fields }),
      ...hooks,
    },
  );
  return { store, access, sessions, audit };
}

async function expectRefreshRejected(p: Promise<unknown>): Promise<InvalidRefreshToken> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(InvalidRefreshToken);
  const e = err as InvalidRefreshToken;
  expect(e.status).toBe(401);
  expect(e.code).toBe('invalid_refresh_token');
  return e;
}

describe('hashRefreshToken', () => {
  it('is the SHA-256 of the token in base64url: tokens stored by an earlier version are still found', () => {
    for (const token of [randomBytes(32).toString('base64url'), 'A'.repeat(43)]) {
      expect(hashRefreshToken(token)).toBe(createHash('sha256').update(token).digest('base64url'));
    }
    expect(hashRefreshToken('A'.repeat(43))).not.toBe(hashRefreshToken(`${'A'.repeat(42)}B`));
  });
});

describe('SessionService.login', () => {
  it('answers exactly the ML Server shape, with numbers for expires_in/expires_on', async () => {
    const { sessions, access } = setup();
    const now = T0 + 123; // not on a whole second
    const res = await sessions.login(alice, '203.0.113.7', now);
    expect(Object.keys(res).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(res.token_type).toBe('Bearer');
    expect(res.expires_in).toBe(3600);
    expect(res.expires_on).toBe(Math.floor(now / 1000) + 3600);
    expect(typeof res.access_token).toBe('string');
    expect(res.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    const v = await access.verify(res.access_token, now);
    expect(v).toMatchObject({ sub: 'alice', name: 'Alice Example', roles: ['Contributor'], idp: 'ldap', exp: res.expires_on });
  });

  it('stores only the hash of the refresh token, and a family per login', async () => {
    const { sessions, store, access } = setup();
    const a = await sessions.login(alice, undefined, T0);
    const b = await sessions.login(alice, undefined, T0 + 1000);
    expect(a.refresh_token).not.toBe(b.refresh_token);
    expect(await store.getRefresh(a.refresh_token, T0)).toBeNull();
    const rec = await store.getRefresh(hashRefreshToken(a.refresh_token), T0);
    expect(rec).toMatchObject({ identity: alice, familyStartedAt: T0 });
    expect((await access.verify(a.access_token, T0)).sid).toBe(rec!.familyId);
    expect((await store.listFamilies('alice', T0 + 1000)).length).toBe(2);
  });

  it('refuses a user the role hook refuses, and starts no family', async () => {
    const { sessions, store } = setup({}, {
      rolesOf: () => {
        throw new Error('no role');
      },
    });
    await expect(sessions.login(alice, undefined, T0)).rejects.toThrow('no role');
    expect(await store.listFamilies('alice', T0)).toEqual([]);
  });
});

describe('SessionService.refresh (strict, as ML Server)', () => {
  it('returns the same shape with a NEW refresh token; the old one then fails and revokes the family', async () => {
    const { sessions, store, access, audit } = setup();
    const login = await sessions.login(alice, undefined, T0);
    const sid = (await access.verify(login.access_token, T0)).sid;

    const r1 = await sessions.refresh(login.refresh_token, undefined, T0 + 60_000);
    expect(Object.keys(r1).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(r1.token_type).toBe('Bearer');
    expect(r1.refresh_token).not.toBe(login.refresh_token);
    expect(r1.access_token).not.toBe(login.access_token);
    expect(r1.expires_on).toBe(Math.floor((T0 + 60_000) / 1000) + 3600);
    expect((await access.verify(r1.access_token, T0 + 60_000)).sid).toBe(sid);

    await expectRefreshRejected(sessions.refresh(login.refresh_token, undefined, T0 + 120_000));
    // the whole family is gone: the newest refresh token too, and its access tokens through the revocation view
    await expectRefreshRejected(sessions.refresh(r1.refresh_token, undefined, T0 + 130_000));
    const revs = await store.listRevocations(T0 + 130_000);
    expect(revs).toContainEqual(expect.objectContaining({ kind: 'family', familyId: sid }));
    expect(audit.map((a) => a.event)).toContain('refresh.reuse_detected');
  });

  it('a chain of refreshes keeps working while each token is used once', async () => {
    const { sessions } = setup();
    let res: TokenResponse = await sessions.login(alice, undefined, T0);
    const seen = new Set([res.refresh_token]);
    for (let i = 1; i <= 10; i++) {
      res = await sessions.refresh(res.refresh_token, undefined, T0 + i * 3_600_000);
      expect(seen.has(res.refresh_token)).toBe(false);
      seen.add(res.refresh_token);
    }
  });

  it('50 concurrent refreshes of one token: exactly one succeeds, and its refresh token is dead afterwards', async () => {
    const { sessions, audit } = setup();
    const login = await sessions.login(alice, undefined, T0);
    const now = T0 + 60_000;
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => sessions.refresh(login.refresh_token, undefined, now)),
    );
    const ok = results.filter((r): r is PromiseFulfilledResult<TokenResponse> => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InvalidRefreshToken);
    }
    await expectRefreshRejected(sessions.refresh(ok[0]!.value.refresh_token, undefined, now + 1_000));
    expect(audit.filter((a) => a.event === 'refresh.ok')).toHaveLength(1);
  });

  it('the idle lifetime: a refresh token unused for longer than refreshIdleTtlSeconds is refused', async () => {
    const { sessions } = setup({ refreshIdleTtlSeconds: 600, refreshMaxLifetimeSeconds: 3600 });
    const login = await sessions.login(alice, undefined, T0);
    const r = await sessions.refresh(login.refresh_token, undefined, T0 + 599_000);
    await expectRefreshRejected(sessions.refresh(r.refresh_token, undefined, T0 + 599_000 + 600_000));
  });

  it('the family lifetime: refreshing on time does not extend a family past refreshMaxLifetimeSeconds', async () => {
    const { sessions } = setup({ refreshIdleTtlSeconds: 600, refreshMaxLifetimeSeconds: 1500 });
    let res = await sessions.login(alice, undefined, T0);
    for (const t of [500, 1000, 1450]) res = await sessions.refresh(res.refresh_token, undefined, T0 + t * 1000);
    await expectRefreshRejected(sessions.refresh(res.refresh_token, undefined, T0 + 1500 * 1000));
  });

  it('a malformed refresh token is InvalidRefreshToken, never another error', async () => {
    const { sessions } = setup();
    for (const bad of ['', 'abc', 'x'.repeat(44), `${'A'.repeat(42)}=`, `${'A'.repeat(42)}+`, 'A'.repeat(10_000)]) {
      await expectRefreshRejected(sessions.refresh(bad, undefined, T0));
      await expectRefreshRejected(sessions.revoke(bad, T0));
    }
  });

  it('an unknown but well-formed refresh token is InvalidRefreshToken', async () => {
    const { sessions } = setup();
    await expectRefreshRejected(sessions.refresh(randomBytes(32).toString('base64url'), undefined, T0));
  });

  it('revalidate throwing InvalidRefreshToken ends the family', async () => {
    let disabled = false;
    const { sessions, store, access } = setup({}, {
      revalidate: async (i) => {
        if (disabled) throw new InvalidRefreshToken('user disabled');
        return i;
      },
    });
    const login = await sessions.login(alice, undefined, T0);
    const sid = (await access.verify(login.access_token, T0)).sid;
    disabled = true;
    await expectRefreshRejected(sessions.refresh(login.refresh_token, undefined, T0 + 1000));
    disabled = false;
    await expectRefreshRejected(sessions.refresh(login.refresh_token, undefined, T0 + 2000));
    expect(await store.listRevocations(T0 + 2000)).toContainEqual(expect.objectContaining({ kind: 'family', familyId: sid }));
  });

  it('a directory outage during refresh fails that refresh but keeps the session', async () => {
    let down = true;
    const { sessions } = setup({}, {
      revalidate: async (i) => {
        if (down) throw new DirectoryUnavailable('ldap down');
        return i;
      },
    });
    const login = await sessions.login(alice, undefined, T0);
    expect(await rejection(sessions.refresh(login.refresh_token, undefined, T0 + 1000))).toBeInstanceOf(DirectoryUnavailable);
    down = false;
    const r = await sessions.refresh(login.refresh_token, undefined, T0 + 2000);
    expect(r.refresh_token).not.toBe(login.refresh_token);
  });

  it('refreshed access tokens carry the revalidated identity (new groups -> new roles)', async () => {
    const { sessions, access } = setup({}, {
      revalidate: async (i) => ({ ...i, displayName: 'Alice Renamed', groups: ['admins'] }),
      rolesOf: (i) => (i.groups.includes('admins') ? ['Owner'] : ['Contributor']),
    });
    const login = await sessions.login(alice, undefined, T0);
    expect((await access.verify(login.access_token, T0)).roles).toEqual(['Contributor']);
    const r = await sessions.refresh(login.refresh_token, undefined, T0 + 1000);
    expect(await access.verify(r.access_token, T0 + 1000)).toMatchObject({ roles: ['Owner'], name: 'Alice Renamed' });
  });
});

describe('SessionService.refresh with reuseGraceSeconds > 0', () => {
  it('50 concurrent refreshes all succeed with the SAME new refresh token, which then works', async () => {
    const { sessions, audit } = setup({ reuseGraceSeconds: 10 });
    const login = await sessions.login(alice, undefined, T0);
    const now = T0 + 60_000;
    const results = await Promise.all(Array.from({ length: 50 }, () => sessions.refresh(login.refresh_token, undefined, now)));
    const tokens = new Set(results.map((r) => r.refresh_token));
    expect(tokens.size).toBe(1);
    const [successor] = [...tokens];
    expect(successor).not.toBe(login.refresh_token);
    for (const r of results) expect(Object.keys(r).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(audit.filter((a) => a.event === 'refresh.ok')).toHaveLength(1);
    expect(audit.filter((a) => a.event === 'refresh.replay_within_grace')).toHaveLength(49);
    const next = await sessions.refresh(successor!, undefined, now + 1_000);
    expect(next.refresh_token).not.toBe(successor);
  });

  it('a retry within the window gets the same successor; after the window reuse revokes the family', async () => {
    const { sessions, store } = setup({ reuseGraceSeconds: 10 });
    const login = await sessions.login(alice, undefined, T0);
    const r1 = await sessions.refresh(login.refresh_token, undefined, T0 + 60_000);
    const retry = await sessions.refresh(login.refresh_token, undefined, T0 + 69_000);
    expect(retry.refresh_token).toBe(r1.refresh_token);

    await expectRefreshRejected(sessions.refresh(login.refresh_token, undefined, T0 + 71_000));
    await expectRefreshRejected(sessions.refresh(r1.refresh_token, undefined, T0 + 72_000));
    expect(await store.listFamilies('alice', T0 + 72_000)).toEqual([]);
  });

  it('never keeps the successor in clear in the store', async () => {
    const { sessions, store } = setup({ reuseGraceSeconds: 10 });
    const login = await sessions.login(alice, undefined, T0);
    const r1 = await sessions.refresh(login.refresh_token, undefined, T0 + 1000);
    const consumed = await store.getRefresh(hashRefreshToken(login.refresh_token), T0 + 1000);
    expect(consumed?.usedAt).toBe(T0 + 1000);
    expect(JSON.stringify(consumed)).not.toContain(r1.refresh_token);
  });
});

describe('SessionService.revoke', () => {
  it('ends the family: its refresh tokens fail and its access tokens are listed as revoked', async () => {
    const { sessions, store, access, audit } = setup();
    const login = await sessions.login(alice, undefined, T0);
    const other = await sessions.login(alice, undefined, T0);
    const sid = (await access.verify(login.access_token, T0)).sid;
    await sessions.revoke(login.refresh_token, T0 + 1000);
    await expectRefreshRejected(sessions.refresh(login.refresh_token, undefined, T0 + 2000));
    expect(await store.listRevocations(T0 + 2000)).toContainEqual(expect.objectContaining({ kind: 'family', familyId: sid }));
    expect(audit.map((a) => a.event)).toContain('revoke.refresh_token');
    // another session of the same user is untouched
    await expect(sessions.refresh(other.refresh_token, undefined, T0 + 2000)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('an unknown or already revoked token is InvalidRefreshToken (401), never a crash', async () => {
    const { sessions } = setup();
    const login = await sessions.login(alice, undefined, T0);
    await sessions.revoke(login.refresh_token, T0 + 1000);
    await expectRefreshRejected(sessions.revoke(login.refresh_token, T0 + 2000));
    await expectRefreshRejected(sessions.revoke(randomBytes(32).toString('base64url'), T0 + 2000));
  });
});
