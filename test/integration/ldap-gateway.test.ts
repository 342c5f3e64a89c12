// LDAP users through the real gateway, real example node (mTLS) and a real OpenLDAP slapd over StartTLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  expectErrorShape,
  LDAP_BASE,
  LDAP_SERVICE_DN,
  LDAP_SERVICE_PASSWORD,
  LDAP_USER_PASSWORD,
  ldapGroupDn,
  ldapUserDn,
  request,
  startSlapd,
  startStack,
  type Slapd,
  type Stack,
} from './setup.ts';

const PW_ENV = 'MLGATE_TEST_LDAP_SERVICE_PW';
let slapd: Slapd;
const stacks: Stack[] = [];

beforeAll(async () => {
  process.env[PW_ENV] = LDAP_SERVICE_PASSWORD;
  slapd = await startSlapd();
});
afterAll(async () => {
  await Promise.all(stacks.map((s) => s.close()));
  await slapd?.close();
});

type Roles = { Owner?: string[]; Contributor?: string[]; Reader?: string[] };

async function gateway(roles: Roles): Promise<Stack> {
  const stack = await startStack({
    config: {
      auth: {
        providers: ['ldap', 'admin'],
        roles,
        ldap: {
          host: '127.0.0.1',
          port: slapd.port,
          startTLS: true,
          caFile: slapd.caFile,
          queryUserDn: LDAP_SERVICE_DN,
          queryUserPasswordEnv: PW_ENV,
          searchBase: `ou=people,${LDAP_BASE}`,
          searchFilter: 'uid={0}',
          uniqueUserIdentifierAttributeName: 'uid',
          groups: { searchBase: `ou=groups,${LDAP_BASE}`, filter: '(objectClass=groupOfNames)' },
          connectTimeoutMs: 1000,
          timeoutMs: 1000,
        },
      },
    },
  });
  stacks.push(stack);
  return stack;
}

const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());

async function login(stack: Stack, username: string, password = LDAP_USER_PASSWORD) {
  return request(stack, 'POST', '/login', { json: { username, password } });
}

async function addUser(uid: string, groups: string[]): Promise<string> {
  const dn = ldapUserDn(uid);
  await slapd.asAdmin((c) =>
    c.add(dn, { objectClass: ['inetOrgPerson'], uid, cn: uid, sn: uid, displayName: `User ${uid}`, mail: `${uid}@mlgate.test`, userPassword: LDAP_USER_PASSWORD }),
  );
  for (const g of groups) await slapd.addMember(ldapGroupDn(g), dn);
  return dn;
}

describe('LDAP login through the gateway (Owner: mlgate-owners, Contributor: groupB)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await gateway({ Owner: ['mlgate-owners'], Contributor: ['groupB'] });
  });

  it('an LDAP user logs in, gets the role of their group, and calls /status', async () => {
    const r = await login(stack, 'alice');
    expect(r.status).toBe(200);
    const { access_token, refresh_token } = r.json();
    expect(refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(claims(access_token)).toMatchObject({ sub: 'alice', name: 'Alice Adams', roles: ['Owner'], idp: 'ldap' });
    const status = await request(stack, 'GET', '/status', { token: access_token });
    expect(status.status).toBe(200);
    const user = await request(stack, 'GET', '/user', { token: access_token });
    expect(user.json().claims).toMatchObject({ sub: 'alice', roles: ['Owner'] });
  });

  it('a member of a nested group (groupA in groupB) is Contributor', async () => {
    const r = await login(stack, 'bob');
    expect(r.status).toBe(200);
    expect(claims(r.json().access_token).roles).toEqual(['Contributor']);
  });

  it('a user in no mapped group gets the implicit role (Owner + Contributor declared: Reader)', async () => {
    const r = await login(stack, 'carol');
    expect(r.status).toBe(200);
    expect(claims(r.json().access_token).roles).toEqual(['Reader']);
  });

  it('the local admin still logs in after the ldap provider (unknown to LDAP)', async () => {
    const r = await request(stack, 'POST', '/login', { json: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(r.status).toBe(200);
    expect(claims(r.json().access_token).roles).toEqual(['Owner']);
  });

  it('wrong password, unknown user and disabled user get the identical 401 body', async () => {
    const strip = (t: string) => ({ ...JSON.parse(t), requestId: undefined });
    const wrong = await login(stack, 'alice', 'not-the-password');
    const unknown = await login(stack, 'nobody-at-all', 'not-the-password');
    const disabled = await login(stack, 'dave');
    for (const r of [wrong, unknown, disabled]) expectErrorShape(r, 401, 'invalid_credentials');
    expect(strip(unknown.text)).toEqual(strip(wrong.text));
    expect(strip(disabled.text)).toEqual(strip(wrong.text));
  });

  it.each([['*'], ['admin)(|(uid=*'], ['\\2a'], ['a,ou=x'], ['alice\u0000'], [')(uid=*']])('the login name %j is a plain 401, never a match of another entry or a 500', async (name) => {
    const r = await login(stack, name);
    expectErrorShape(r, 401, 'invalid_credentials');
  });

  it('refresh after the group changes gives the new role in the new access token', async () => {
    const dn = await addUser('nina', ['groupA']);
    const first = await login(stack, 'nina');
    expect(claims(first.json().access_token).roles).toEqual(['Contributor']);
    await slapd.removeMember(ldapGroupDn('groupA'), dn);
    await slapd.addMember(ldapGroupDn('mlgate-owners'), dn);
    const r = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.json().refresh_token } });
    expect(r.status).toBe(200);
    expect(claims(r.json().access_token).roles).toEqual(['Owner']);
    await slapd.removeMember(ldapGroupDn('mlgate-owners'), dn);
    const again = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: r.json().refresh_token } });
    expect(claims(again.json().access_token).roles).toEqual(['Reader']);
  });

  it('refresh after a password change is 401 and ends the family (its access token is revoked too)', async () => {
    const dn = await addUser('otto', []);
    const first = (await login(stack, 'otto')).json();
    await new Promise((r) => setTimeout(r, 1100)); // pwdChangedTime has one-second resolution
    await slapd.setPassword(dn, 'otto-New-pw-2');
    const r = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expectErrorShape(r, 401, 'invalid_refresh_token');
    const call = await request(stack, 'GET', '/status', { token: first.access_token });
    expectErrorShape(call, 401, 'token_revoked');
    expect((await login(stack, 'otto', 'otto-New-pw-2')).status).toBe(200);
  });

  it('refresh after the user is removed from the directory is 401', async () => {
    const dn = await addUser('pete', ['groupA']);
    const first = (await login(stack, 'pete')).json();
    await slapd.asAdmin((c) => c.del(dn));
    const r = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expectErrorShape(r, 401, 'invalid_refresh_token');
  });

  it('directory down: /login and refresh are 503 directory_unavailable; back up, they work without restarting mlgate', async () => {
    const before = (await login(stack, 'bob')).json();
    await slapd.stop();
    try {
      expectErrorShape(await login(stack, 'bob'), 503, 'directory_unavailable');
      const refresh = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: before.refresh_token } });
      expectErrorShape(refresh, 503, 'directory_unavailable');
      expect(stack.logLines.some((l) => l.includes('directory_unavailable') && l.includes('ECONNREFUSED'))).toBe(true);
    } finally {
      await slapd.start();
    }
    expect((await login(stack, 'bob')).status).toBe(200);
    // The family survived the outage: a 503 on refresh does not end it.
    const refresh = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: before.refresh_token } });
    expect(refresh.status).toBe(200);
  });

  it('directory frozen: /login is 503 within the timeout', async () => {
    slapd.pause();
    try {
      const t0 = Date.now();
      expectErrorShape(await login(stack, 'alice'), 503, 'directory_unavailable');
      expect(Date.now() - t0).toBeLessThan(3500);
    } finally {
      slapd.resume();
    }
    expect((await login(stack, 'alice')).status).toBe(200);
  });

  it('never logs the service account password', () => {
    expect(stack.logLines.join('\n')).not.toContain(LDAP_SERVICE_PASSWORD);
    expect(stack.logLines.join('\n')).not.toContain(LDAP_USER_PASSWORD);
  });
});

describe('implicit roles of configure-roles.md for LDAP users', () => {
  it.each([
    ['no roles declared', {}, { alice: 'Contributor', carol: 'Contributor' }],
    ['Owner only', { Owner: ['mlgate-owners'] }, { alice: 'Owner', bob: 'Contributor', carol: 'Contributor' }],
    ['Contributor only', { Contributor: ['groupB'] }, { alice: 'Reader', bob: 'Contributor' }],
    ['Reader declared', { Owner: ['mlgate-owners'], Reader: ['chain4'] }, { alice: 'Owner', erin: 'Reader', carol: null }],
  ] as const)('%s', async (_name, roles, expected) => {
    const stack = await gateway(roles as Roles);
    for (const [user, role] of Object.entries(expected)) {
      const r = await login(stack, user);
      if (role === null) {
        expectErrorShape(r, 403, 'no_role');
      } else {
        expect(r.status, `${user}: ${r.text}`).toBe(200);
        expect(claims(r.json().access_token).roles, user).toEqual([role]);
      }
    }
  });
});
