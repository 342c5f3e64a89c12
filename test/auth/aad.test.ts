// The aad provider against a real OIDC provider (oauth2-mock-server at Azure AD's paths, over HTTPS with the
// example CA) and a Graph stand-in: token checks, key rotation and outages, groups overage, password login, refresh.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { AadProvider, type AadOptions } from '../../src/auth/index.ts';
import { DirectoryUnavailable, Forbidden, InvalidCredentials, InvalidRefreshToken, InvalidToken } from '../../src/errors.ts';
import {
  AAD_APP_ID_URI,
  AAD_CLIENT_SECRET,
  AAD_NATIVE_APP,
  AAD_OTHER_TENANT,
  AAD_PASSWORD,
  AAD_WEB_APP,
  GROUP,
  claimsOf,
  hs256WithPublicKey,
  startAzureAd,
  tampered,
  unsignedCopy,
  type AadUser,
  type AzureAdStandIn,
} from '../integration/servers/azure-ad.ts';

let aad: AzureAdStandIn;
let alice: AadUser;
let bigGroups: AadUser;
const providers: AadProvider[] = [];

beforeAll(async () => {
  aad = await startAzureAd();
  alice = aad.addUser({ upn: 'alice@contoso.test', name: 'Alice Adams', groups: [GROUP.owners, GROUP.unrelated] });
  bigGroups = aad.addUser({ upn: 'olga@contoso.test', name: 'Olga Overage', groups: [GROUP.contributors, GROUP.unrelated], overage: true });
});
afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await aad?.close();
});
beforeEach(() => {
  for (const k of Object.keys(aad.mode) as (keyof typeof aad.mode)[]) aad.mode[k] = 'up';
});

function provider(over: Partial<AadOptions> = {}): AadProvider {
  const p = new AadProvider({
    authority: aad.authority,
    tenantId: aad.tenantId,
    audiences: [AAD_WEB_APP, AAD_APP_ID_URI],
    clientId: AAD_WEB_APP,
    clientSecret: AAD_CLIENT_SECRET,
    graphBaseUrl: aad.graphBaseUrl,
    acceptV1Issuer: true,
    acceptV2Issuer: true,
    v1IssuerBaseUrl: 'https://sts.windows.net',
    passwordLogin: true,
    clockToleranceSeconds: 60,
    jwksCacheMaxAgeSeconds: 3600,
    jwksCooldownSeconds: 0,
    groupsSecurityEnabledOnly: true,
    maxTokenLifetimeSeconds: 86_400,
    timeoutMs: 2_000,
    ca: readFileSync(aad.caFile),
    ...over,
  });
  providers.push(p);
  return p;
}

const now = () => Date.now();
const sec = () => Math.floor(Date.now() / 1000);

async function refused(p: Promise<unknown>): Promise<InvalidToken> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidToken);
  return err as InvalidToken;
}

describe('bearer tokens', () => {
  let p: AadProvider;
  beforeAll(() => {
    p = provider();
  });

  it('a v2 token for the web app is accepted: subject = oid, groups from the claim', async () => {
    const b = await p.verifyBearer(await aad.token(alice), now());
    expect(b.identity).toMatchObject({ subject: alice.oid, displayName: 'Alice Adams', email: 'alice@contoso.test', provider: 'aad', groups: [GROUP.owners, GROUP.unrelated] });
    expect(b.exp - b.iat).toBe(3600);
    expect(b.tokenId).toMatch(/^\w{22}$/);
  });

  it('a v1 token (what remoteLoginAAD gets: iss sts.windows.net, aud = App ID URI, appid) is accepted', async () => {
    const t = await aad.token(alice, { iss: aad.v1Issuer, aud: AAD_APP_ID_URI, azp: undefined, azpacr: undefined, appid: AAD_NATIVE_APP, upn: alice.upn, ver: '1.0' });
    expect((await p.verifyBearer(t, now())).identity.subject).toBe(alice.oid);
  });

  it('app role values come with the group ids', async () => {
    const carl = aad.addUser({ upn: 'carl@contoso.test', name: 'Carl', groups: [], roles: ['MLServer.Owner'] });
    expect((await p.verifyBearer(await aad.token(carl), now())).identity.groups).toEqual(['MLServer.Owner']);
  });

  it('each issuer form can be turned off', async () => {
    const v2only = provider({ acceptV1Issuer: false });
    const v1only = provider({ acceptV2Issuer: false });
    await refused(v2only.verifyBearer(await aad.token(alice, { iss: aad.v1Issuer }), now()));
    await refused(v1only.verifyBearer(await aad.token(alice), now()));
    expect((await v1only.verifyBearer(await aad.token(alice, { iss: aad.v1Issuer }), now())).identity.subject).toBe(alice.oid);
  });

  it.each([
    ['other tenant (iss and tid)', () => ({ iss: `https://sts.windows.net/${AAD_OTHER_TENANT}/`, tid: AAD_OTHER_TENANT }), /unexpected "iss"/],
    ['other tenant in tid only', () => ({ tid: AAD_OTHER_TENANT }), /tid .* is not the configured tenant/],
    ['other audience', () => ({ aud: '11111111-2222-4333-8444-555555555555' }), /unexpected "aud"/],
    ['Graph audience', () => ({ aud: 'https://graph.microsoft.com' }), /unexpected "aud"/],
    ['expired beyond the tolerance', () => ({ iat: sec() - 7200, nbf: sec() - 7200, exp: sec() - 61 }), /expired/],
    ['not yet valid beyond the tolerance', () => ({ nbf: sec() + 120 }), /"nbf" claim timestamp check failed/],
    ['no tid', () => ({ tid: undefined }), /missing required "tid"/],
    ['no oid', () => ({ oid: undefined }), /missing required "oid"/],
    ['an ID token (no azp/appid)', () => ({ azp: undefined, scp: undefined }), /not an access token/],
    ['an app-only token (client credentials: idtyp app, no scp)', () => ({ scp: undefined, idtyp: 'app', roles: ['MLServer.Owner'] }), /app-only token/],
    ['a token without scp', () => ({ scp: undefined }), /app-only token/],
    ['a lifetime above maxTokenLifetimeSeconds', () => ({ exp: sec() + 3 * 86_400 }), /exceeds auth.aad.maxTokenLifetimeSeconds/],
  ])('refused: %s', async (_name, claims, why) => {
    expect((await refused(p.verifyBearer(await aad.token(alice, claims()), now()))).detail).toMatch(why);
  });

  it('expired: token_expired; within the tolerance: accepted', async () => {
    const old = await refused(p.verifyBearer(await aad.token(alice, { iat: sec() - 7200, nbf: sec() - 7200, exp: sec() - 120 }), now()));
    expect(old.code).toBe('token_expired');
    await p.verifyBearer(await aad.token(alice, { iat: sec() - 3600, exp: sec() - 30 }), now());
  });

  it('refused: alg none, HS256 signed with the public key, tampered payload', async () => {
    const good = await aad.token(alice);
    await refused(p.verifyBearer(unsignedCopy(good), now()));
    const forged = await hs256WithPublicKey(await aad.publicKeyPem('key-1'), 'key-1', claimsOf(good));
    expect((await refused(p.verifyBearer(forged, now()))).detail).toMatch(/JOSEAlgNotAllowed/);
    expect((await refused(p.verifyBearer(tampered(good, { groups: [GROUP.owners], oid: bigGroups.oid }), now()))).detail).toMatch(/signature/i);
  });

  it('an unknown kid is refused after exactly one refetch of the keys', async () => {
    await p.verifyBearer(await aad.token(alice), now()); // keys loaded
    const before = aad.hits.jwks;
    const err = await refused(p.verifyBearer(await aad.foreignToken(alice), now()));
    expect(err.detail).toMatch(/JWKSNoMatchingKey/);
    expect(aad.hits.jwks - before).toBe(1);
  });

  it('within the cooldown, unknown kids do not refetch the keys at all (rate limit)', async () => {
    const slow = provider({ jwksCooldownSeconds: 30 });
    await slow.verifyBearer(await aad.token(alice), now());
    const before = aad.hits.jwks;
    for (let i = 0; i < 5; i++) await refused(slow.verifyBearer(await aad.foreignToken(alice), now()));
    expect(aad.hits.jwks).toBe(before);
  });

  it('discovery once, keys once: later tokens need no request to Azure AD', async () => {
    const q = provider();
    await q.verifyBearer(await aad.token(alice), now());
    await q.verifyBearer(await aad.token(alice), now());
    await q.verifyBearer(await aad.token(bigGroups, { groups: [], _claim_names: undefined }), now());
    expect(q.keys.stats).toEqual({ discoveryFetches: 1, keyFetches: 1 });
  });
});

describe('key rotation and outages', () => {
  it('a key published later is accepted without a restart (one refetch)', async () => {
    const p = provider();
    await p.verifyBearer(await aad.token(alice), now());
    const kid = await aad.addKey();
    const before = aad.hits.jwks;
    expect((await p.verifyBearer(await aad.token(alice, {}, { kid }), now())).identity.subject).toBe(alice.oid);
    expect(aad.hits.jwks - before).toBe(1);
  });

  it('key endpoint down: cached keys keep verifying, also past jwksCacheMaxAgeSeconds', async () => {
    const p = provider({ jwksCacheMaxAgeSeconds: 1 });
    await p.verifyBearer(await aad.token(alice), now());
    aad.mode.jwks = 'down';
    await new Promise((r) => setTimeout(r, 1100)); // the cached set is now older than its max age
    const before = aad.hits.jwks;
    expect((await p.verifyBearer(await aad.token(alice), now())).identity.subject).toBe(alice.oid);
    expect(aad.hits.jwks - before).toBe(1); // the refresh was tried (and failed), the held keys verified
    aad.mode.jwks = 'reset';
    expect((await p.verifyBearer(await aad.token(alice), now())).identity.subject).toBe(alice.oid);
  });

  it('key endpoint down and the kid is not cached: 503, not 401 (it may be a valid new key)', async () => {
    const p = provider();
    await p.verifyBearer(await aad.token(alice), now());
    const kid = await aad.addKey();
    aad.mode.jwks = 'reset';
    await expect(p.verifyBearer(await aad.token(alice, {}, { kid }), now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.jwks = 'up';
    expect((await p.verifyBearer(await aad.token(alice, {}, { kid }), now())).identity.subject).toBe(alice.oid);
  });

  it('no key ever fetched: key endpoint or discovery down is 503 for a valid token', async () => {
    aad.mode.jwks = 'down';
    await expect(provider().verifyBearer(await aad.token(alice), now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.jwks = 'up';
    aad.mode.discovery = 'reset';
    const p = provider();
    await expect(p.verifyBearer(await aad.token(alice), now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.discovery = 'up';
    expect((await p.verifyBearer(await aad.token(alice), now())).identity.subject).toBe(alice.oid);
  });

  it('an authority whose certificate is not trusted (no caFile) is unavailable, not a 401', async () => {
    const p = provider({ ca: undefined });
    const err = await p.verifyBearer(await aad.token(alice), now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryUnavailable);
    expect((err as DirectoryUnavailable).detail).toMatch(/certificate/);
  });
});

describe('groups overage', () => {
  it('resolved through Graph with a client-credentials token (fetched once, reused)', async () => {
    const p = provider();
    const log = aad.graphLog.length;
    const b = await p.verifyBearer(await aad.token(bigGroups), now());
    expect(b.identity.groups).toEqual([GROUP.contributors, GROUP.unrelated]);
    await p.verifyBearer(await aad.token(bigGroups), now());
    expect(aad.graphLog.slice(log)).toEqual([`POST /v1.0/directoryObjects/${bigGroups.oid}/getMemberObjects`, `POST /v1.0/directoryObjects/${bigGroups.oid}/getMemberObjects`]);
    expect(p.stats.graphTokens).toBe(1);
  });

  it('hasgroups (implicit-flow form) is an overage too', async () => {
    const p = provider();
    const b = await p.verifyBearer(await aad.token(bigGroups, { _claim_names: undefined, _claim_sources: undefined, hasgroups: true }), now());
    expect(b.identity.groups).toContain(GROUP.contributors);
  });

  it('without a client secret: 403 groups_overage saying what to configure', async () => {
    const p = provider({ clientSecret: undefined, passwordLogin: false });
    const err = await p.verifyBearer(await aad.token(bigGroups), now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Forbidden);
    expect((err as Forbidden).code).toBe('groups_overage');
    expect((err as Forbidden).message).toMatch(/clientSecretEnv or clientSecretFile/);
    expect((err as Forbidden).message).toMatch(/GroupMember\.Read\.All/);
  });

  it('Graph down, or a wrong client secret: 503, never 401', async () => {
    aad.mode.graph = 'reset';
    await expect(provider().verifyBearer(await aad.token(bigGroups), now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.graph = 'up';
    const wrong = await provider({ clientSecret: 'not-the-secret' }).verifyBearer(await aad.token(bigGroups), now()).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(DirectoryUnavailable);
    expect((wrong as DirectoryUnavailable).detail).toMatch(/AADSTS7000215/);
  });
});

describe('password login (resource-owner password grant)', () => {
  it('valid credentials: the identity of the token Azure AD issued for the web app', async () => {
    const identity = await provider().verify('Alice@contoso.test', AAD_PASSWORD, now());
    expect(identity).toMatchObject({ subject: alice.oid, displayName: 'Alice Adams', provider: 'aad', groups: [GROUP.owners, GROUP.unrelated] });
  });

  it('wrong password: 401 invalid_credentials carrying AADSTS50126; MFA required: AADSTS50076', async () => {
    const err = await provider().verify(alice.upn, 'wrong-password', now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidCredentials);
    expect((err as InvalidCredentials).message).toBe('Azure AD refused the sign-in (AADSTS50126: Error validating credentials due to invalid username or password.).');
    aad.addUser({ upn: 'mfa@contoso.test', name: 'M', groups: [], mfa: true });
    const mfa = await provider().verify('mfa@contoso.test', AAD_PASSWORD, now()).catch((e: unknown) => e);
    expect((mfa as InvalidCredentials).message).toMatch(/^Azure AD refused the sign-in \(AADSTS50076: /);
  });

  it('unknown in the tenant (AADSTS50034) or not a user@domain name: not this provider\'s user', async () => {
    expect(await provider().verify('nobody@contoso.test', AAD_PASSWORD, now())).toBeNull();
    const before = aad.hits.token;
    expect(await provider().verify('admin', 'x', now())).toBeNull();
    expect(aad.hits.token).toBe(before);
  });

  it('authority unreachable, or a configuration Azure AD refuses (bad secret): 503, not a 401 that counts against the user', async () => {
    aad.mode.token = 'reset';
    await expect(provider().verify(alice.upn, AAD_PASSWORD, now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.token = 'down';
    await expect(provider().verify(alice.upn, AAD_PASSWORD, now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.token = 'up';
    await expect(provider({ clientSecret: 'wrong' }).verify(alice.upn, AAD_PASSWORD, now())).rejects.toBeInstanceOf(DirectoryUnavailable);
  });

  it('consent missing for the web app (invalid_grant AADSTS65001) is the configuration, not the user: 503', async () => {
    aad.addUser({ upn: 'noconsent@contoso.test', name: 'N', groups: [], consentMissing: true });
    const err = await provider().verify('noconsent@contoso.test', AAD_PASSWORD, now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryUnavailable);
    expect((err as DirectoryUnavailable).detail).toMatch(/AADSTS65001/);
  });

  it('off unless passwordLogin', async () => {
    expect(await provider({ passwordLogin: false }).verify(alice.upn, AAD_PASSWORD, now())).toBeNull();
  });
});

describe('refresh (revalidate through Graph)', () => {
  it('re-reads groups, keeps app roles; refuses disabled, deleted, password changed or sessions revoked', async () => {
    const p = provider();
    const u = aad.addUser({ upn: 'rita@contoso.test', name: 'Rita', groups: [GROUP.readers], roles: ['MLServer.Contributor'] });
    const identity = (await p.verify(u.upn, AAD_PASSWORD, now()))!;
    expect(identity.groups).toEqual([GROUP.readers, 'MLServer.Contributor']);
    u.groups = [GROUP.owners];
    expect((await p.revalidate(identity, now())).groups).toEqual([GROUP.owners, 'MLServer.Contributor']);

    u.lastPasswordChangeDateTime = new Date(Date.now() + 1000).toISOString();
    await expect(p.revalidate(identity, now())).rejects.toBeInstanceOf(InvalidRefreshToken);
    delete u.lastPasswordChangeDateTime;
    u.signInSessionsValidFromDateTime = new Date(Date.now() + 1000).toISOString();
    await expect(p.revalidate(identity, now())).rejects.toBeInstanceOf(InvalidRefreshToken);
    delete u.signInSessionsValidFromDateTime;
    u.enabled = false;
    await expect(p.revalidate(identity, now())).rejects.toBeInstanceOf(InvalidRefreshToken);
    u.enabled = true;
    aad.mode.graph = 'down';
    await expect(p.revalidate(identity, now())).rejects.toBeInstanceOf(DirectoryUnavailable);
    aad.mode.graph = 'up';
    aad.users.delete(u.upn);
    await expect(p.revalidate(identity, now())).rejects.toBeInstanceOf(InvalidRefreshToken);
  });
});
