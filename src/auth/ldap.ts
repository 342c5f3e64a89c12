// The `ldap` credential provider (ldapts): ML Server's LDAP settings 1:1, search-then-bind (or a direct-bind DN
// template), groups from memberOf or a group search with nested groups, and a re-check of the user on refresh.
//
// Failure rules: a directory that cannot answer (down, slow, TLS refused, service account refused) is 503
// directory_unavailable, never 401; a refused user bind and an unknown user give the same 401 body.
import net from 'node:net';
import tls from 'node:tls';
import { AndFilter, Client, EqualityFilter, ExtensibleFilter, Filter, FilterParser, OrFilter, ResultCodeError, type Entry } from 'ldapts';
import { DirectoryUnavailable, GatewayError, InvalidCredentials, InvalidRefreshToken } from '../errors.ts';
import type { CredentialProvider, Identity } from './types.ts';

export const LDAP_PROVIDER = 'ldap';
/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: transitive group membership in one search. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';
/** ppolicy's administrative lock: locked until an administrator removes the attribute. */
const PERMANENT_LOCK = '000001010000Z';
const INVALID_CREDENTIALS = 49;
/**
 * Answers to a user bind that refuse this user (401): constraintViolation (locked/expired in some directories),
 * inappropriateAuthentication, invalidCredentials, insufficientAccessRights, unwillingToPerform. Anything else
 * (busy, unavailable, confidentialityRequired, ...) says nothing about the password: 503.
 */
const USER_REFUSED = new Set([19, 48, 49, 50, 53]);
const NO_SUCH_OBJECT = 32;
const INVALID_DN_SYNTAX = 34;
const GROUP_PAGE_SIZE = 500;
/** Member DNs per OR filter when walking nested groups level by level. */
const NESTED_CHUNK = 50;

export interface LdapGroupOptions {
  source: 'memberOf' | 'search';
  searchBase?: string | undefined;
  filter: string;
  memberAttribute: string;
  nameAttribute: string;
  nested: 'none' | 'inChain' | 'recursive';
  maxDepth: number;
}

export interface LdapOptions {
  host: string;
  port?: number | undefined;
  useLDAPS: boolean;
  startTLS: boolean;
  /** PEM CA bundle; absent = the system CAs. */
  ca?: string | Buffer | undefined;
  tlsServerName?: string | undefined;
  queryUserDn?: string | undefined;
  /** Never logged. */
  queryUserPassword?: string | undefined;
  searchBase: string;
  searchFilter: string;
  bindFilter?: string | undefined;
  uniqueUserIdentifierAttributeName: string;
  displayNameAttributeName: string;
  emailAttributeName: string;
  groups: LdapGroupOptions;
  connectTimeoutMs: number;
  timeoutMs: number;
}

// ---------------------------------------------------------------------------------------------------------
// Escaping and parsing helpers (exported for tests)

/** A search filter from an ML Server template: {0} = the value, escaped per RFC 4515; "cn={0}" gets parentheses. */
export function renderFilter(template: string, escapedValue: string): string {
  const f = template.split('{0}').join(escapedValue).trim();
  return f.startsWith('(') ? f : `(${f})`;
}

/** RFC 4514 escaping of an attribute value placed in a DN. */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if ((i === 0 && (ch === ' ' || ch === '#')) || (i === chars.length - 1 && ch === ' ')) out += `\\${ch}`;
    else if (ch < ' ' || ch === '\x7f') out += `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  });
  return out;
}

/** The value of a DN's first RDN, unescaped: "CN=R&D\, Labs,OU=Groups,DC=x" -> "R&D, Labs" (ML Server uses the CN). */
export function firstRdnValue(dn: string): string {
  const eq = dn.indexOf('=');
  if (eq < 0) return dn;
  const bytes: number[] = [];
  const push = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  let i = eq + 1;
  let quoted = false;
  if (dn[i] === '"') {
    quoted = true;
    i++;
  }
  for (; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === '\\') {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < dn.length) {
        push(dn[i + 1]!);
        i++;
      }
    } else if (quoted ? ch === '"' : ch === ',' || ch === '+' || ch === ';') {
      break;
    } else {
      push(ch);
    }
  }
  const value = Buffer.from(bytes).toString('utf8');
  return quoted ? value : value.trim();
}

/** AD's `data xxx` sub-codes of a refused bind (error 49). For logs only; clients always get one generic 401. */
const AD_BIND_CODES: Record<string, string> = {
  '525': 'user not found',
  '52e': 'wrong password',
  '530': 'logon not permitted at this time',
  '531': 'logon not permitted at this workstation',
  '532': 'password expired',
  '533': 'account disabled',
  '568': 'too many security ids',
  '701': 'account expired',
  '773': 'password must be reset',
  '775': 'account locked out',
};

export function adBindReason(message: string): string | undefined {
  const code = /\bdata ([0-9a-f]{3,4})\b/i.exec(message)?.[1]?.toLowerCase();
  if (!code) return undefined;
  return `AD data ${code}: ${AD_BIND_CODES[code] ?? 'unknown sub-code'}`;
}

/** Windows FILETIME (100 ns since 1601) -> ms since 1970. */
export function fileTimeToMs(v: string): number {
  return Number(BigInt(v) / 10_000n) - 11_644_473_600_000;
}

/** LDAP GeneralizedTime ("20260102030405Z", "20260102030405.123Z", "202601020304-0500") -> ms since 1970. */
export function generalizedTimeToMs(v: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?$/.exec(v.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi = '00', s = '00', frac = '0', zone = 'Z'] = m;
  let t = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi, +s) + Math.round(Number(`0.${frac}`) * 1000);
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    t -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5) || '0')) * 60_000;
  }
  return t;
}

function values(entry: Entry, name: string): string[] {
  const lc = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k === 'dn' || k.toLowerCase() !== lc) continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
  }
  return [];
}
const first = (entry: Entry, name: string): string | undefined => values(entry, name)[0];

/**
 * Why the account may not log in (or refresh), from the directory's own flags. `strict` (refresh) also counts
 * temporary lockouts; at login those are left to the directory's bind, which lifts them when they expire.
 */
export function disabledReason(entry: Entry, now: number, strict: boolean): string | undefined {
  const uac = first(entry, 'userAccountControl');
  if (uac !== undefined && (Number(uac) & 2) !== 0) return 'account disabled (AD userAccountControl ACCOUNTDISABLE)';
  const expires = first(entry, 'accountExpires');
  if (expires && expires !== '0' && expires !== '9223372036854775807' && /^\d+$/.test(expires) && fileTimeToMs(expires) <= now) {
    return 'account expired (AD accountExpires)';
  }
  const locked = first(entry, 'pwdAccountLockedTime');
  if (locked === PERMANENT_LOCK) return 'account locked by an administrator (pwdAccountLockedTime)';
  if (strict && locked) return 'account locked (pwdAccountLockedTime)';
  const lockout = first(entry, 'lockoutTime');
  if (strict && lockout && lockout !== '0') return 'account locked out (AD lockoutTime)';
  // OpenLDAP lets such a user bind, then allows nothing but a password change (AD refuses the bind itself).
  if (first(entry, 'pwdReset')?.toUpperCase() === 'TRUE') return 'the password must be changed first (ppolicy pwdReset after an administrator reset)';
  return undefined;
}

/** When the password last changed (ms), from AD pwdLastSet or ppolicy's pwdChangedTime. AD pwdLastSet 0 = must change now. */
export function passwordChangedAt(entry: Entry): number | undefined {
  const pwdLastSet = first(entry, 'pwdLastSet');
  if (pwdLastSet !== undefined && /^-?\d+$/.test(pwdLastSet)) {
    return pwdLastSet === '0' ? Number.POSITIVE_INFINITY : fileTimeToMs(pwdLastSet);
  }
  const changed = first(entry, 'pwdChangedTime');
  return changed === undefined ? undefined : generalizedTimeToMs(changed);
}

class LdapTimeout extends Error {}

function isTimeout(err: unknown): boolean {
  return err instanceof LdapTimeout || (err instanceof Error && /timed? ?out/i.test(err.message));
}

/** A log line for a failure, with a hint where one helps (TLS trust, service account). Never holds a password. */
function describe(err: unknown): string {
  if (err instanceof ResultCodeError) return `${err.name}: ${err.message}`;
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && /CERT|SSL|TLS|SIGNATURE|ISSUER|ALTNAME/.test(code)) {
    return `TLS handshake refused: ${err.message} [${code}] (check ldap.caFile / ldap.tlsServerName)`;
  }
  return typeof code === 'string' ? `${err.message} [${code}]` : err.message.replace(/\s+/g, ' ');
}

function within<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new LdapTimeout(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function drop(client: Client): void {
  client.unbind().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------

export class LdapProvider implements CredentialProvider {
  readonly name = LDAP_PROVIDER;
  private readonly o: LdapOptions;
  private readonly where: string;
  private readonly url: string;
  private readonly userAttributes: string[];
  /** The reused service-account connection (searches); user binds use their own short-lived connections. */
  private service: Client | undefined;
  private serviceOpening: Promise<Client> | undefined;
  private closed = false;

  constructor(options: LdapOptions) {
    this.o = options;
    if (options.useLDAPS && options.startTLS) throw new Error('ldap: use either useLDAPS or startTLS, not both');
    if (options.queryUserDn && !options.queryUserPassword) throw new Error('ldap: queryUserDn needs a password (an empty one is an anonymous bind)');
    const port = options.port ?? (options.useLDAPS ? 636 : 389);
    const host = net.isIPv6(options.host) ? `[${options.host}]` : options.host;
    this.url = `${options.useLDAPS ? 'ldaps' : 'ldap'}://${host}:${port}`;
    this.where = `${options.host}:${port}`;
    // Templates are checked once, at startup: a broken filter is a configuration error, not a 401.
    for (const [key, f] of [
      ['searchFilter', renderFilter(options.searchFilter, 'x')],
      ['searchFilter ({0} = *)', renderFilter(options.searchFilter, '*')],
      ['groups.filter', renderFilter(options.groups.filter, 'x')],
    ] as const) {
      try {
        FilterParser.parseString(f);
      } catch (err) {
        throw new Error(`ldap.${key}: not a valid LDAP filter: ${f} (${(err as Error).message})`);
      }
    }
    this.userAttributes = [
      ...new Set([
        options.uniqueUserIdentifierAttributeName,
        options.displayNameAttributeName,
        options.emailAttributeName,
        ...(options.groups.source === 'memberOf' ? ['memberOf'] : []),
        // Account state, AD and OpenLDAP ppolicy (operational attributes must be asked for by name).
        'userAccountControl',
        'accountExpires',
        'lockoutTime',
        'pwdLastSet',
        'pwdChangedTime',
        'pwdAccountLockedTime',
        'pwdReset',
      ]),
    ];
  }

  async verify(username: string, password: string, now: number): Promise<Identity | null> {
    // RFC 4513: a simple bind with an empty password is an unauthenticated bind that succeeds. Never send one.
    if (password.trim() === '') throw new InvalidCredentials('ldap: empty or whitespace-only password refused before any bind');
    try {
      const entry = await this.findUser(username);
      if (!entry) return null;
      const disabled = disabledReason(entry, now, false);
      if (disabled) throw new InvalidCredentials(`ldap: ${entry.dn}: ${disabled}`);
      await this.bindUser(entry.dn, password);
      const groups = await this.withService((c) => this.groupsOf(c, entry));
      return this.identity(entry, groups, now);
    } catch (err) {
      throw this.gatewayError(err, 'login');
    }
  }

  async revalidate(identity: Identity, now: number): Promise<Identity> {
    try {
      const unique = new EqualityFilter({ attribute: this.o.uniqueUserIdentifierAttributeName, value: identity.subject });
      // Search mode keeps the conditions of searchFilter (e.g. "only members of these groups may log in").
      const filter =
        this.o.bindFilter === undefined
          ? new AndFilter({ filters: [unique, FilterParser.parseString(renderFilter(this.o.searchFilter, '*'))] })
          : unique;
      const found = await this.withService((c) =>
        c.search(this.o.searchBase, { scope: 'sub', filter, attributes: this.userAttributes, sizeLimit: 2, timeLimit: this.timeLimit() }),
      );
      const entries = found.searchEntries;
      if (entries.length === 0) throw new InvalidRefreshToken(`ldap: ${identity.subject} is no longer in the directory (or no longer matches searchFilter)`);
      if (entries.length > 1) throw new InvalidRefreshToken(`ldap: ${identity.subject} matches ${entries.length} entries`);
      const entry = entries[0]!;
      const disabled = disabledReason(entry, now, true);
      if (disabled) throw new InvalidRefreshToken(`ldap: ${entry.dn}: ${disabled}`);
      const changed = passwordChangedAt(entry);
      if (changed !== undefined && changed > identity.authTime) {
        throw new InvalidRefreshToken(`ldap: ${entry.dn}: password changed after the login`);
      }
      const groups = await this.withService((c) => this.groupsOf(c, entry));
      return { ...this.identity(entry, groups, identity.authTime), subject: identity.subject };
    } catch (err) {
      throw this.gatewayError(err, 'refresh');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.service;
    this.service = undefined;
    if (c) await c.unbind().catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------------------

  private identity(entry: Entry, groups: string[], authTime: number): Identity {
    const subject = first(entry, this.o.uniqueUserIdentifierAttributeName);
    if (!subject) {
      throw new InvalidCredentials(`ldap: ${entry.dn} has no ${this.o.uniqueUserIdentifierAttributeName} (uniqueUserIdentifierAttributeName)`);
    }
    const email = first(entry, this.o.emailAttributeName);
    return {
      subject,
      displayName: first(entry, this.o.displayNameAttributeName) ?? subject,
      ...(email ? { email } : {}),
      groups,
      provider: LDAP_PROVIDER,
      authTime,
    };
  }

  private timeLimit(): number {
    return Math.max(1, Math.ceil(this.o.timeoutMs / 1000));
  }

  /** The user's entry, or null when the directory does not know the login name. Never picks one of several. */
  private async findUser(username: string): Promise<Entry | null> {
    if (this.o.bindFilter !== undefined) {
      const dn = this.o.bindFilter.split('{0}').join(escapeDnValue(username));
      try {
        const r = await this.withService((c) =>
          c.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: this.userAttributes, timeLimit: this.timeLimit() }),
        );
        return r.searchEntries[0] ?? null;
      } catch (err) {
        if (err instanceof ResultCodeError && (err.code === NO_SUCH_OBJECT || err.code === INVALID_DN_SYNTAX)) return null;
        throw err;
      }
    }
    let filter: Filter;
    try {
      filter = FilterParser.parseString(renderFilter(this.o.searchFilter, Filter.escape(username)));
    } catch (err) {
      throw new InvalidCredentials(`ldap: the login name gives no valid filter (${(err as Error).message})`);
    }
    const r = await this.withService((c) =>
      c.search(this.o.searchBase, { scope: 'sub', filter, attributes: this.userAttributes, sizeLimit: 2, timeLimit: this.timeLimit() }),
    );
    // Referrals (r.searchReferences) are not followed: the user must be under searchBase on this server.
    if (r.searchEntries.length > 1) {
      throw new InvalidCredentials(`ldap: ${r.searchEntries.length} or more entries match searchFilter for this login name; refusing to pick one`);
    }
    return r.searchEntries[0] ?? null;
  }

  /** Binds as the user on a connection of its own (a bind changes a connection's identity), then closes it. */
  private async bindUser(dn: string, password: string): Promise<void> {
    let client: Client | undefined;
    try {
      client = await this.openBound(dn, password);
    } catch (err) {
      if (err instanceof ResultCodeError && USER_REFUSED.has(err.code)) {
        const ad = adBindReason(err.message);
        throw new InvalidCredentials(`ldap: bind as ${dn} refused: ${err.name}${ad ? ` (${ad})` : ''}`);
      }
      throw new DirectoryUnavailable(`ldap ${this.where}: user bind: ${describe(err)}`);
    } finally {
      if (client) drop(client);
    }
  }

  /** Groups by name: memberOf CNs or a group search, plus nested groups (in-chain or bounded recursion). */
  private async groupsOf(c: Client, entry: Entry): Promise<string[]> {
    const g = this.o.groups;
    const found = new Map<string, { dn: string; name: string }>();
    const add = (dn: string, name: string): boolean => {
      const key = dn.toLowerCase().replace(/\s*,\s*/g, ',');
      if (found.has(key)) return false;
      found.set(key, { dn, name });
      return true;
    };
    const memberIs = (dn: string) => new EqualityFilter({ attribute: g.memberAttribute, value: dn });

    if (g.source === 'memberOf') {
      for (const dn of values(entry, 'memberOf')) add(dn, firstRdnValue(dn));
    } else {
      for (const e of await this.searchGroups(c, memberIs(entry.dn))) add(e.dn, this.groupName(e));
    }

    if (g.nested === 'inChain') {
      // The DN goes into the filter as a value object, never spliced into a filter string.
      const inChain = new ExtensibleFilter({ rule: IN_CHAIN_RULE, matchType: g.memberAttribute, value: entry.dn });
      for (const e of await this.searchGroups(c, inChain)) add(e.dn, this.groupName(e));
    } else if (g.nested === 'recursive') {
      let frontier = [...found.values()].map((x) => x.dn);
      for (let depth = 1; depth <= g.maxDepth && frontier.length > 0; depth++) {
        const next: string[] = [];
        for (let i = 0; i < frontier.length; i += NESTED_CHUNK) {
          const chunk = frontier.slice(i, i + NESTED_CHUNK);
          const cond = chunk.length === 1 ? memberIs(chunk[0]!) : new OrFilter({ filters: chunk.map(memberIs) });
          for (const e of await this.searchGroups(c, cond)) if (add(e.dn, this.groupName(e))) next.push(e.dn);
        }
        frontier = next;
      }
    }
    return [...new Set([...found.values()].map((x) => x.name).filter((n) => n !== ''))];
  }

  private groupName(e: Entry): string {
    return first(e, this.o.groups.nameAttribute) ?? firstRdnValue(e.dn);
  }

  private async searchGroups(c: Client, membership: Filter): Promise<Entry[]> {
    const g = this.o.groups;
    const filter = new AndFilter({ filters: [FilterParser.parseString(renderFilter(g.filter, '')), membership] });
    const r = await c.search(g.searchBase ?? this.o.searchBase, {
      scope: 'sub',
      filter,
      attributes: [g.nameAttribute],
      paged: { pageSize: GROUP_PAGE_SIZE },
      timeLimit: this.timeLimit(),
    });
    return r.searchEntries;
  }

  private tlsOptions(): tls.ConnectionOptions {
    const servername = this.o.tlsServerName ?? (net.isIP(this.o.host) ? undefined : this.o.host);
    return {
      ...(this.o.ca ? { ca: this.o.ca } : {}),
      ...(servername ? { servername } : {}),
      host: this.o.host,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    };
  }

  /**
   * A client that connects exactly once: ldapts reconnects silently when a connection dropped, and then runs
   * the operation unauthenticated (and, after StartTLS, in clear text). Here that attempt fails instead.
   */
  private newClient(): Client {
    let connects = 0;
    let secureConnects = 0;
    const createConnection = ((port: number, host: string) => {
      if (connects++ > 0) throw new Error('ldap connection lost; not reconnecting silently');
      const socket = net.connect(port, host);
      socket.unref();
      return socket;
    }) as unknown as typeof net.connect;
    const createSecureConnection = ((...args: unknown[]) => {
      if (secureConnects++ > 0) throw new Error('ldap connection lost; not reconnecting silently');
      const socket = (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args);
      socket.unref();
      return socket;
    }) as unknown as typeof tls.connect;
    return new Client({
      url: this.url,
      timeout: this.o.timeoutMs,
      connectTimeout: this.o.connectTimeoutMs,
      ...(this.o.useLDAPS ? { tlsOptions: this.tlsOptions() } : {}),
      createConnection,
      createSecureConnection,
    });
  }

  /** Connects (StartTLS first when configured) and binds; the whole sequence has one deadline. */
  private async openBound(dn: string, password: string): Promise<Client> {
    const client = this.newClient();
    const steps = async () => {
      if (this.o.startTLS) {
        try {
          await client.startTLS(this.tlsOptions());
        } catch (err) {
          // Refused before any bind was sent: the directory's doing, never the user's password (503, not 401). A
          // failed handshake keeps its own error (describe() names the certificate problem).
          if (err instanceof ResultCodeError) throw new Error(`StartTLS refused: ${describe(err)}`);
          throw err;
        }
      }
      await client.bind(dn, password);
    };
    try {
      await within(steps(), this.o.connectTimeoutMs + 2 * this.o.timeoutMs, `connect to ${this.where}`, () => drop(client));
      return client;
    } catch (err) {
      drop(client);
      throw err;
    }
  }

  private async serviceClient(): Promise<{ client: Client; reused: boolean }> {
    if (this.closed) throw new DirectoryUnavailable('ldap provider closed');
    const current = this.service;
    if (current?.isBound) return { client: current, reused: true };
    if (current) {
      this.service = undefined;
      drop(current);
    }
    this.serviceOpening ??= (async () => {
      try {
        // No queryUserDn: an explicit anonymous bind (empty DN and password), so "bound" means the same thing.
        const c = await this.openBound(this.o.queryUserDn ?? '', this.o.queryUserPassword ?? '');
        this.service = c;
        return c;
      } catch (err) {
        const who = this.o.queryUserDn ? `service account ${this.o.queryUserDn}` : 'anonymous bind';
        const hint = err instanceof ResultCodeError && err.code === INVALID_CREDENTIALS ? ' (check queryUserDn and its password)' : '';
        throw new DirectoryUnavailable(`ldap ${this.where}: ${who}: ${describe(err)}${hint}`);
      } finally {
        this.serviceOpening = undefined;
      }
    })();
    return { client: await this.serviceOpening, reused: false };
  }

  /**
   * Runs fn on the service connection. A reused connection that turns out to be dead (closed by the server
   * while idle) is replaced and fn retried once; a timeout is not retried (the directory is slow, say so).
   */
  private async withService<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { client, reused } = await this.serviceClient();
      try {
        const out = await fn(client);
        if (!client.isBound) throw new Error('the service connection closed during the operation');
        return out;
      } catch (err) {
        if (err instanceof ResultCodeError || err instanceof GatewayError) throw err; // the directory answered
        if (this.service === client) this.service = undefined;
        drop(client);
        if (reused && attempt === 0 && !isTimeout(err)) continue;
        throw err;
      }
    }
  }

  private gatewayError(err: unknown, what: string): GatewayError {
    if (err instanceof GatewayError) return err;
    return new DirectoryUnavailable(`ldap ${this.where}: ${what}: ${describe(err)}`);
  }
}
