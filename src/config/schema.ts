// The single source of configuration truth: defaults, validation, and (via `describe`) the README reference.
import { z } from 'zod';

const seconds = (def: number, what: string) => z.number().int().positive().default(def).describe(what);
const ms = (def: number, what: string) => z.number().int().positive().default(def).describe(what);
const roleGroups = (role: string) => z.array(z.string().min(1)).optional().describe(`Groups (names, case-insensitive; or AAD object ids) whose members get role ${role}.`);

export const tlsFilesSchema = z.object({
  certFile: z.string().min(1).describe('PEM certificate chain file.'),
  keyFile: z.string().min(1).describe('PEM private key file.'),
});

export const serverSchema = z
  .object({
    host: z.string().default('0.0.0.0').describe('Address the edge listens on.'),
    port: z.number().int().min(0).max(65535).default(8443).describe('Edge port (MLGATE_PORT overrides).'),
    tls: tlsFilesSchema
      .extend({
        minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted; 1.0/1.1 are never accepted.'),
      })
      .optional()
      .describe('Edge HTTPS certificate. Required unless allowPlainHttp is true.'),
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

export const authSchema = z
  .object({
    providers: z.array(z.enum(['admin'])).min(1).default(['admin']).describe('Credential providers in the order they are asked; the first that knows the user decides.'),
    admin: adminProviderSchema.default({ enabled: false, username: 'admin' }),
    roles: z
      .object({ Owner: roleGroups('Owner'), Contributor: roleGroups('Contributor'), Reader: roleGroups('Reader') })
      .strict()
      .default({})
      .describe("Groups mapped to ML Server roles (appsettings.json 'Authorization'); the implicit-role table applies to users without a role."),
    maxConcurrentPasswordChecks: z.number().int().positive().default(4).describe('argon2 verifications run at once (each takes 64 MiB); more wait in line.'),
  })
  .strict();

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

export const storeSchema = z
  .object({
    kind: z.enum(['memory']).default('memory').describe('Token store: memory (single instance).'),
  })
  .strict();

export const revocationSchema = z
  .object({
    maxStalenessSeconds: seconds(30, 'If the revocation view cannot be confirmed fresh for longer than this, gateway-token requests fail closed with 503.'),
  })
  .strict();

export const upstreamSchema = z
  .object({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL (mutual TLS)').describe('Base URL of the operationalization node.'),
    servername: z.string().optional().describe('TLS server name expected on the node certificate (default: the URL host).'),
    caFile: z.string().min(1).describe('PEM CA bundle that signs the node certificates.'),
    clientCertFile: z.string().min(1).describe("The gateway's client certificate for mutual TLS."),
    clientKeyFile: z.string().min(1).describe("The gateway's client key for mutual TLS."),
    identity: z.enum(['assertion', 'passthrough']).default('assertion').describe('How the user reaches the node: a signed X-MLGate-Assertion (client Authorization dropped) or the client Authorization unchanged.'),
    assertionAudience: z.string().default('mlserver-node').describe('`aud` of the X-MLGate-Assertion JWT.'),
    assertionTtlSeconds: z.number().int().min(10).max(3600).default(60).describe('Lifetime of an assertion; reused until shortly before it expires.'),
    connectTimeoutMs: ms(5_000, 'TCP+TLS connect timeout to a node (504).'),
    responseTimeoutMs: ms(120_000, 'Time for the node to answer and stream (504).'),
    maxSockets: z.number().int().positive().default(256).describe('Keep-alive connections per node.'),
    idleSocketTimeoutMs: ms(30_000, 'Idle keep-alive sockets to nodes are closed after this (keep below the node keep-alive timeout).'),
    bodyLimitBytes: z.number().int().positive().default(256 * 1024 * 1024).describe('Largest request body forwarded (413 above).'),
  })
  .strict();

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
  .strict();

export const configSchema = z
  .object({
    mode: z.enum(['production', 'dev']).default('production').describe('dev allows example certificates and generated keys; production refuses them.'),
    server: serverSchema.default(serverSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    tokens: tokensSchema.default(tokensSchema.parse({})),
    store: storeSchema.default(storeSchema.parse({})),
    revocation: revocationSchema.default(revocationSchema.parse({})),
    upstream: upstreamSchema.describe('The operationalization node behind mlgate.'),
    policy: policySchema.default(policySchema.parse({})),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level (MLGATE_LOG_LEVEL).') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
