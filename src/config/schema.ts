// The single source of configuration truth: defaults, validation, and (via `describe`) the README reference.
import { isIP } from 'node:net';
import { z } from 'zod';
import { compileRoutes, type RouteRule } from '../policy/routes.ts';

const seconds = (def: number, what: string) => z.number().int().positive().default(def).describe(what);
const ms = (def: number, what: string) => z.number().int().positive().default(def).describe(what);
const roleGroups = (role: string) => z.array(z.string().min(1)).optional().describe(`Groups (LDAP names, case-insensitive; Azure AD group object ids or app role values) whose members get role ${role}.`);

export const tlsFilesSchema = z.object({
  certFile: z.string().min(1).describe('PEM certificate chain file.'),
  keyFile: z.string().min(1).describe('PEM private key file.'),
});

export const serverSchema = z
  .object({
    host: z.string().default('0.0.0.0').describe('Address the edge listens on.'),
    port: z.number().int().min(0).max(65535).default(8443).describe('Edge port (MLGATE_PORT overrides).'),
    workers: z
      .union([z.literal('auto'), z.number().int().min(1).max(64)])
      .default(1)
      .describe("Processes serving the port (node cluster): a number, or 'auto' for one per core. Above 1 needs store.kind redis and signing keys from files."),
    tls: tlsFilesSchema
      .extend({
        minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted; 1.0/1.1 are never accepted.'),
        clientCaFile: z
          .string()
          .min(1)
          .optional()
          .describe('PEM CA bundle for client certificates at the edge (machine clients); needed by requestClientCert and requireClientCert.'),
        requestClientCert: z
          .boolean()
          .default(false)
          .describe('Ask clients for a certificate: one that is sent must chain to clientCaFile (else the connection is closed); clients without one still get in.'),
        requireClientCert: z.boolean().default(false).describe('Refuse the TLS handshake of any client without a certificate that chains to clientCaFile.'),
      })
      .strict()
      .superRefine((v, ctx) => {
        if ((v.requestClientCert || v.requireClientCert) && !v.clientCaFile) {
          ctx.addIssue({ code: 'custom', path: ['clientCaFile'], message: 'requestClientCert and requireClientCert need clientCaFile' });
        }
      })
      .optional()
      .describe('Edge HTTPS certificate, reloaded when the files change and on SIGHUP. Required unless allowPlainHttp is true.'),
    allowPlainHttp: z.boolean().default(false).describe('Serve plain HTTP instead of HTTPS. Only for a TLS-terminating load balancer in front; loudly logged.'),
    requestTimeoutMs: ms(120_000, 'Whole-request timeout for clients (slow uploads are cut after this).'),
    headersTimeoutMs: ms(15_000, 'Time a client has to send all request headers (slowloris guard).'),
    keepAliveTimeoutMs: ms(65_000, 'Idle keep-alive time for client connections.'),
    maxHeaderBytes: z.number().int().min(1024).max(1_048_576).default(16_384).describe('Largest request header block accepted (431 above).'),
    loginBodyLimitBytes: z.number().int().min(256).max(1_048_576).default(16_384).describe('Largest body accepted by /login and /login/refreshToken (413 above).'),
  })
  .strict();

export const adminProviderSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Enable the local admin account (always role Owner). Enabled automatically in dev mode.'),
    username: z.string().min(1).default('admin').describe('Login name of the local administrator.'),
    passwordHash: z.string().startsWith('$argon2id$').optional().describe('argon2id hash (`mlgate hash-password`). Required when enabled, unless passwordHashFile is set.'),
    passwordHashFile: z.string().optional().describe('File holding the argon2id hash instead of passwordHash.'),
  })
  .strict();

export const ldapGroupsSchema = z
  .object({
    source: z
      .enum(['memberOf', 'search'])
      .default('memberOf')
      .describe("Where a user's groups come from: the user's memberOf values (the CN of each DN, as ML Server), or a search for groups whose memberAttribute holds the user's DN."),
    searchBase: z.string().min(1).optional().describe('Base of group searches (group source search, nested-group lookups). Default: ldap.searchBase.'),
    filter: z
      .string()
      .min(1)
      .default('(|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))')
      .describe('LDAP filter (RFC 4515) that selects group entries; combined with the membership condition.'),
    memberAttribute: z.string().min(1).default('member').describe('Group attribute that holds member DNs (member, uniqueMember).'),
    nameAttribute: z
      .string()
      .min(1)
      .default('cn')
      .describe('Group attribute used as the group name matched against auth.roles, for groups found by search (memberOf values use the CN of the DN).'),
    nested: z
      .enum(['none', 'inChain', 'recursive'])
      .default('recursive')
      .describe("Nested groups: none; inChain = Active Directory's LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941), one search; recursive = parent groups level by level up to maxDepth, cycles ignored (any directory)."),
    maxDepth: z.number().int().min(1).max(50).default(5).describe('recursive: nesting levels followed above the direct groups.'),
  })
  .strict();

export const ldapProviderSchema = z
  .object({
    host: z.string().min(1).describe("Directory server name or address (ML Server 'Host')."),
    port: z.number().int().min(1).max(65535).optional().describe("Directory port (ML Server 'Port'). Default 389, or 636 with useLDAPS."),
    useLDAPS: z.boolean().default(false).describe("Connect with LDAP over TLS, ldaps:// (ML Server 'UseLDAPS')."),
    startTLS: z.boolean().default(false).describe('Upgrade the plain LDAP connection with StartTLS before any bind (not together with useLDAPS).'),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe("PEM CA bundle that signs the directory's certificate (default: the system CAs). The certificate name is always checked."),
    tlsServerName: z.string().min(1).optional().describe('Name expected on the directory certificate when it differs from host.'),
    allowPlainLdap: z
      .boolean()
      .default(false)
      .describe('Production: allow useLDAPS and startTLS both off, i.e. user passwords sent to the directory in clear text. Refused unless set.'),
    queryUserDn: z
      .string()
      .min(1)
      .optional()
      .describe("DN of the read-only service account that searches users and groups (ML Server 'QueryUserDn'). Absent: searches are anonymous."),
    queryUserPasswordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("Name of the environment variable holding the service account password (ML Server 'QueryUserPassword'). Never logged."),
    queryUserPasswordFile: z
      .string()
      .min(1)
      .optional()
      .describe('File holding the service account password instead (a trailing newline is ignored). Never logged.'),
    searchBase: z.string().min(1).describe("Where users are searched (ML Server 'SearchBase'), e.g. ou=users,dc=example,dc=com."),
    searchFilter: z
      .string()
      .min(1)
      .default('cn={0}')
      .describe("User search filter (ML Server 'SearchFilter'); {0} is the login name, escaped per RFC 4515. On refresh it is applied with {0} = * so conditions in it (group restrictions) keep applying."),
    bindFilter: z
      .string()
      .min(1)
      .optional()
      .describe("Direct bind instead of search-then-bind: DN template (ML Server 9.0.1 'BindFilter'), e.g. CN={0},CN=DeployR,DC=TEST,DC=COM; {0} is the login name, escaped per RFC 4514."),
    uniqueUserIdentifierAttributeName: z
      .string()
      .min(1)
      .default('userPrincipalName')
      .describe("Attribute whose value identifies the user in mlgate: token subject, service owner (ML Server 'UniqueUserIdentifierAttributeName'). Do not change it once users publish services."),
    displayNameAttributeName: z.string().min(1).default('displayName').describe("Attribute holding the display name (ML Server 'DisplayNameAttributeName')."),
    emailAttributeName: z.string().min(1).default('mail').describe("Attribute holding the email address (ML Server 'EmailAttributeName')."),
    groups: ldapGroupsSchema.default(ldapGroupsSchema.parse({})).describe('Group membership, mapped to roles by auth.roles.'),
    connectTimeoutMs: ms(3_000, 'Connect timeout, TLS handshake included; slower = 503 directory_unavailable.'),
    timeoutMs: ms(5_000, 'Time allowed for each LDAP operation (bind, search); slower = 503 directory_unavailable.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (v.useLDAPS && v.startTLS) issue('startTLS', 'use either useLDAPS or startTLS, not both');
    if (v.queryUserPasswordEnv && v.queryUserPasswordFile) issue('queryUserPasswordFile', 'set queryUserPasswordEnv or queryUserPasswordFile, not both');
    const hasPassword = v.queryUserPasswordEnv !== undefined || v.queryUserPasswordFile !== undefined;
    if (v.queryUserDn && !hasPassword) issue('queryUserDn', 'needs queryUserPasswordEnv or queryUserPasswordFile (a bind with an empty password is anonymous)');
    if (!v.queryUserDn && hasPassword) issue('queryUserDn', 'a service account password is set but queryUserDn is not');
    if (!v.searchFilter.includes('{0}')) issue('searchFilter', 'must contain {0} (the login name)');
    if (v.bindFilter !== undefined && !v.bindFilter.includes('{0}')) issue('bindFilter', 'must contain {0} (the login name)');
  });

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const aadUrl = z
  .string()
  .url()
  .refine((u) => u.startsWith('https://'), 'must be an https:// URL');

export const aadProviderSchema = z
  .object({
    authority: aadUrl
      .default('https://login.microsoftonline.com')
      .describe("Azure AD authority host, without the tenant (ML Server 'Authority' minus its last segment; login.windows.net is the legacy alias). Discovery, token endpoint and the v2 issuer are {authority}/{tenantId}/..."),
    tenantId: z
      .string()
      .regex(GUID_RE, 'the Directory (tenant) ID, a GUID (not the domain name): tokens carry it in tid')
      .describe('Directory (tenant) ID, a GUID; tokens of other tenants are refused.'),
    audiences: z
      .array(z.string().min(1))
      .min(1)
      .describe("Accepted `aud` values: the WEB app's Application (client) ID and/or its Application ID URI (ML Server 'Audience'; remoteLoginAAD's resource)."),
    clientId: z
      .string()
      .regex(GUID_RE, 'an Application (client) ID, a GUID')
      .optional()
      .describe("The WEB app's Application (client) ID, used with the client secret for Microsoft Graph (groups overage) and password login. Not the native app's ClientId."),
    clientSecretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("Name of the environment variable holding the web app's client secret (ML Server 'Key'). Never logged."),
    clientSecretFile: z.string().min(1).optional().describe('File holding the client secret instead (a trailing newline is ignored). Never logged.'),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM CA bundle trusted for the authority and Graph HTTPS connections (default: the system CAs).'),
    graphBaseUrl: aadUrl.default('https://graph.microsoft.com').describe('Microsoft Graph base URL (national clouds differ); groups overage and refresh checks call {graphBaseUrl}/v1.0/...'),
    acceptV1Issuer: z.boolean().default(true).describe('Accept v1.0 tokens, issuer {v1IssuerBaseUrl}/{tenantId}/ (what remoteLoginAAD/ADAL gets when the app has accessTokenAcceptedVersion 1 or null).'),
    acceptV2Issuer: z.boolean().default(true).describe('Accept v2.0 tokens, issuer {authority}/{tenantId}/v2.0.'),
    v1IssuerBaseUrl: aadUrl.default('https://sts.windows.net').describe('Base of the v1.0 issuer (https://sts.windows.net in the public cloud).'),
    passwordLogin: z
      .boolean()
      .default(false)
      .describe('POST /login with Azure AD user@domain and password (resource-owner password grant; no MFA, no federated accounts) issues mlgate tokens. Needs clientId and a client secret.'),
    passwordLoginScope: z
      .string()
      .min(1)
      .optional()
      .describe('Scope requested by the password grant; its token must pass the bearer checks. Default {clientId}/.default.'),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(60).describe('Allowed clock skew for exp/nbf of Azure AD tokens.'),
    jwksCacheMaxAgeSeconds: z
      .number()
      .int()
      .positive()
      .default(3600)
      .describe("How long the tenant's signing keys are used before they are fetched again; while the key endpoint is down, the keys held keep verifying."),
    jwksCooldownSeconds: z
      .number()
      .int()
      .min(0)
      .default(30)
      .describe('An unknown kid refetches the keys at most once per this many seconds (jose cooldown); other unknown kids in between are refused.'),
    groupsSecurityEnabledOnly: z
      .boolean()
      .default(true)
      .describe("Graph getMemberObjects securityEnabledOnly: true matches the app's groupMembershipClaims SecurityGroup, false matches All."),
    maxTokenLifetimeSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(86_400)
      .describe('Azure AD tokens living longer (exp - iat) are refused; user revocations are kept this long so they cover every accepted token.'),
    timeoutMs: ms(5_000, 'Time allowed for each call to the authority (discovery, keys, token endpoint) and Graph; slower = 503 directory_unavailable.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (v.clientSecretEnv && v.clientSecretFile) issue('clientSecretFile', 'set clientSecretEnv or clientSecretFile, not both');
    const hasSecret = v.clientSecretEnv !== undefined || v.clientSecretFile !== undefined;
    if (hasSecret && !v.clientId) issue('clientId', 'a client secret is set but clientId (the web app it belongs to) is not');
    if (v.passwordLogin && (!v.clientId || !hasSecret)) issue('passwordLogin', 'needs clientId and clientSecretEnv or clientSecretFile');
    if (!v.acceptV1Issuer && !v.acceptV2Issuer) issue('acceptV2Issuer', 'accept at least one issuer form (v1 or v2)');
  });

export const authSchema = z
  .object({
    providers: z
      .array(z.enum(['admin', 'ldap', 'aad']))
      .min(1)
      .default(['admin'])
      .describe('Credential providers in the order they are asked; the first that knows the user decides.'),
    admin: adminProviderSchema.default({ enabled: false, username: 'admin' }),
    ldap: ldapProviderSchema.optional().describe("LDAP / Active Directory provider (ML Server appsettings.json 'LDAP'); required when providers lists ldap."),
    aad: aadProviderSchema
      .optional()
      .describe("Azure Active Directory provider (ML Server appsettings.json 'AzureActiveDirectory'): Azure AD bearer tokens (remoteLoginAAD) and optional password login; required when providers lists aad."),
    roles: z
      .object({ Owner: roleGroups('Owner'), Contributor: roleGroups('Contributor'), Reader: roleGroups('Reader') })
      .strict()
      .default({})
      .describe("Groups mapped to ML Server roles (appsettings.json 'Authorization'); the implicit-role table applies to users without a role."),
    maxConcurrentPasswordChecks: z.number().int().positive().default(4).describe('argon2 verifications run at once (each takes 64 MiB); more wait in line.'),
    throttle: z
      .object({
        enabled: z.boolean().default(true).describe('Answer 429 with Retry-After after too many failed logins.'),
        windowSeconds: z.number().int().positive().default(900).describe('Counting window, and the longest any block lasts.'),
        perAddress: z.number().int().positive().default(30).describe('Failed logins from one client address (any user) per window.'),
        perUserAndAddress: z.number().int().positive().default(5).describe('Failed logins for one user from one address per window.'),
        perUser: z.number().int().positive().default(100).describe('Failed logins for one user from all addresses per window (a distributed attack can block the user for one window at most).'),
      })
      .strict()
      .default({ enabled: true, windowSeconds: 900, perAddress: 30, perUserAndAddress: 5, perUser: 100 })
      .describe('Login throttling: counters in Redis (shared by every instance) with store.kind redis, else in memory per instance.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.providers.includes('ldap') && !v.ldap) ctx.addIssue({ code: 'custom', path: ['ldap'], message: 'providers lists ldap but auth.ldap is not configured' });
    if (v.providers.includes('aad') && !v.aad) ctx.addIssue({ code: 'custom', path: ['aad'], message: 'providers lists aad but auth.aad is not configured' });
  });

export const tokensSchema = z
  .object({
    issuer: z.string().min(1).default('mlgate').describe('`iss` of access tokens.'),
    audience: z.string().min(1).default('mlserver').describe('`aud` of access tokens.'),
    algorithm: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256').describe('Signing algorithm of access tokens.'),
    signingKeys: z
      .array(
        z
          .object({
            kid: z.string().min(1).describe('Key id published in the JWKS.'),
            privateKeyFile: z.string().min(1).describe('PKCS#8 PEM private key.'),
            active: z.boolean().default(true).describe('Signs new tokens; inactive keys only verify (rotation overlap).'),
          })
          .strict(),
      )
      .default([])
      .describe('Signing keys (shared by every instance). Empty = a key generated at start: dev mode only.'),
    accessTokenTtlSeconds: seconds(3600, 'Access token lifetime (ML Server: 3600).'),
    refreshIdleTtlSeconds: seconds(14 * 24 * 3600, 'A refresh token unused this long expires (ML Server: 14 days).'),
    refreshMaxLifetimeSeconds: seconds(90 * 24 * 3600, 'A refresh family ends this long after its login (ML Server: 90 days).'),
    reuseGraceSeconds: z.number().int().min(0).max(300).default(0).describe('0 = strict (ML Server): any reuse of a consumed refresh token revokes the family. >0: a replay within this window gets the same successor back.'),
    graceKeyFile: z.string().optional().describe('32-byte key (base64) that seals successors during the reuse grace window; generated at start when absent (then all instances must share one via this file).'),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30).describe('Allowed clock skew for exp/nbf/iat.'),
    verifiedCacheSize: z.number().int().min(0).default(100_000).describe('Verified access tokens kept in memory so the hot path computes no signature.'),
  })
  .strict();

const redisEndpoint = z
  .object({
    host: z.string().min(1).describe('Host name or address.'),
    port: z.number().int().min(1).max(65535).describe('TCP port.'),
  })
  .strict();

export const redisSchema = z
  .object({
    mode: z
      .enum(['standalone', 'sentinel', 'cluster'])
      .default('standalone')
      .describe('Topology: one server (url), Sentinel-managed master and replicas (sentinels + masterName), or Redis Cluster (nodes).'),
    url: z
      .string()
      .regex(/^rediss?:\/\/[^/]+(\/\d+)?$/, 'must be redis://host:port or rediss://host:port (optionally /db)')
      .optional()
      .describe('standalone: redis://host:port, or rediss:// for TLS. Put no password in it: use password or passwordFile.'),
    sentinels: z.array(redisEndpoint).default([]).describe('sentinel: the Sentinel processes asked for the current master (list them all).'),
    masterName: z.string().min(1).optional().describe('sentinel: the name the Sentinels monitor (`sentinel monitor <name> ...`).'),
    nodes: z.array(redisEndpoint).default([]).describe('cluster: some nodes of the cluster; the others are discovered.'),
    username: z.string().min(1).optional().describe('ACL user (Redis 6+); the default user when absent.'),
    password: z.string().min(1).optional().describe('Password of that user (prefer passwordFile, or MLGATE_STORE__REDIS__PASSWORD).'),
    passwordFile: z.string().min(1).optional().describe('File holding the password instead (a trailing newline is ignored).'),
    sentinelPassword: z.string().min(1).optional().describe('sentinel: password of the Sentinels themselves, when they require one.'),
    sentinelPasswordFile: z.string().min(1).optional().describe('sentinel: file holding the Sentinel password instead.'),
    tls: z
      .object({
        caFile: z.string().min(1).describe('PEM CA bundle that signs the Redis server certificates.'),
        certFile: z.string().min(1).optional().describe('Client certificate, when Redis requires one (tls-auth-clients).'),
        keyFile: z.string().min(1).optional().describe('Key of the client certificate.'),
        servername: z.string().min(1).optional().describe('Name expected on the server certificate when it differs from the host.'),
      })
      .strict()
      .optional()
      .describe('TLS to Redis (to the Sentinels too in sentinel mode); absent = plain TCP.'),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits and _ . : - only (no braces: keys carry Cluster hash tags)')
      .default('mlgate:')
      .describe('Prefix of every key and of the revocation channel; instances that share state use the same prefix.'),
    commandTimeoutMs: ms(1_000, 'A command not answered within this fails: the request gets 503 store_unavailable instead of hanging.'),
    connectTimeoutMs: ms(2_000, 'TCP (+TLS) connect timeout to Redis and to the Sentinels.'),
    minReplicaAcks: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe('standalone/sentinel: after every write (login, refresh, revocation) wait (WAIT) until this many replicas have it, else answer 503 and hand out nothing, so a failover cannot lose a rotation or resurrect a revoked family. 1 with Sentinel.'),
    replicaAckTimeoutMs: ms(250, 'How long a write waits for minReplicaAcks replicas (below commandTimeoutMs).'),
    feedCheckIntervalMs: ms(1_000, 'How often the revocation feed connection is PINGed; a failed PING marks the feed lost (revocation.maxStalenessSeconds runs from then) and reconnects.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (v.mode === 'standalone' && !v.url) issue('url', 'mode standalone needs url (redis://host:port)');
    if (v.mode !== 'standalone' && v.url) issue('url', `url is for mode standalone; mode ${v.mode} uses ${v.mode === 'sentinel' ? 'sentinels' : 'nodes'}`);
    if (v.mode === 'sentinel' && v.sentinels.length === 0) issue('sentinels', 'mode sentinel needs at least one sentinel');
    if (v.mode === 'sentinel' && !v.masterName) issue('masterName', 'mode sentinel needs masterName');
    if (v.mode === 'cluster' && v.nodes.length === 0) issue('nodes', 'mode cluster needs at least one node');
    if (v.password && v.passwordFile) issue('passwordFile', 'set password or passwordFile, not both');
    if (v.sentinelPassword && v.sentinelPasswordFile) issue('sentinelPasswordFile', 'set sentinelPassword or sentinelPasswordFile, not both');
    if (v.tls && (v.tls.certFile === undefined) !== (v.tls.keyFile === undefined)) issue('tls', 'certFile and keyFile go together');
    if (v.mode === 'cluster' && v.minReplicaAcks > 0) issue('minReplicaAcks', 'not supported in mode cluster (WAIT must reach the node that took the write)');
    if (v.replicaAckTimeoutMs >= v.commandTimeoutMs) issue('replicaAckTimeoutMs', 'must be below commandTimeoutMs');
  });

export const storeSchema = z
  .object({
    kind: z.enum(['memory', 'redis']).default('memory').describe('Token store: memory (one instance only) or redis (instances that share it share sessions and revocations).'),
    redis: redisSchema.optional().describe('The Redis connection; required when kind is redis.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.kind === 'redis' && !v.redis) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'store.kind is redis but store.redis is not configured' });
  });

export const revocationSchema = z
  .object({
    maxStalenessSeconds: seconds(30, 'If the revocation view cannot be confirmed fresh for longer than this, gateway-token requests fail closed with 503.'),
  })
  .strict();

const httpsUrl = z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL (mutual TLS)');

export const upstreamNodeSchema = z
  .object({
    url: httpsUrl.describe('Base URL of this node, https://host:port.'),
    servername: z.string().min(1).optional().describe("TLS server name expected on this node's certificate (default: upstream.servername, else the URL host)."),
    assertionAudience: z
      .string()
      .min(1)
      .optional()
      .describe('`aud` of the assertions this node receives (default: upstream.assertionAudience). Nodes with the same audience share one assertion per access token.'),
  })
  .strict();

export const serviceAccountSchema = z
  .object({
    loginUrl: httpsUrl
      .optional()
      .describe("Base URL of the ML Server web node mlgate logs in to (POST /login there). Default: each node's own URL, with one login per node."),
    username: z.string().min(1).describe("The service account's ML Server user name (local admin or a directory account)."),
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe('Name of the environment variable holding its password. Never logged.'),
    passwordFile: z.string().min(1).optional().describe('File holding its password instead (a trailing newline is ignored). Never logged.'),
    refreshBeforeSeconds: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe("Renew the node's access token (POST /login/refreshToken, or a fresh /login if that fails) this long before it expires."),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.passwordEnv === undefined) === (v.passwordFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: 'set exactly one of passwordEnv or passwordFile' });
    }
  });

const healthCheckDefaults = { enabled: true, path: '/status', intervalMs: 5_000, timeoutMs: 2_000, unhealthyAfter: 2, healthyAfter: 2 };

export const healthCheckSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Probe every node in the background; a node that fails unhealthyAfter probes in a row gets no requests until healthyAfter probes in a row succeed.'),
    path: z
      .string()
      .startsWith('/')
      .default('/status')
      .describe('Probed with GET over the same mutual TLS. Any HTTP answer below 500 counts as up (401 included: ML Server asks for a token on /status).'),
    intervalMs: ms(5_000, 'Time between probes of one node.'),
    timeoutMs: ms(2_000, 'A probe not answered within this fails (the next probe waits for it).'),
    unhealthyAfter: z.number().int().min(1).default(2).describe('Failed probes in a row that take a node out.'),
    healthyAfter: z.number().int().min(1).default(2).describe('Successful probes in a row that bring it back.'),
  })
  .strict();

export const upstreamSchema = z
  .object({
    url: httpsUrl.optional().describe('Single-node shorthand: base URL of the operationalization node. Set url or nodes, not both.'),
    nodes: z
      .array(upstreamNodeSchema)
      .min(1)
      .optional()
      .describe('Several nodes: requests go round robin over the healthy ones. Set url or nodes, not both.'),
    servername: z.string().optional().describe('TLS server name expected on the node certificate (default: the URL host); with nodes, the default for every node.'),
    caFile: z.string().min(1).describe('PEM CA bundle that signs the node certificates.'),
    clientCertFile: z.string().min(1).describe("The gateway's client certificate for mutual TLS."),
    clientKeyFile: z.string().min(1).describe("The gateway's client key for mutual TLS."),
    identity: z
      .enum(['assertion', 'passthrough', 'serviceAccount'])
      .default('assertion')
      .describe(
        "How the user reaches the node: assertion = a signed X-MLGate-Assertion (client Authorization dropped); passthrough = the client Authorization unchanged; serviceAccount = mlgate's own ML Server token (from the node's /login) as Authorization, the user in X-MLGate-Assertion.",
      ),
    serviceAccount: serviceAccountSchema.optional().describe('The ML Server account mlgate logs in with; required when identity is serviceAccount.'),
    assertionAudience: z.string().default('mlserver-node').describe('`aud` of the X-MLGate-Assertion JWT.'),
    assertionTtlSeconds: z.number().int().min(10).max(3600).default(60).describe('Lifetime of an assertion; reused until shortly before it expires.'),
    healthCheck: healthCheckSchema.default(healthCheckDefaults).describe('Active health checks of the nodes.'),
    ejectAfterFailures: z
      .number()
      .int()
      .min(1)
      .default(3)
      .describe('Passive ejection: a node whose requests fail this many times in a row without an HTTP answer (refused, reset, TLS error, timeout) gets no requests for ejectForMs.'),
    ejectForMs: ms(10_000, 'How long a passively ejected node is left out before it is tried again.'),
    connectTimeoutMs: ms(5_000, 'TCP+TLS connect timeout to a node (504).'),
    responseTimeoutMs: ms(120_000, 'Idle time allowed while waiting for the node to answer and between answer chunks (504 before the answer starts).'),
    maxSockets: z.number().int().positive().default(256).describe('Keep-alive connections per node.'),
    idleSocketTimeoutMs: ms(30_000, 'Idle keep-alive sockets to nodes are closed after this (keep below the node keep-alive timeout).'),
    bodyLimitBytes: z.number().int().positive().default(256 * 1024 * 1024).describe('Largest request body forwarded (413 above).'),
  })
  .strict()
  .superRefine((v, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if ((v.url === undefined) === (v.nodes === undefined)) issue('url', 'set exactly one of upstream.url (one node) or upstream.nodes (several)');
    if (v.identity === 'serviceAccount' && !v.serviceAccount) issue('serviceAccount', 'identity serviceAccount needs upstream.serviceAccount (username and passwordEnv or passwordFile)');
    if (v.identity !== 'serviceAccount' && v.serviceAccount) issue('serviceAccount', `is only used with identity serviceAccount (identity is ${v.identity})`);
    const urls = (v.nodes ?? []).map((n) => n.url.replace(/\/+$/, ''));
    if (new Set(urls).size !== urls.length) issue('nodes', 'a node is listed twice');
  });

export const policySchema = z
  .object({
    extraRoutes: z
      .array(
        z
          .object({
            id: z.string().min(1).describe('Unique rule name, shown in audit events and 403 answers.'),
            methods: z.array(z.string().regex(/^[A-Z]+$/)).min(1).describe('Upper-case HTTP methods the rule covers.'),
            pattern: z.string().startsWith('/').describe("Path pattern: '/fixed/{param}/...', a final '{rest*}' matches the remaining segments."),
            roles: z.array(z.enum(['Owner', 'Contributor', 'Reader'])).describe('Roles allowed; an empty list denies everyone.'),
            routeClass: z.string().default('custom').describe('Label for metrics.'),
          })
          .strict(),
      )
      .default([])
      .describe('Operator-added route rules, matched before the built-in ML Server table.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    // What the gateway does with the rules at start (patterns, ids, ownership inheritance), so check-config says it too.
    try {
      compileRoutes(v.extraRoutes as RouteRule[]);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['extraRoutes'], message: err instanceof Error ? err.message : String(err) });
    }
  });

/** An IPv4 or IPv6 network in CIDR form whose prefix fits its family. */
function isCidr(value: string): boolean {
  const [net = '', bits = '', extra] = value.split('/');
  const family = isIP(net);
  return extra === undefined && family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

export const configSchema = z
  .object({
    mode: z.enum(['production', 'dev']).default('production').describe('dev allows example certificates and generated keys; production refuses them.'),
    server: serverSchema.default(serverSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    tokens: tokensSchema.default(tokensSchema.parse({})),
    store: storeSchema.default(storeSchema.parse({})),
    revocation: revocationSchema.default(revocationSchema.parse({})),
    upstream: upstreamSchema.describe('The operationalization node(s) behind mlgate.'),
    proxy: z
      .object({
        engine: z
          .enum(['hpm', 'undici'])
          .default('hpm')
          .describe(
            'How requests are forwarded to the nodes: hpm = http-proxy-middleware on a keep-alive node:https agent (the default); undici = an undici Pool per node, about half the CPU per request (README: Forwarding engines). Timeouts, limits, identity, health checks and retries are the same for both.',
          ),
      })
      .strict()
      .default({ engine: 'hpm' })
      .describe('The forwarding engine.'),
    policy: policySchema.default(policySchema.parse({})),
    metrics: z
      .object({
        enabled: z.boolean().default(true).describe('Serve Prometheus metrics at GET /mlgate/metrics.'),
        allowFrom: z
          .array(z.string().refine(isCidr, 'a CIDR such as 10.0.0.0/8 or fd00::/8 (an address and a prefix length that fits it)'))
          .default(['127.0.0.0/8', '::1/128'])
          .describe('Client networks (CIDR) allowed to read the metrics on the main port; others get 403.'),
        port: z.number().int().min(1).max(65535).optional().describe('Also serve GET /mlgate/metrics on this separate plain-HTTP port (for a scraper on a private network); absent = main port only.'),
        host: z.string().default('127.0.0.1').describe('Address of the separate metrics port.'),
      })
      .strict()
      .default({ enabled: true, allowFrom: ['127.0.0.0/8', '::1/128'], host: '127.0.0.1' }),
    console: z
      .object({
        enabled: z.boolean().default(true).describe('Serve the admin console at /mlgate/console: Owners only, HTTPS at the browser (its cookie is Secure).'),
        idleTimeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .default(900)
          .describe('A console session ends after this long without a request (sessions live in the process that made them).'),
        maxSessionSeconds: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .default(3600)
          .describe('A console session ends this long after its login, however active: the Owner role is checked at login only, so, as with an access token, a demotion or a removal from the directory takes effect by then at the latest.'),
        recentAuditEvents: z
          .number()
          .int()
          .min(0)
          .max(100_000)
          .default(1000)
          .describe('Audit events kept in memory per process for the console audit page and GET /mlgate/admin/audit (0 = none).'),
      })
      .strict()
      .default({ enabled: true, idleTimeoutSeconds: 900, maxSessionSeconds: 3600, recentAuditEvents: 1000 })
      .describe('The admin console (sessions, service owners, nodes, signing keys, recent audit events).'),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level (MLGATE_LOG_LEVEL).') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
