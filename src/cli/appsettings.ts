// ML Server web node appsettings.json -> mlgate config: what can be carried over, and warnings for what cannot.
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';

type Obj = Record<string, unknown>;

export interface ImportResult {
  config: Obj;
  warnings: string[];
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Keys in appsettings are PascalCase but .NET reads them case-insensitively; so do we. */
function get(o: unknown, ...path: string[]): unknown {
  let cur: unknown = o;
  for (const key of path) {
    if (!isObj(cur)) return undefined;
    const k = Object.keys(cur).find((x) => x.toLowerCase() === key.toLowerCase());
    cur = k === undefined ? undefined : cur[k];
  }
  return cur;
}

/** appsettings booleans are often strings ("True"). */
function bool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function int(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
  return n !== undefined && Number.isInteger(n) ? n : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()) : [];
}

/** "http://10.1.1.1-3:12805" -> three URIs (ML Server's BackEndConfiguration Uris.Ranges syntax). */
export function expandRange(range: string): string[] {
  const m = /^(\w+:\/\/)(\d+\.\d+\.\d+\.)(\d+)-(\d+)(.*)$/.exec(range.trim());
  if (!m) return [range.trim()];
  const [, scheme, prefix, from, to, rest] = m as unknown as [string, string, string, string, string, string];
  const out: string[] = [];
  for (let i = Number(from); i <= Math.min(Number(to), 255) && out.length < 256; i++) out.push(`${scheme}${prefix}${i}${rest}`);
  return out;
}

export interface ImportOptions {
  /** Where the files the config names will live: <dir>/tls, <dir>/keys, <dir>/secrets (default /etc/mlgate). */
  dir?: string;
}

export function importAppsettings(text: string, opts: ImportOptions = {}): ImportResult {
  const dir = (opts.dir ?? '/etc/mlgate').replace(/\/+$/, '');
  const errors: ParseError[] = [];
  const root = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (!isObj(root) || Object.keys(root).length === 0) {
    const first = errors[0];
    throw new Error(first ? `not valid JSON at offset ${first.offset}: ${printParseErrorCode(first.error)}` : 'the top level must be an object');
  }
  const warnings: string[] = errors.map(
    // The documentation's own samples miss commas; read what can be read and say where the file is broken.
    (e) => `appsettings is not valid JSON at offset ${e.offset} (${printParseErrorCode(e.error)}): read as far as possible, check the result`,
  );
  const providers: string[] = [];
  const auth: Obj = {};
  const config: Obj = { mode: 'production', auth };

  const ldap = get(root, 'Authentication', 'LDAP');
  if (isObj(ldap) && bool(get(ldap, 'Enabled'))) {
    providers.push('ldap');
    const out: Obj = {};
    const host = str(get(ldap, 'Host'));
    if (host) out.host = host;
    else warnings.push('LDAP.Host is empty: set auth.ldap.host');
    const port = int(get(ldap, 'Port'));
    if (port) out.port = port;
    const ldaps = bool(get(ldap, 'UseLDAPS'));
    if (ldaps !== undefined) out.useLDAPS = ldaps;
    if (!ldaps) warnings.push('LDAP.UseLDAPS is off: mlgate refuses plain LDAP in production; set auth.ldap.useLDAPS or auth.ldap.startTLS (or allowPlainLdap if you must)');
    if (bool(get(ldap, 'SkipCertificateValidation'))) warnings.push('LDAP.SkipCertificateValidation is not carried over: mlgate always validates; set auth.ldap.caFile to the directory CA');
    for (const [from, to] of [
      ['QueryUserDn', 'queryUserDn'],
      ['SearchBase', 'searchBase'],
      ['SearchFilter', 'searchFilter'],
      ['BindFilter', 'bindFilter'],
      ['UniqueUserIdentifierAttributeName', 'uniqueUserIdentifierAttributeName'],
      ['DisplayNameAttributeName', 'displayNameAttributeName'],
      ['EmailAttributeName', 'emailAttributeName'],
    ] as const) {
      const v = str(get(ldap, from));
      if (v) out[to] = v;
    }
    if (get(ldap, 'QueryUserPassword') !== undefined) {
      // Never copied: it may be encrypted with the web node's key, and a config file is no place for it anyway.
      out.queryUserPasswordEnv = 'MLGATE_LDAP_QUERY_PASSWORD';
      warnings.push('LDAP.QueryUserPassword is not copied: put the service account password in the environment variable MLGATE_LDAP_QUERY_PASSWORD (or use auth.ldap.queryUserPasswordFile)');
    }
    auth.ldap = out;
  }

  const aad = get(root, 'Authentication', 'AzureActiveDirectory');
  if (isObj(aad) && bool(get(aad, 'Enabled'))) {
    const authority = str(get(aad, 'Authority'));
    const audience = str(get(aad, 'Audience'));
    const clientId = str(get(aad, 'ClientId'));
    warnings.push(
      `AzureActiveDirectory is enabled (Authority ${authority ?? '?'}, Audience ${audience ?? '?'}, ClientId ${clientId ?? '?'}): ` +
        'configure auth.aad by hand (see README "Azure Active Directory"); the Key is never copied',
    );
  }

  const roles: Obj = {};
  for (const role of ['Owner', 'Contributor', 'Reader']) {
    const groups = strings(get(root, 'Authorization', role));
    if (groups.length > 0) roles[role] = groups;
  }
  if (Object.keys(roles).length > 0) auth.roles = roles;
  if (get(root, 'Authorization', 'CacheLifeTimeInMinutes') !== undefined) {
    warnings.push('Authorization.CacheLifeTimeInMinutes has no equivalent: mlgate re-reads groups at every refresh (tokens.accessTokenTtlSeconds bounds the delay)');
  }

  providers.push('admin');
  auth.providers = providers;
  auth.admin = { enabled: providers.length === 1, passwordHashFile: `${dir}/secrets/admin-hash` };
  warnings.push(`auth.admin: make the hash with \`mlgate hash-password\` into ${dir}/secrets/admin-hash (or disable the account)`);

  const server: Obj = { tls: { certFile: `${dir}/tls/edge.crt`, keyFile: `${dir}/tls/edge.key` } };
  const port = int(get(root, 'Kestrel', 'Port'));
  if (port) server.port = port;
  if (isObj(get(root, 'Kestrel', 'HttpsCertificate'))) {
    warnings.push('Kestrel.HttpsCertificate lives in a Windows certificate store: export it (with its key) to PEM and set server.tls.certFile/keyFile');
  }
  config.server = server;

  const uris = [
    ...strings(get(root, 'BackEndConfiguration', 'Uris', 'Values')),
    ...strings(get(root, 'BackEndConfiguration', 'Uris', 'Ranges')).flatMap(expandRange),
  ];
  const nodes = [...new Set(uris)].map((u) => {
    if (u.startsWith('http://')) {
      warnings.push(`${u}: mlgate talks to nodes over mutual TLS only; changed to https:// (enable HTTPS on the compute node, configure-https.md)`);
      return u.replace(/^http:\/\//, 'https://');
    }
    return u;
  });
  // The names `mlgate gen-certs <dir>/tls` writes; with your own PKI, point these at your files.
  const upstream: Obj = {
    caFile: `${dir}/tls/ca.crt`,
    clientCertFile: `${dir}/tls/gateway-client.crt`,
    clientKeyFile: `${dir}/tls/gateway-client.key`,
  };
  if (nodes.length === 1) upstream.url = nodes[0];
  else if (nodes.length > 1) upstream.nodes = nodes.map((url) => ({ url }));
  else {
    upstream.url = 'https://compute-node.example:12805';
    warnings.push('BackEndConfiguration.Uris lists no compute node: set upstream.url');
  }
  if (isObj(get(root, 'BackEndConfiguration', 'ClientCertificate'))) {
    warnings.push('BackEndConfiguration.ClientCertificate lives in a certificate store: export it to PEM for upstream.clientCertFile/clientKeyFile');
  }
  config.upstream = upstream;

  if (bool(get(root, 'Authentication', 'JWTSigningCertificate', 'Enabled'))) {
    warnings.push('JWTSigningCertificate is not carried over: mlgate signs with its own keys (`mlgate gen-key` into tokens.signingKeys)');
  }
  config.tokens = { signingKeys: [{ kid: 'key-1', privateKeyFile: `${dir}/keys/key-1.pem` }] };
  warnings.push(`tokens.signingKeys: \`mlgate gen-key ES256 > ${dir}/keys/key-1.pem\`; certificates: \`mlgate gen-certs ${dir}/tls\` or your own PKI`);
  return { config, warnings };
}
