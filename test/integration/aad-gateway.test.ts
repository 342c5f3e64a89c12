// Azure AD through the real gateway and example node (mTLS), against a real OIDC provider over HTTPS
// (oauth2-mock-server at Azure AD's paths) and a Graph stand-in: remoteLoginAAD-style bearer tokens, roles from
// groups and app roles, overage, outages, revocation by subject, and password login issuing mlgate tokens.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AadProvider } from '../../src/auth/index.ts';
import {
  AAD_APP_ID_URI,
  AAD_CLIENT_SECRET,
  AAD_OTHER_TENANT,
  AAD_PASSWORD,
  AAD_WEB_APP,
  GROUP,
  startAzureAd,
  unsignedCopy,
  type AadUser,
  type AzureAdStandIn,
} from './servers/azure-ad.ts';
import { expectErrorShape, loginAdmin, request, startStack, type Stack } from './setup.ts';

const SECRET_ENV = 'MLGATE_TEST_AAD_CLIENT_SECRET';
let aad: AzureAdStandIn;
const stacks: Stack[] = [];
let owner: AadUser;
let contributor: AadUser;
let reader: AadUser;
let appRoleOwner: AadUser;
let noRole: AadUser;
let overage: AadUser;

beforeAll(async () => {
  process.env[SECRET_ENV] = AAD_CLIENT_SECRET;
  aad = await startAzureAd();
  owner = aad.addUser({ upn: 'olive@contoso.test', name: 'Olive Owner', groups: [GROUP.owners, GROUP.unrelated] });
  contributor = aad.addUser({ upn: 'carl@contoso.test', name: 'Carl Contributor', groups: [GROUP.contributors] });
  reader = aad.addUser({ upn: 'rita@contoso.test', name: 'Rita Reader', groups: [GROUP.readers] });
  appRoleOwner = aad.addUser({ upn: 'apro@contoso.test', name: 'App Role Owner', groups: [GROUP.unrelated], roles: ['MLServer.Owner'] });
  noRole = aad.addUser({ upn: 'nora@contoso.test', name: 'Nora', groups: [GROUP.unrelated] });
  overage = aad.addUser({ upn: 'otto@contoso.test', name: 'Otto Overage', groups: [GROUP.unrelated, GROUP.contributors], overage: true });
});
afterAll(async () => {
  await Promise.all(stacks.map((s) => s.close()));
  await aad?.close();
  delete process.env[SECRET_ENV];
});
beforeEach(() => {
  for (const k of Object.keys(aad.mode) as (keyof typeof aad.mode)[]) aad.mode[k] = 'up';
});

async function gateway(aadConfig: Record<string, unknown> = {}): Promise<Stack> {
  const stack = await startStack({
    config: {
      auth: {
        providers: ['aad', 'admin'],
        roles: { Owner: [GROUP.owners, 'MLServer.Owner'], Contributor: [GROUP.contributors], Reader: [GROUP.readers] },
        aad: {
          authority: aad.authority,
          tenantId: aad.tenantId,
          audiences: [AAD_WEB_APP, AAD_APP_ID_URI],
          clientId: AAD_WEB_APP,
          clientSecretEnv: SECRET_ENV,
          caFile: aad.caFile,
          graphBaseUrl: aad.graphBaseUrl,
          passwordLogin: true,
          jwksCooldownSeconds: 0,
          timeoutMs: 2000,
          ...aadConfig,
        },
      },
    },
  });
  stacks.push(stack);
  return stack;
}

const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());

describe('Azure AD bearer tokens (remoteLoginAAD)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await gateway();
  });

  it('a v2 token of a group member reaches the node as that user with the mapped role', async () => {
    const r = await request(stack, 'GET', '/user', { token: await aad.token(owner) });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ assertion: 'verified', claims: { sub: owner.oid, name: 'Olive Owner', roles: ['Owner'], idp: 'aad' } });
  });

  it('a v1 token (sts.windows.net issuer, App ID URI audience, appid) works the same', async () => {
    const token = await aad.token(contributor, { iss: aad.v1Issuer, aud: AAD_APP_ID_URI, azp: undefined, appid: 'c0ffee00-0000-4000-8000-000000000000', ver: '1.0' });
    const r = await request(stack, 'GET', '/user', { token });
    expect(r.json()).toMatchObject({ claims: { sub: contributor.oid, roles: ['Contributor'] } });
  });

  it('an app role value maps like a group; Reader cannot publish; no role (Reader declared) is 403 no_role', async () => {
    expect((await request(stack, 'GET', '/user', { token: await aad.token(appRoleOwner) })).json().claims.roles).toEqual(['Owner']);
    const readerToken = await aad.token(reader);
    expect((await request(stack, 'GET', '/services', { token: readerToken })).status).toBe(200);
    expectErrorShape(await request(stack, 'POST', '/services/aad-svc/1', { token: readerToken, json: { code: 'x <- 1' } }), 403, 'role_required');
    expectErrorShape(await request(stack, 'GET', '/status', { token: await aad.token(noRole) }), 403, 'no_role');
  });

  it('a Contributor publishes with an Azure AD token and owns the service (owner = object id)', async () => {
    const r = await request(stack, 'POST', '/services/aad-svc/1', { token: await aad.token(contributor), json: { code: 'x <- 1' } });
    expect(r.status).toBe(201);
    await vi.waitFor(async () => expect(await stack.gateway.store.getOwner('aad-svc/1')).toBe(contributor.oid));
  });

  it('the hot path: a seen token is served from the cache, no second signature check', async () => {
    const spy = vi.spyOn(AadProvider.prototype, 'verifyBearer');
    try {
      const token = await aad.token(owner);
      for (let i = 0; i < 5; i++) expect((await request(stack, 'GET', '/status', { token })).status).toBe(200);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('gateway tokens keep working next to Azure AD tokens (local admin)', async () => {
    const admin = await loginAdmin(stack);
    expect((await request(stack, 'GET', '/user', { token: admin.access_token })).json().claims).toMatchObject({ sub: 'admin', roles: ['Owner'], idp: 'admin' });
  });

  it.each([
    ['other tenant', () => aad.token(owner, { iss: `https://sts.windows.net/${AAD_OTHER_TENANT}/`, tid: AAD_OTHER_TENANT }), 'invalid_token'],
    ['other audience', () => aad.token(owner, { aud: 'api://someone-else' }), 'invalid_token'],
    ['expired', () => aad.token(owner, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }), 'token_expired'],
    ['alg none', async () => unsignedCopy(await aad.token(owner)), 'invalid_token'],
    ['unknown kid', () => aad.foreignToken(owner), 'invalid_token'],
  ])('401 for %s, with WWW-Authenticate and nothing forwarded', async (_name, make, code) => {
    const before = stack.node.received.length;
    const r = await request(stack, 'GET', '/status', { token: await make() });
    expectErrorShape(r, 401, code);
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(stack.node.received.length).toBe(before);
  });

  it('groups overage: roles resolved through Graph', async () => {
    const r = await request(stack, 'GET', '/user', { token: await aad.token(overage) });
    expect(r.status).toBe(200);
    expect(r.json().claims.roles).toEqual(['Contributor']);
  });

  it('key rotation at the provider: a new kid is accepted without restarting the gateway', async () => {
    const kid = await aad.addKey();
    expect((await request(stack, 'GET', '/user', { token: await aad.token(owner, {}, { kid }) })).json().claims.sub).toBe(owner.oid);
  });

  it('key endpoint down: known keys keep verifying new tokens; an uncached kid is 503, never 401', async () => {
    aad.mode.jwks = 'down';
    expect((await request(stack, 'GET', '/status', { token: await aad.token(contributor) })).status).toBe(200);
    const kid = await aad.addKey();
    expectErrorShape(await request(stack, 'GET', '/status', { token: await aad.token(owner, {}, { kid }) }), 503, 'directory_unavailable');
  });

  it('Graph down for an overage token: 503', async () => {
    aad.mode.graph = 'reset';
    expectErrorShape(await request(stack, 'GET', '/status', { token: await aad.token(overage) }), 503, 'directory_unavailable');
  });

  it("revoking a user (admin API, subject = object id) refuses that user's Azure AD tokens issued before", async () => {
    const u = aad.addUser({ upn: 'rev@contoso.test', name: 'Revoked', groups: [GROUP.contributors] });
    const token = await aad.token(u);
    expect((await request(stack, 'GET', '/status', { token })).status).toBe(200); // cached now
    const admin = await loginAdmin(stack);
    const rv = await request(stack, 'POST', '/mlgate/admin/revoke/user', { token: admin.access_token, json: { subject: u.oid } });
    expect(rv.status).toBe(200);
    expectErrorShape(await request(stack, 'GET', '/status', { token }), 401, 'token_revoked');
    // A token Azure AD issues after the revocation is accepted (revocation is "not before", as for gateway tokens).
    const later = await aad.token(u, { iat: Math.floor(Date.now() / 1000) + 1 });
    expect((await request(stack, 'GET', '/status', { token: later })).status).toBe(200);
  });

  it('an Azure AD Owner can use the admin API with an Azure AD token', async () => {
    const r = await request(stack, 'GET', `/mlgate/admin/users/${contributor.oid}/sessions`, { token: await aad.token(owner) });
    expect(r.status).toBe(200);
    expectErrorShape(await request(stack, 'GET', `/mlgate/admin/users/${owner.oid}/sessions`, { token: await aad.token(contributor) }), 403, 'owner_required');
  });
});

describe('a gateway without a client secret', () => {
  it('groups overage is 403 groups_overage telling what to configure; other tokens work', async () => {
    const stack = await gateway({ clientSecretEnv: undefined, passwordLogin: false });
    const r = await request(stack, 'GET', '/status', { token: await aad.token(overage) });
    expectErrorShape(r, 403, 'groups_overage');
    expect(r.json().message).toMatch(/clientSecretEnv or clientSecretFile/);
    expect((await request(stack, 'GET', '/status', { token: await aad.token(owner) })).status).toBe(200);
  });
});

describe('a gateway whose first key fetch fails', () => {
  it('answers 503 for a valid token while the tenant keys cannot be fetched, then recovers', async () => {
    const stack = await gateway();
    aad.mode.discovery = 'reset';
    expectErrorShape(await request(stack, 'GET', '/status', { token: await aad.token(owner) }), 503, 'directory_unavailable');
    aad.mode.discovery = 'up';
    aad.mode.jwks = 'down';
    expectErrorShape(await request(stack, 'GET', '/status', { token: await aad.token(owner) }), 503, 'directory_unavailable');
    aad.mode.jwks = 'up';
    expect((await request(stack, 'GET', '/status', { token: await aad.token(owner) })).status).toBe(200);
  });
});

describe('password login (POST /login with Azure AD credentials)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await gateway();
  });
  const login = (username: string, password = AAD_PASSWORD) => request(stack, 'POST', '/login', { json: { username, password } });

  it('issues mlgate tokens with the role of the Azure AD groups; refresh re-reads the groups', async () => {
    const u = aad.addUser({ upn: 'paula@contoso.test', name: 'Paula', groups: [GROUP.contributors] });
    const r = await login('paula@contoso.test');
    expect(r.status).toBe(200);
    const body = r.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(claims(body.access_token)).toMatchObject({ iss: 'mlgate', sub: u.oid, name: 'Paula', roles: ['Contributor'], idp: 'aad' });
    expect((await request(stack, 'GET', '/user', { token: body.access_token })).json().claims.sub).toBe(u.oid);

    u.groups = [GROUP.owners];
    const refreshed = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: body.refresh_token } });
    expect(refreshed.status).toBe(200);
    expect(claims(refreshed.json().access_token).roles).toEqual(['Owner']);

    u.enabled = false;
    const refused = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: refreshed.json().refresh_token } });
    expectErrorShape(refused, 401, 'invalid_refresh_token');
  });

  it('a wrong password is 401 invalid_credentials with the AADSTS code', async () => {
    const r = await login(owner.upn, 'not-the-password');
    expectErrorShape(r, 401, 'invalid_credentials');
    expect(r.json().message).toContain('AADSTS50126');
    expect(r.json().message).not.toMatch(/Trace ID|Correlation/);
  });

  it('an unknown user gets the generic 401; the local admin still logs in', async () => {
    const r = await login('nobody@contoso.test');
    expectErrorShape(r, 401, 'invalid_credentials');
    expect(r.json().message).toBe('The username or password is incorrect.');
    expect((await loginAdmin(stack)).access_token).toBeTruthy();
  });

  it('authority unreachable: 503 directory_unavailable', async () => {
    aad.mode.token = 'reset';
    expectErrorShape(await login(owner.upn), 503, 'directory_unavailable');
  });

  it('the client secret and user passwords never reach the log', async () => {
    await login(owner.upn);
    await login(owner.upn, 'wrong-Secret-pw');
    const log = stack.logLines.join('\n');
    for (const secret of [AAD_CLIENT_SECRET, AAD_PASSWORD, 'wrong-Secret-pw']) expect(log).not.toContain(secret);
  });
});
