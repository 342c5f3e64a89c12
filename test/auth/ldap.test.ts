// The ldap CredentialProvider against a real OpenLDAP slapd (no mocks): binds, groups, TLS, failures, refresh.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attribute, Change } from 'ldapts';
import { buildProviders, CredentialChain, LdapProvider, type Identity, type LdapOptions } from '../../src/auth/index.ts';
import {
  adBindReason,
  disabledReason,
  escapeDnValue,
  fileTimeToMs,
  firstRdnValue,
  generalizedTimeToMs,
  passwordChangedAt,
  renderFilter,
} from '../../src/auth/ldap.ts';
import { ConfigError, loadConfig, productionProblems } from '../../src/config/index.ts';
import { DirectoryUnavailable, GatewayError, InvalidCredentials, InvalidRefreshToken } from '../../src/errors.ts';
import {
  ldapGroupDn,
  LDAP_BASE,
  LDAP_SERVICE_DN,
  LDAP_SERVICE_PASSWORD,
  LDAP_USER_PASSWORD,
  LDAP_PERMANENT_LOCK,
  startSlapd,
  ldapUserDn,
  type Slapd,
} from '../integration/servers/slapd.ts';

let slapd: Slapd;
const providers: LdapProvider[] = [];

beforeAll(async () => {
  slapd = await startSlapd();
});
afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await slapd?.close();
});

function options(extra: Partial<LdapOptions> = {}): LdapOptions {
  return {
    host: '127.0.0.1',
    port: slapd.port,
    useLDAPS: false,
    startTLS: false,
    queryUserDn: LDAP_SERVICE_DN,
    queryUserPassword: LDAP_SERVICE_PASSWORD,
    searchBase: `ou=people,${LDAP_BASE}`,
    searchFilter: '(uid={0})',
    uniqueUserIdentifierAttributeName: 'uid',
    displayNameAttributeName: 'displayName',
    emailAttributeName: 'mail',
    groups: {
      source: 'memberOf',
      searchBase: `ou=groups,${LDAP_BASE}`,
      filter: '(objectClass=groupOfNames)',
      memberAttribute: 'member',
      nameAttribute: 'cn',
      nested: 'recursive',
      maxDepth: 5,
    },
    connectTimeoutMs: 1000,
    timeoutMs: 1000,
    ...extra,
  };
}

function provider(extra: Partial<LdapOptions> = {}): LdapProvider {
  const p = new LdapProvider(options(extra));
  providers.push(p);
  return p;
}
const groups = (extra: Partial<LdapOptions['groups']>) => ({ ...options().groups, ...extra });

async function caught(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** slapd's -d stats lines since `mark` that match re. */
const lines = (mark: number, re: RegExp) => slapd.logSince(mark).split('\n').filter((l) => re.test(l));
/** stats are written as slapd works; give the last line a moment to arrive. */
const settle = () => new Promise((r) => setTimeout(r, 100));
/** A mark taken once the previous test's last lines have arrived (they would otherwise count for this test). */
const quietMark = async (): Promise<number> => {
  await settle();
  return slapd.mark();
};

async function addUser(uid: string, memberOf: string[] = []): Promise<string> {
  const dn = ldapUserDn(uid);
  await slapd.asAdmin(async (c) => {
    await c.add(dn, { objectClass: ['inetOrgPerson'], uid, cn: uid, sn: uid, displayName: uid, mail: `${uid}@mlgate.test`, userPassword: LDAP_USER_PASSWORD });
  });
  for (const g of memberOf) await slapd.addMember(ldapGroupDn(g), dn);
  return dn;
}

describe('login (search then bind)', () => {
  it('logs a user in with display name, email and groups', async () => {
    const id = await provider().verify('alice', LDAP_USER_PASSWORD, 1234);
    expect(id).toEqual({
      subject: 'alice',
      displayName: 'Alice Adams',
      email: 'alice@mlgate.test',
      groups: ['mlgate-owners'],
      provider: 'ldap',
      authTime: 1234,
    });
  });

  it('searches with the service account and binds the user on a connection of its own; the service connection is reused', async () => {
    const p = provider();
    await p.verify('alice', LDAP_USER_PASSWORD, Date.now()); // opens the service connection
    const mark = await quietMark();
    await p.verify('alice', LDAP_USER_PASSWORD, Date.now());
    await settle();
    // One new connection (the user bind), not two: searches ran on the kept service connection.
    expect(lines(mark, / ACCEPT from /)).toHaveLength(1);
    expect(lines(mark, /BIND dn="uid=alice,ou=people,dc=mlgate,dc=test" method=128/)).toHaveLength(1);
    expect(lines(mark, /BIND dn="cn=mlgate-svc/)).toHaveLength(0);
  });

  it('gives a wrong password and an unknown user the identical InvalidCredentials', async () => {
    const chain = new CredentialChain([provider()], { maxConcurrent: 2 });
    const wrong = await caught(chain.verify('alice', 'not-her-password'));
    const unknown = await caught(chain.verify('nobody-here', 'whatever-pw'));
    for (const e of [wrong, unknown]) expect(e).toBeInstanceOf(InvalidCredentials);
    expect([unknown.status, unknown.code, unknown.message]).toEqual([wrong.status, wrong.code, wrong.message]);
    expect(wrong.detail).toMatch(/bind as uid=alice.* refused/);
  });

  it('spends the same local work on a wrong LDAP password as on an unknown user (no timing oracle for user names)', async () => {
    const chain = new CredentialChain([provider()], { maxConcurrent: 1 });
    const time = async (user: string) => {
      const t0 = performance.now();
      await caught(chain.verify(user, 'not-the-password'));
      return performance.now() - t0;
    };
    await time('nobody-here'); // the dummy hash is made once
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      wrong.push(await time('alice'));
      unknown.push(await time('nobody-here'));
    }
    // Both pay one argon2 verification (tens to hundreds of ms); without it a refused bind takes a few ms.
    expect(median(wrong)).toBeGreaterThan(median(unknown) * 0.5);
  });

  it.each([[''], [' '], ['   '], ['\t\n']])('refuses the password %j before any bind (no connection, no BIND)', async (pw) => {
    const p = provider();
    const mark = await quietMark();
    const e = await caught(p.verify('alice', pw, Date.now()));
    expect(e).toBeInstanceOf(InvalidCredentials);
    expect(e.detail).toMatch(/before any bind/);
    await settle();
    expect(lines(mark, /ACCEPT|BIND|SRCH/)).toEqual([]);
    // Control: the same provider does reach slapd for a real password.
    await p.verify('alice', LDAP_USER_PASSWORD, Date.now());
    await settle();
    expect(lines(mark, /BIND dn="uid=alice/).length).toBeGreaterThan(0);
  });

  it('refuses a disabled (administratively locked) user without binding as it', async () => {
    const mark = await quietMark();
    const e = await caught(provider().verify('dave', LDAP_USER_PASSWORD, Date.now()));
    expect(e).toBeInstanceOf(InvalidCredentials);
    expect(e.detail).toMatch(/locked by an administrator/);
    await settle();
    expect(lines(mark, /BIND dn="uid=dave/)).toEqual([]);
  });

  it('refuses when two entries match the login name, and binds as neither', async () => {
    const p = provider({ searchBase: LDAP_BASE });
    const mark = await quietMark();
    const e = await caught(p.verify('twin', LDAP_USER_PASSWORD, Date.now()));
    expect(e).toBeInstanceOf(InvalidCredentials);
    expect(e.detail).toMatch(/refusing to pick one/);
    await settle();
    expect(lines(mark, /BIND dn="uid=twin/)).toEqual([]);
  });

  it('wraps an ML Server style filter without parentheses ("uid={0}")', async () => {
    expect((await provider({ searchFilter: 'uid={0}' }).verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
  });

  it('applies the conditions of searchFilter (only members of a group may log in)', async () => {
    const p = provider({ searchFilter: `(&(uid={0})(memberOf=${ldapGroupDn('mlgate-owners')}))` });
    expect((await p.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
    expect(await p.verify('carol', LDAP_USER_PASSWORD, 1)).toBeNull();
  });
});

describe('injection through the login name', () => {
  const attempts = ['*', ')(uid=*', 'admin)(|(uid=*', '*)(uid=alice', 'al*', '\\2a', 'a,ou=x', 'alice\0', '\0', 'alice)(|(objectClass=*'];

  it.each(attempts.map((a) => [a]))('search mode: %j matches no entry and is a plain 401, with the value escaped in the filter', async (name) => {
    const chain = new CredentialChain([provider()], { maxConcurrent: 2 });
    const mark = await quietMark();
    const e = await caught(chain.verify(name, LDAP_USER_PASSWORD));
    expect(e).toBeInstanceOf(InvalidCredentials);
    await settle();
    const filters = lines(mark, /SRCH base="ou=people/).map((l) => /filter="(.*)"$/.exec(l)?.[1]);
    expect(filters).toHaveLength(1);
    // One equality assertion on uid, with every special character escaped: no wildcard, no extra clause.
    expect(filters[0]).toMatch(/^\(uid=([^*()\\]|\\[0-9a-f]{2})*\)$/i);
    expect(lines(mark, /BIND dn="uid=/)).toEqual([]);
  });

  it.each(attempts.map((a) => [a]))('direct-bind mode: %j is escaped into the DN and is a plain 401', async (name) => {
    const chain = new CredentialChain([provider({ bindFilter: `uid={0},ou=people,${LDAP_BASE}` })], { maxConcurrent: 2 });
    const mark = await quietMark();
    const e = await caught(chain.verify(name, LDAP_USER_PASSWORD));
    expect(e).toBeInstanceOf(InvalidCredentials);
    await settle();
    expect(lines(mark, /BIND dn="uid=/)).toEqual([]);
  });
});

describe('direct-bind template (ML Server BindFilter)', () => {
  it('binds as the DN made from the template, reads the entry, and refuses a wrong password', async () => {
    const p = provider({ bindFilter: `uid={0},ou=people,${LDAP_BASE}` });
    const id = await p.verify('bob', LDAP_USER_PASSWORD, 5);
    expect(id).toMatchObject({ subject: 'bob', displayName: 'Bob Brown', groups: ['groupA', 'groupB'] });
    expect(await caught(p.verify('bob', 'wrong-pw', 5))).toBeInstanceOf(InvalidCredentials);
    expect(await p.verify('nobody-here', 'wrong-pw', 5)).toBeNull();
  });
});

describe('groups', () => {
  it('resolves nested groups: bob is in groupA, groupA in groupB', async () => {
    expect((await provider().verify('bob', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['groupA', 'groupB']);
  });

  it('follows nesting only up to maxDepth', async () => {
    expect((await provider().verify('erin', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['chain1', 'chain2', 'chain3', 'chain4']);
    const p = provider({ groups: groups({ maxDepth: 2 }) });
    expect((await p.verify('erin', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['chain1', 'chain2', 'chain3']);
  });

  it('stops on a cycle (cycleC in cycleD in cycleC)', async () => {
    const mark = await quietMark();
    expect((await provider({ groups: groups({ maxDepth: 50 }) }).verify('frank', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['cycleC', 'cycleD']);
    await settle();
    expect(lines(mark, /SRCH base="ou=groups/).length).toBeLessThanOrEqual(3);
  });

  it('uses the CN of memberOf values, unescaped, as ML Server does', async () => {
    expect((await provider().verify('gina', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['R&D, Labs']);
  });

  it('nested: none keeps the direct groups only', async () => {
    expect((await provider({ groups: groups({ nested: 'none' }) }).verify('bob', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['groupA']);
  });

  it('source: search finds groups by member, with nesting', async () => {
    const p = provider({ groups: groups({ source: 'search' }) });
    expect((await p.verify('bob', LDAP_USER_PASSWORD, 1))?.groups).toEqual(['groupA', 'groupB']);
    expect((await p.verify('carol', LDAP_USER_PASSWORD, 1))?.groups).toEqual([]);
  });

  it("nested: inChain sends AD's in-chain rule with the user's DN as a value, never spliced into a filter string", async () => {
    // slapd does not implement 1.2.840.113556.1.4.1941 (it logs the clause as "(?=undefined)" and matches nothing),
    // so the wire bytes are checked through a recording TCP relay.
    const uid = 'p(a)r*en';
    const dn = await addUser(uid, ['groupA']);
    const sent: Buffer[] = [];
    const relay = createServer((inbound) => {
      const out = connect(slapd.port, '127.0.0.1');
      inbound.on('data', (b: Buffer) => sent.push(b));
      inbound.pipe(out).pipe(inbound);
      const end = () => (inbound.destroy(), out.destroy());
      inbound.on('error', end).on('close', end);
      out.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const port = (relay.address() as AddressInfo).port;
      const id = await provider({ port, groups: groups({ nested: 'inChain' }) }).verify(uid, LDAP_USER_PASSWORD, 1);
      const wire = Buffer.concat(sent);
      const tlv = (tag: number, v: string) => Buffer.concat([Buffer.from([tag, Buffer.byteLength(v)]), Buffer.from(v)]);
      // MatchingRuleAssertion: [1] matchingRule, [2] type, [3] assertion value = the DN exactly as the directory gave it.
      expect(wire.includes(Buffer.concat([tlv(0x81, '1.2.840.113556.1.4.1941'), tlv(0x82, 'member'), tlv(0x83, dn)]))).toBe(true);
      // OpenLDAP matches nothing for the unknown rule: the direct memberOf groups remain.
      expect(id?.groups).toEqual(['groupA']);
    } finally {
      relay.close();
    }
  });
});

describe('TLS', () => {
  const ca = () => readFileSync(slapd.caFile);
  const wrongCa = () => readFileSync(slapd.wrongCaFile);

  it('LDAPS with the CA works', async () => {
    const p = provider({ useLDAPS: true, port: slapd.ldapsPort, ca: ca() });
    expect((await p.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
  });

  it('StartTLS with the CA works, and the user bind travels encrypted', async () => {
    const mark = await quietMark();
    const p = provider({ startTLS: true, ca: ca() });
    expect((await p.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
    await settle();
    const binds = lines(mark, /BIND dn=".*" mech=SIMPLE/);
    expect(binds.length).toBe(2);
    for (const b of binds) expect(b).toMatch(/ ssf=([1-9]\d*)/);
    expect(lines(mark, /STARTTLS/).length).toBeGreaterThanOrEqual(2);
  });

  it('StartTLS refused on the user connection (no bind sent yet) is 503, never 401', async () => {
    // A relay that passes the service connection through and answers the user connection's StartTLS with
    // unwillingToPerform (53), a code that on a bind would mean the user is refused.
    let connections = 0;
    const relay = createServer((inbound) => {
      const mine = ++connections;
      const out = connect(slapd.port, '127.0.0.1');
      let first = true;
      inbound.on('data', (b: Buffer) => {
        // The first message of the second connection is its StartTLS ExtendedRequest: answer it, refused.
        if (first && mine === 2 && b[0] === 0x30) {
          first = false;
          const idAt = (b[1]! & 0x80 ? 2 + (b[1]! & 0x7f) : 2);
          const id = b.subarray(idAt + 2, idAt + 2 + b[idAt + 1]!);
          const result = Buffer.from([0x0a, 0x01, 53, 0x04, 0x00, 0x04, 0x00]);
          const msg = Buffer.concat([Buffer.from([0x02, id.length]), id, Buffer.from([0x78, result.length]), result]);
          inbound.write(Buffer.concat([Buffer.from([0x30, msg.length]), msg]));
          return;
        }
        first = false;
        out.write(b);
      });
      out.on('data', (b: Buffer) => inbound.write(b));
      const end = () => (inbound.destroy(), out.destroy());
      inbound.on('error', end).on('close', end);
      out.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const p = provider({ port: (relay.address() as AddressInfo).port, startTLS: true, ca: ca() });
      const e = await caught(p.verify('alice', LDAP_USER_PASSWORD, 1));
      expect(connections).toBe(2);
      expect(e).toBeInstanceOf(DirectoryUnavailable);
      expect(e.detail).toMatch(/StartTLS refused/);
    } finally {
      relay.close();
    }
  });

  it.each([
    ['LDAPS', { useLDAPS: true }],
    ['StartTLS', { startTLS: true }],
  ] as const)('%s with the wrong CA is 503 with a TLS reason, never 401', async (_name, mode) => {
    const p = provider({ ...mode, ...('useLDAPS' in mode ? { port: slapd.ldapsPort } : {}), ca: wrongCa() });
    const mark = await quietMark();
    const e = await caught(p.verify('alice', LDAP_USER_PASSWORD, 1));
    expect(e).toBeInstanceOf(DirectoryUnavailable);
    expect(e.status).toBe(503);
    expect(e.code).toBe('directory_unavailable');
    expect(e.detail).toMatch(/TLS handshake refused: .*certificate.* \(check ldap.caFile/);
    await settle();
    expect(lines(mark, /BIND dn=/)).toEqual([]);
  });

  it('checks the certificate name: a host name not on the certificate is 503', async () => {
    const p = provider({ useLDAPS: true, port: slapd.ldapsPort, ca: ca(), tlsServerName: 'ldap.example.com' });
    const e = await caught(p.verify('alice', LDAP_USER_PASSWORD, 1));
    expect(e).toBeInstanceOf(DirectoryUnavailable);
    expect(e.detail).toMatch(/TLS|altnames|ERR_TLS_CERT_ALTNAME_INVALID/);
  });
});

describe('directory failures are 503, never 401', () => {
  it('a refused service account is 503 with a hint', async () => {
    const e = await caught(provider({ queryUserPassword: 'not-the-service-pw' }).verify('alice', LDAP_USER_PASSWORD, 1));
    expect(e).toBeInstanceOf(DirectoryUnavailable);
    expect(e.detail).toMatch(/service account .* \(check queryUserDn and its password\)/);
  });

  it('nothing listening is 503', async () => {
    const e = await caught(provider({ port: 1 }).verify('alice', LDAP_USER_PASSWORD, 1));
    expect(e).toBeInstanceOf(DirectoryUnavailable);
    expect(e.detail).toMatch(/ECONNREFUSED/);
  });

  it('slapd stopped mid-run is 503; started again, the same provider logs users in', async () => {
    const p = provider();
    expect(await p.verify('alice', LDAP_USER_PASSWORD, 1)).not.toBeNull();
    await slapd.stop();
    try {
      const e = await caught(p.verify('alice', LDAP_USER_PASSWORD, 1));
      expect(e).toBeInstanceOf(DirectoryUnavailable);
      const chain = new CredentialChain([p], { maxConcurrent: 2 });
      expect(await caught(chain.verify('alice', LDAP_USER_PASSWORD))).toBeInstanceOf(DirectoryUnavailable);
    } finally {
      await slapd.start();
    }
    expect((await p.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
  });

  it('slapd frozen (SIGSTOP) is 503 within the timeout, on a kept and on a new connection; after SIGCONT it works', async () => {
    const kept = provider();
    expect(await kept.verify('alice', LDAP_USER_PASSWORD, 1)).not.toBeNull();
    const fresh = provider();
    slapd.pause();
    try {
      for (const p of [kept, fresh]) {
        const t0 = Date.now();
        const e = await caught(p.verify('alice', LDAP_USER_PASSWORD, 1));
        const took = Date.now() - t0;
        expect(e).toBeInstanceOf(DirectoryUnavailable);
        expect(e.detail).toMatch(/timed out|no answer within/);
        expect(took).toBeLessThan(1000 + 1000 + 1000 + 500); // connect + 2 operations at most, never hangs
      }
    } finally {
      slapd.resume();
    }
    expect((await kept.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
    expect((await fresh.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
  });

  it('a server that closed the idle service connection is reconnected transparently', async () => {
    const p = provider();
    expect(await p.verify('alice', LDAP_USER_PASSWORD, 1)).not.toBeNull();
    await slapd.stop();
    await slapd.start();
    expect((await p.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
  });
});

describe('revalidate (refresh)', () => {
  const login = async (p: LdapProvider, uid: string): Promise<Identity> => {
    const id = await p.verify(uid, LDAP_USER_PASSWORD, Date.now());
    if (!id) throw new Error(`${uid} did not log in`);
    return id;
  };

  it('returns the user as now, keeping subject and authTime', async () => {
    const p = provider();
    const id = await login(p, 'bob');
    expect(await p.revalidate(id, Date.now())).toEqual(id);
  });

  it('user deleted -> InvalidRefreshToken', async () => {
    const p = provider();
    const dn = await addUser('ivan', ['mlgate-owners']);
    const id = await login(p, 'ivan');
    await slapd.asAdmin((c) => c.del(dn));
    const e = await caught(p.revalidate(id, Date.now()));
    expect(e).toBeInstanceOf(InvalidRefreshToken);
    expect(e.detail).toMatch(/no longer in the directory/);
  });

  it('password changed after the login (ppolicy pwdChangedTime) -> InvalidRefreshToken; a change before the login is fine', async () => {
    const p = provider();
    const dn = await addUser('judy');
    await slapd.setPassword(dn, LDAP_USER_PASSWORD); // pwdChangedTime now
    await new Promise((r) => setTimeout(r, 1100)); // pwdChangedTime has one-second resolution
    const id = await login(p, 'judy');
    expect((await p.revalidate(id, Date.now())).subject).toBe('judy');
    await new Promise((r) => setTimeout(r, 1100));
    await slapd.setPassword(dn, 'a-new-Password-2');
    const e = await caught(p.revalidate(id, Date.now()));
    expect(e).toBeInstanceOf(InvalidRefreshToken);
    expect(e.detail).toMatch(/password changed after the login/);
  });

  it('a password an administrator reset (ppolicy pwdReset: must be changed first): login 401, refresh ends the session', async () => {
    const p = provider();
    const dn = await addUser('nina');
    const id = await login(p, 'nina');
    await slapd.asAdmin((c) => c.modify(dn, new Change({ operation: 'add', modification: new Attribute({ type: 'pwdReset', values: ['TRUE'] }) })));
    const atLogin = await caught(p.verify('nina', LDAP_USER_PASSWORD, Date.now()));
    expect(atLogin).toBeInstanceOf(InvalidCredentials);
    expect(atLogin.detail).toMatch(/pwdReset/);
    expect(await caught(p.revalidate(id, Date.now()))).toBeInstanceOf(InvalidRefreshToken);
  });

  it('group removed -> groups re-read', async () => {
    const p = provider();
    const dn = await addUser('kate', ['groupA', 'mlgate-owners']);
    const id = await login(p, 'kate');
    expect(id.groups).toEqual(['groupA', 'mlgate-owners', 'groupB']);
    await slapd.removeMember(ldapGroupDn('mlgate-owners'), dn);
    expect((await p.revalidate(id, Date.now())).groups).toEqual(['groupA', 'groupB']);
    await slapd.removeMember(ldapGroupDn('groupA'), dn);
    expect((await p.revalidate(id, Date.now())).groups).toEqual([]);
  });

  it('account locked after the login -> InvalidRefreshToken', async () => {
    const p = provider();
    const dn = await addUser('leo');
    const id = await login(p, 'leo');
    await slapd.asAdmin((c) =>
      c.modify(dn, new Change({ operation: 'add', modification: new Attribute({ type: 'pwdAccountLockedTime', values: [LDAP_PERMANENT_LOCK] }) })),
    );
    expect(await caught(p.revalidate(id, Date.now()))).toBeInstanceOf(InvalidRefreshToken);
  });

  it('no longer matching searchFilter (removed from the login group) -> InvalidRefreshToken', async () => {
    const p = provider({ searchFilter: `(&(uid={0})(memberOf=${ldapGroupDn('mlgate-owners')}))` });
    const dn = await addUser('mona', ['mlgate-owners']);
    const id = await login(p, 'mona');
    await slapd.removeMember(ldapGroupDn('mlgate-owners'), dn);
    expect(await caught(p.revalidate(id, Date.now()))).toBeInstanceOf(InvalidRefreshToken);
  });

  it('directory down during refresh is 503 (the family is not ended)', async () => {
    const p = provider();
    const id = await login(p, 'alice');
    slapd.pause();
    try {
      expect(await caught(p.revalidate(id, Date.now()))).toBeInstanceOf(DirectoryUnavailable);
    } finally {
      slapd.resume();
    }
  });
});

describe('configuration', () => {
  const base = {
    upstream: { url: 'https://127.0.0.1:1', caFile: 'x', clientCertFile: 'x', clientKeyFile: 'x' },
  };
  const ldap = { host: '127.0.0.1', searchBase: LDAP_BASE };
  const problems = (auth: unknown): string[] => {
    try {
      loadConfig({ base: { ...base, auth } as never, env: {} });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('accepts ML Server keys and applies the defaults', () => {
    const c = loadConfig({ base: { ...base, auth: { providers: ['ldap'], ldap } } as never, env: {} });
    expect(c.auth.ldap).toMatchObject({ searchFilter: 'cn={0}', uniqueUserIdentifierAttributeName: 'userPrincipalName', useLDAPS: false, timeoutMs: 5000 });
    expect(c.auth.ldap?.groups).toMatchObject({ source: 'memberOf', nested: 'recursive', maxDepth: 5 });
  });

  it.each([
    ['providers lists ldap without auth.ldap', { providers: ['ldap'] }, /auth.ldap: providers lists ldap/],
    ['useLDAPS and startTLS', { providers: ['ldap'], ldap: { ...ldap, useLDAPS: true, startTLS: true } }, /startTLS: use either/],
    ['queryUserDn without a password', { providers: ['ldap'], ldap: { ...ldap, queryUserDn: 'cn=x' } }, /queryUserDn: needs/],
    ['a password in two places', { providers: ['ldap'], ldap: { ...ldap, queryUserDn: 'cn=x', queryUserPasswordEnv: 'A', queryUserPasswordFile: '/f' } }, /not both/],
    ['a searchFilter without {0}', { providers: ['ldap'], ldap: { ...ldap, searchFilter: '(uid=alice)' } }, /searchFilter: must contain/],
    ['an unknown key', { providers: ['ldap'], ldap: { ...ldap, QueryUserPassword: 'secret' } }, /auth.ldap/],
  ])('refuses %s', (_name, auth, re) => {
    expect(problems(auth).join('\n')).toMatch(re);
  });

  it('production refuses plain LDAP unless allowPlainLdap is set', () => {
    const prod = (l: Record<string, unknown>) =>
      productionProblems(loadConfig({ base: { ...base, auth: { providers: ['ldap'], ldap: { ...ldap, ...l } } } as never, env: {} }), join(import.meta.dirname, '..', '..', 'certs-example')).join('\n');
    expect(prod({})).toMatch(/auth.ldap: user passwords would reach the directory in clear text/);
    expect(prod({ startTLS: true })).not.toMatch(/auth.ldap/);
    expect(prod({ useLDAPS: true })).not.toMatch(/auth.ldap/);
    expect(prod({ allowPlainLdap: true })).not.toMatch(/auth.ldap/);
  });

  it('refuses a filter that does not parse, at startup', () => {
    expect(() => new LdapProvider(options({ searchFilter: '(uid={0}' }))).toThrow(/ldap.searchFilter: not a valid LDAP filter/);
  });

  it('buildProviders reads the service password from the named env var or from a file, and fails clearly without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlgate-ldap-'));
    const file = join(dir, 'pw');
    writeFileSync(file, `${LDAP_SERVICE_PASSWORD}\n`);
    const cfg = (l: Record<string, unknown>) =>
      loadConfig({
        base: {
          ...base,
          auth: {
            providers: ['ldap'],
            ldap: { ...ldap, port: slapd.port, queryUserDn: LDAP_SERVICE_DN, searchBase: `ou=people,${LDAP_BASE}`, searchFilter: 'uid={0}', uniqueUserIdentifierAttributeName: 'uid', ...l },
          },
        } as never,
        env: {},
      }).auth;
    for (const [l, env] of [
      [{ queryUserPasswordEnv: 'LDAP_SVC_PW' }, { LDAP_SVC_PW: LDAP_SERVICE_PASSWORD }],
      [{ queryUserPasswordFile: file }, {}],
    ] as const) {
      const [p] = (await buildProviders(cfg(l), env)) as LdapProvider[];
      providers.push(p!);
      expect((await p!.verify('alice', LDAP_USER_PASSWORD, 1))?.subject).toBe('alice');
    }
    await expect(buildProviders(cfg({ queryUserPasswordEnv: 'LDAP_SVC_PW' }), {})).rejects.toThrow(/LDAP_SVC_PW is not set/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('helpers', () => {
  it('escapes DN values per RFC 4514', () => {
    expect(escapeDnValue('a,ou=x')).toBe('a\\,ou\\=x');
    expect(escapeDnValue(' #lead')).toBe('\\ #lead');
    expect(escapeDnValue('#x')).toBe('\\#x');
    expect(escapeDnValue('trail ')).toBe('trail\\ ');
    expect(escapeDnValue('q"+;<>\\')).toBe('q\\"\\+\\;\\<\\>\\\\');
    expect(escapeDnValue('nul\0')).toBe('nul\\00');
    expect(escapeDnValue('Zoë')).toBe('Zoë');
  });

  it('renders ML Server filter templates', () => {
    expect(renderFilter('cn={0}', 'bob')).toBe('(cn=bob)');
    expect(renderFilter('(&(sAMAccountName={0})(objectClass=user))', 'bob')).toBe('(&(sAMAccountName=bob)(objectClass=user))');
  });

  it('takes the CN of a memberOf DN', () => {
    expect(firstRdnValue('CN=Administrators,CN=Builtin,DC=test,DC=com')).toBe('Administrators');
    expect(firstRdnValue('cn=R&D\\, Labs,ou=groups,dc=x')).toBe('R&D, Labs');
    expect(firstRdnValue('CN=Z\\C3\\B6e,DC=x')).toBe('Zöe');
    expect(firstRdnValue('CN="a, b",DC=x')).toBe('a, b');
  });

  it("parses AD's data codes for the log", () => {
    expect(adBindReason('80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v2580')).toBe('AD data 775: account locked out');
    expect(adBindReason('data 52e, v4563')).toBe('AD data 52e: wrong password');
    expect(adBindReason('Invalid credentials')).toBeUndefined();
  });

  it('reads AD and OpenLDAP account state', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(fileTimeToMs('116444736000000000')).toBe(0);
    expect(generalizedTimeToMs('20260101000000Z')).toBe(now);
    expect(generalizedTimeToMs('20260101000000.5Z')).toBe(now + 500);
    expect(generalizedTimeToMs('202601010100+0100')).toBe(now);
    expect(disabledReason({ dn: 'x', userAccountControl: '514' }, now, false)).toMatch(/ACCOUNTDISABLE/);
    expect(disabledReason({ dn: 'x', userAccountControl: '512' }, now, false)).toBeUndefined();
    expect(disabledReason({ dn: 'x', accountExpires: '116444736000000000' }, now, false)).toMatch(/expired/);
    expect(disabledReason({ dn: 'x', accountExpires: '9223372036854775807' }, now, false)).toBeUndefined();
    expect(disabledReason({ dn: 'x', pwdAccountLockedTime: '20251231000000Z' }, now, false)).toBeUndefined(); // the bind decides
    expect(disabledReason({ dn: 'x', pwdAccountLockedTime: '20251231000000Z' }, now, true)).toMatch(/locked/);
    expect(disabledReason({ dn: 'x', lockoutTime: '134000000000000000' }, now, true)).toMatch(/lockoutTime/);
    expect(disabledReason({ dn: 'x', pwdReset: 'TRUE' }, now, false)).toMatch(/pwdReset/);
    expect(disabledReason({ dn: 'x', pwdReset: 'FALSE' }, now, false)).toBeUndefined();
    expect(passwordChangedAt({ dn: 'x', pwdLastSet: '0' })).toBe(Number.POSITIVE_INFINITY);
    expect(passwordChangedAt({ dn: 'x', pwdLastSet: String(116444736000000000n + BigInt(now) * 10_000n) })).toBe(now);
    expect(passwordChangedAt({ dn: 'x', pwdChangedTime: '20260101000000Z' })).toBe(now);
    expect(passwordChangedAt({ dn: 'x' })).toBeUndefined();
  });
});
