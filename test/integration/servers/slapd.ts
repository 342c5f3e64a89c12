// A real OpenLDAP slapd for tests: free loopback ports, its own temp config dir, memberof + refint + ppolicy
// overlays, LDAPS and StartTLS with a CA made for it, and a directory of test users and nested groups.
// Installs slapd/ldap-utils with apt when they are missing and we are root. Nothing is mocked.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Change, Attribute } from 'ldapts';

export const SLAPD_BIN = '/usr/sbin/slapd';
export const LDAP_BASE = 'dc=mlgate,dc=test';
export const LDAP_ADMIN_DN = `cn=admin,${LDAP_BASE}`;
export const LDAP_ADMIN_PASSWORD = 'slapd-admin-pw';
export const LDAP_SERVICE_DN = `cn=mlgate-svc,ou=services,${LDAP_BASE}`;
export const LDAP_SERVICE_PASSWORD = 'svc-Secret-pw-1';
/** Password of every seeded test user (tests change some of them). */
export const LDAP_USER_PASSWORD = 'user-Secret-pw-1';
/** The administrative lock value of ppolicy: locked until an administrator removes it. */
export const LDAP_PERMANENT_LOCK = '000001010000Z';

export interface Slapd {
  host: string;
  port: number;
  ldapsPort: number;
  url: string;
  ldapsUrl: string;
  dir: string;
  /** CA that signed slapd's certificate (subjectAltName 127.0.0.1, localhost). */
  caFile: string;
  /** An unrelated CA: TLS with it must fail. */
  wrongCaFile: string;
  pid(): number | undefined;
  /** slapd's `-d stats` output so far (connections, BINDs, SRCH filters). */
  log(): string;
  /** Position in the log, for `logSince`. */
  mark(): number;
  logSince(mark: number): string;
  /** Runs fn with a client bound as the rootdn (fixture changes). */
  asAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T>;
  setPassword(dn: string, password: string): Promise<void>;
  addMember(ldapGroupDn: string, memberDn: string): Promise<void>;
  removeMember(ldapGroupDn: string, memberDn: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP: the kernel still accepts connections, slapd answers nothing. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export const ldapUserDn = (uid: string, ou = 'people'): string => `uid=${uid},ou=${ou},${LDAP_BASE}`;
export const ldapGroupDn = (cn: string): string => `cn=${cn},ou=groups,${LDAP_BASE}`;

function ensureInstalled(): void {
  if (existsSync(SLAPD_BIN) && existsSync('/usr/bin/ldapsearch')) return;
  if (process.getuid?.() !== 0) throw new Error('slapd/ldap-utils are missing: apt-get install -y slapd ldap-utils (or run the tests as root)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'slapd', 'ldap-utils'], { env, stdio: 'ignore' });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function makeCerts(dir: string): void {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ca = (name: string, cn: string) => {
    ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    writeFileSync(join(dir, `${name}.ext`), '[ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
    ossl('req', '-new', '-x509', '-key', `${name}.key`, '-sha256', '-days', '2', '-subj', `/CN=${cn}`, '-config', `${name}.ext`, '-extensions', 'ca', '-out', `${name}.crt`);
  };
  ca('ca', 'mlgate test slapd CA');
  ca('wrong-ca', 'mlgate test unrelated CA');
  ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'server.key');
  ossl('req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr');
  writeFileSync(
    join(dir, 'server.ext'),
    '[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '0x1234', '-days', '2', '-sha256', '-extfile', 'server.ext', '-extensions', 'leaf', '-out', 'server.crt');
}

function slapdConf(dir: string): string {
  return `# mlgate test slapd (generated)
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile ${dir}/ca.crt
TLSCertificateFile ${dir}/server.crt
TLSCertificateKeyFile ${dir}/server.key

database mdb
maxsize 33554432
suffix "${LDAP_BASE}"
rootdn "${LDAP_ADMIN_DN}"
rootpw ${LDAP_ADMIN_PASSWORD}
directory ${dir}/db
index objectClass eq
index uid,cn,member,memberOf eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay refint
refint_attributes member

overlay ppolicy
ppolicy_default "cn=default,ou=policies,${LDAP_BASE}"
ppolicy_use_lockout

access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`;
}

interface Seed {
  dn: string;
  attrs: Record<string, string | string[]>;
}

const person = (uid: string, cn: string, ou = 'people', extra: Record<string, string | string[]> = {}): Seed => ({
  dn: ldapUserDn(uid, ou),
  attrs: {
    objectClass: ['inetOrgPerson'],
    uid,
    cn,
    sn: cn.split(' ').pop() ?? cn,
    displayName: cn,
    mail: `${uid}@mlgate.test`,
    userPassword: LDAP_USER_PASSWORD,
    ...extra,
  },
});
const group = (cn: string, members: string[], rdnValue = cn): Seed => ({
  dn: ldapGroupDn(rdnValue),
  attrs: { objectClass: ['groupOfNames'], cn, member: members },
});

/**
 * The test directory. Users: alice (Owner via mlgate-owners), bob (groupA, nested in groupB), carol (no group),
 * dave (administratively locked), hank (groupA too, so bob can leave it), erin (chain1 -> chain2 -> chain3 -> chain4), frank (cycleC <-> cycleD),
 * gina (group `R&D, Labs`: a comma in the CN), and two entries with uid=twin.
 */
export function defaultLdapSeed(): Seed[] {
  const ou = (name: string): Seed => ({ dn: `ou=${name},${LDAP_BASE}`, attrs: { objectClass: ['organizationalUnit'], ou: name } });
  return [
    { dn: LDAP_BASE, attrs: { objectClass: ['dcObject', 'organization'], dc: 'mlgate', o: 'mlgate test' } },
    ou('people'),
    ou('contractors'),
    ou('groups'),
    ou('services'),
    ou('policies'),
    {
      dn: `cn=default,ou=policies,${LDAP_BASE}`,
      attrs: { objectClass: ['organizationalRole', 'pwdPolicy'], cn: 'default', pwdAttribute: 'userPassword', pwdLockout: 'TRUE', pwdMaxFailure: '0' },
    },
    {
      dn: LDAP_SERVICE_DN,
      attrs: { objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'mlgate-svc', userPassword: LDAP_SERVICE_PASSWORD },
    },
    person('alice', 'Alice Adams'),
    person('bob', 'Bob Brown'),
    person('carol', 'Carol Clark'),
    person('dave', 'Dave Davis', 'people', { pwdAccountLockedTime: LDAP_PERMANENT_LOCK }),
    person('erin', 'Erin Evans'),
    person('frank', 'Frank Fox'),
    person('gina', 'Gina Green'),
    person('hank', 'Hank Hill'),
    person('twin', 'Twin One'),
    person('twin', 'Twin Two', 'contractors'),
    group('mlgate-owners', [ldapUserDn('alice')]),
    group('groupA', [ldapUserDn('bob'), ldapUserDn('hank')]),
    group('groupB', [ldapGroupDn('groupA')]),
    group('chain1', [ldapUserDn('erin')]),
    group('chain2', [ldapGroupDn('chain1')]),
    group('chain3', [ldapGroupDn('chain2')]),
    group('chain4', [ldapGroupDn('chain3')]),
    group('cycleC', [ldapUserDn('frank')]),
    group('cycleD', [ldapGroupDn('cycleC')]),
    group('R&D, Labs', [ldapUserDn('gina')], 'R&D\\, Labs'),
  ];
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`slapd did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startSlapd(opts: { seed?: Seed[] } = {}): Promise<Slapd> {
  ensureInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'mlgate-slapd-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  mkdirSync(join(dir, 'db'));
  makeCerts(dir);
  writeFileSync(join(dir, 'slapd.conf'), slapdConf(dir));
  const port = await freePort();
  const ldapsPort = await freePort();
  const host = '127.0.0.1';
  let logText = '';
  let proc: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const child = spawn(SLAPD_BIN, ['-f', join(dir, 'slapd.conf'), '-h', `ldap://${host}:${port}/ ldaps://${host}:${ldapsPort}/`, '-d', 'stats'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc = child;
    // A test process that dies without close() must not leave slapd running.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      logText += s;
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`slapd exited with ${code}:\n${logText.slice(-2000)}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([Promise.all([waitForPort(port, 10_000), waitForPort(ldapsPort, 10_000)]), exited]);
  };

  const stop = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  };

  const asAdmin = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ url: `ldap://${host}:${port}`, timeout: 5000, connectTimeout: 5000 });
    try {
      await c.bind(LDAP_ADMIN_DN, LDAP_ADMIN_PASSWORD);
      return await fn(c);
    } finally {
      await c.unbind().catch(() => undefined);
    }
  };

  await start();
  try {
    await asAdmin(async (c) => {
      for (const e of opts.seed ?? defaultLdapSeed()) await c.add(e.dn, e.attrs);
    });
  } catch (err) {
    await stop();
    removeDir();
    throw err;
  }

  const modifyMember = (op: 'add' | 'delete') => (group: string, member: string) =>
    asAdmin((c) => c.modify(group, new Change({ operation: op, modification: new Attribute({ type: 'member', values: [member] }) })));

  return {
    host,
    port,
    ldapsPort,
    url: `ldap://${host}:${port}`,
    ldapsUrl: `ldaps://${host}:${ldapsPort}`,
    dir,
    caFile: join(dir, 'ca.crt'),
    wrongCaFile: join(dir, 'wrong-ca.crt'),
    pid: () => proc?.pid,
    log: () => logText,
    mark: () => logText.length,
    logSince: (mark) => logText.slice(mark),
    asAdmin,
    setPassword: (dn, password) =>
      asAdmin((c) => c.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }))),
    addMember: modifyMember('add'),
    removeMember: modifyMember('delete'),
    stop,
    start,
    pause: () => {
      if (!proc?.pid) return;
      proc.kill('SIGSTOP');
      // The stop is delivered asynchronously: wait until every thread is stopped, or a request sent right after
      // pause() can still be answered (seen on a loaded machine).
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && !/^\S+ \(.*\) T/.test(readFileSync(`/proc/${proc.pid}/stat`, 'utf8'))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    },
    resume: () => void proc?.kill('SIGCONT'),
    async close() {
      await stop();
      removeDir();
      process.removeListener('exit', removeDir);
    },
  };
}
