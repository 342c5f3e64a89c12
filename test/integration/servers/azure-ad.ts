// Azure AD for tests, over HTTPS on loopback:
// - the OIDC provider is oauth2-mock-server (a real OIDC/OAuth2 server: discovery, JWKS, token endpoint, RS256
//   signing), mounted at Azure AD's tenant paths ({tenant}/v2.0/.well-known/openid-configuration,
//   {tenant}/discovery/v2.0/keys, {tenant}/oauth2/v2.0/token) and told through its events which Azure claims to
//   put in tokens (tid, oid, aud, azp, groups, roles, v1/v2 iss) and how Azure answers a refused sign-in (AADSTS);
// - Microsoft Graph cannot run locally: a minimal stand-in answers the two calls mlgate makes
//   (POST /v1.0/directoryObjects/{id}/getMemberObjects, GET /v1.0/users/{id}) in Graph's response shapes, and
//   accepts only client-credentials tokens of the OIDC provider issued for Graph.
// Both use certs-example/edge.crt (signed by certs-example/ca.crt; SAN 127.0.0.1).
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, exportSPKI, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const CERTS = join(import.meta.dirname, '..', '..', '..', 'certs-example');
export const AAD_CA_FILE = join(CERTS, 'ca.crt');
export const AAD_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const AAD_OTHER_TENANT = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a';
/** The web app registration (ML Server 'Audience'): client id and App ID URI. */
export const AAD_WEB_APP = '3f9a1c52-7d1e-4b8a-9c0d-2e5f6a7b8c9d';
export const AAD_APP_ID_URI = 'api://mlgate-test-web';
/** The native app registration remoteLoginAAD uses (its `clientid`): azp/appid of user tokens. */
export const AAD_NATIVE_APP = '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
export const AAD_CLIENT_SECRET = 'web-app-Secret~1';
/** The web app's service principal (oid of its client-credentials tokens). */
export const AAD_APP_SP = '9e8d7c6b-5a49-4838-a7b6-c5d4e3f2a1b0';
export const AAD_PASSWORD = 'aad-User-pw-1';

/** Group object ids. */
export const GROUP = {
  owners: 'b1a2c3d4-0001-4000-8000-000000000001',
  contributors: 'b1a2c3d4-0002-4000-8000-000000000002',
  readers: 'b1a2c3d4-0003-4000-8000-000000000003',
  unrelated: 'b1a2c3d4-0004-4000-8000-000000000004',
} as const;

export interface AadUser {
  oid: string;
  upn: string;
  name: string;
  password: string;
  /** Direct and transitive group ids (what Graph returns and, without overage, the groups claim). */
  groups: string[];
  /** App role values assigned for the web app. */
  roles?: string[];
  /** Too many groups for the token: it carries the overage claim instead. */
  overage?: boolean;
  enabled?: boolean;
  /** Sign-in needs MFA (the password grant answers AADSTS50076). */
  mfa?: boolean;
  /** Nobody consented to the web app for this user (the password grant answers invalid_grant AADSTS65001). */
  consentMissing?: boolean;
  /** ISO times Graph reports. */
  lastPasswordChangeDateTime?: string;
  signInSessionsValidFromDateTime?: string;
}

type Mode = 'up' | 'down' | 'reset';
type Endpoint = 'discovery' | 'jwks' | 'token' | 'graph';

export interface AzureAdStandIn {
  /** https://127.0.0.1:PORT: auth.aad.authority. */
  authority: string;
  /** https://127.0.0.1:PORT of the Graph stand-in: auth.aad.graphBaseUrl. */
  graphBaseUrl: string;
  caFile: string;
  tenantId: string;
  v1Issuer: string;
  v2Issuer: string;
  issuer: OAuth2Issuer;
  service: OAuth2Service;
  users: Map<string, AadUser>;
  /** Requests seen per endpoint. */
  hits: Record<Endpoint, number>;
  /** up: served; down: 503; reset: the connection is dropped without an answer. */
  mode: Record<Endpoint, Mode>;
  /** Graph requests with their paths, newest last. */
  graphLog: string[];
  /** A user access token signed by the provider: Azure claims for `user`, then `claims` (undefined deletes). */
  token(user: AadUser, claims?: Record<string, unknown>, opts?: { kid?: string; expiresIn?: number }): Promise<string>;
  /** Publishes a new signing key; returns its kid. */
  addKey(kid?: string): Promise<string>;
  /** A token signed by a key the provider does not publish (same claims as token()). */
  foreignToken(user: AadUser, claims?: Record<string, unknown>): Promise<string>;
  /** The PEM public key of the provider's key `kid` (for HS256 key-confusion forgeries). */
  publicKeyPem(kid: string): Promise<string>;
  addUser(user: Omit<AadUser, 'oid' | 'password'> & { oid?: string; password?: string }): AadUser;
  close(): Promise<void>;
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

function aadsts(code: number, text: string, error = 'invalid_grant', status = 400) {
  const trace = randomUUID();
  const now = new Date().toISOString().replace('T', ' ').replace('Z', 'Z');
  return {
    statusCode: status,
    body: {
      error,
      error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${trace}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${now}`,
      error_codes: [code],
      timestamp: now,
      trace_id: trace,
      correlation_id: randomUUID(),
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

function listen(server: https.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startAzureAd(opts: { tenantId?: string } = {}): Promise<AzureAdStandIn> {
  const tid = opts.tenantId ?? AAD_TENANT;
  const tls = { cert: readFileSync(join(CERTS, 'edge.crt')), key: readFileSync(join(CERTS, 'edge.key')) };
  const issuer = new OAuth2Issuer();
  await issuer.keys.generate('RS256', { kid: 'key-1' });
  const service = new OAuth2Service(issuer, {
    wellKnownDocument: `/${tid}/v2.0/.well-known/openid-configuration`,
    jwks: `/${tid}/discovery/v2.0/keys`,
    token: `/${tid}/oauth2/v2.0/token`,
    authorize: `/${tid}/oauth2/v2.0/authorize`,
  });
  const hits: Record<Endpoint, number> = { discovery: 0, jwks: 0, token: 0, graph: 0 };
  const mode: Record<Endpoint, Mode> = { discovery: 'up', jwks: 'up', token: 'up', graph: 'up' };
  const endpointOf = (path: string): Endpoint | undefined =>
    path.endsWith('/.well-known/openid-configuration') ? 'discovery' : path.endsWith('/discovery/v2.0/keys') ? 'jwks' : path.endsWith('/oauth2/v2.0/token') ? 'token' : undefined;
  // Outages are switched per endpoint in front of the provider.
  const gate = (which: Endpoint | undefined, req: IncomingMessage, res: ServerResponse): boolean => {
    if (which === undefined) return true;
    hits[which]++;
    if (mode[which] === 'reset') {
      req.socket.destroy();
      return false;
    }
    if (mode[which] === 'down') {
      sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'AADSTS90033: A transient error has occurred. Please try again.' });
      return false;
    }
    return true;
  };
  const oidc = https.createServer(tls, (req, res) => {
    if (gate(endpointOf(new URL(req.url ?? '/', 'https://x').pathname), req, res)) service.requestHandler(req, res);
  });
  const oidcPort = await listen(oidc);
  const authority = `https://127.0.0.1:${oidcPort}`;
  issuer.url = authority;
  const v1Issuer = `https://sts.windows.net/${tid}/`;
  const v2Issuer = `${authority}/${tid}/v2.0`;

  const users = new Map<string, AadUser>();
  const addUser: AzureAdStandIn['addUser'] = (u) => {
    const user: AadUser = { oid: randomUUID(), password: AAD_PASSWORD, enabled: true, ...u };
    users.set(user.upn.toLowerCase(), user);
    return user;
  };

  let graphBaseUrl = '';
  /** The claims Azure AD puts in a v2 access token for the web app, delegated to the native client. */
  const userClaims = (user: AadUser): Record<string, unknown> => ({
    iss: v2Issuer,
    aud: AAD_WEB_APP,
    tid,
    oid: user.oid,
    sub: `pairwise-${user.oid.slice(0, 8)}`,
    azp: AAD_NATIVE_APP,
    azpacr: '0',
    scp: 'user_impersonation',
    name: user.name,
    preferred_username: user.upn,
    ver: '2.0',
    uti: randomUUID().replace(/-/g, '').slice(0, 22),
    ...(user.overage
      ? { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `https://graph.windows.net/${tid}/users/${user.oid}/getMemberObjects` } } }
      : { groups: user.groups }),
    ...(user.roles ? { roles: user.roles } : {}),
  });
  const apply = (payload: Record<string, unknown>, claims: Record<string, unknown>): void => {
    for (const [k, v] of Object.entries(claims)) {
      if (v === undefined) delete payload[k];
      else payload[k] = v;
    }
  };

  // The token endpoint: Azure AD's claims and refusals on top of the provider's grants.
  service.on('beforeTokenSigning', (token: { header: Record<string, unknown>; payload: Record<string, unknown> }, req: { body?: Record<string, unknown> }) => {
    const body = req.body ?? {};
    if (body.grant_type === 'password') {
      const user = users.get(String(body.username).toLowerCase());
      if (user) apply(token.payload, { ...userClaims(user), azp: String(body.client_id), aud: String(body.scope ?? '').split(' ')[0]!.replace(/\/\.default$/, '') });
    } else if (body.grant_type === 'client_credentials') {
      apply(token.payload, {
        iss: v2Issuer,
        aud: String(body.scope ?? '').replace(/\/\.default$/, ''),
        tid,
        oid: AAD_APP_SP,
        sub: AAD_APP_SP,
        azp: String(body.client_id),
        idtyp: 'app',
        roles: ['GroupMember.Read.All', 'User.Read.All'],
        ver: '2.0',
      });
    }
  });
  service.on('beforeResponse', (response: { statusCode: number; body: unknown }, req: { body?: Record<string, unknown> }) => {
    const body = req.body ?? {};
    const set = (r: { statusCode: number; body: unknown }) => {
      response.statusCode = r.statusCode;
      response.body = r.body;
    };
    if (body.client_id !== AAD_WEB_APP) {
      set(aadsts(700016, `Application with identifier '${String(body.client_id)}' was not found in the directory '${tid}'.`, 'unauthorized_client'));
      return;
    }
    if (body.client_secret !== AAD_CLIENT_SECRET) {
      set(aadsts(7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.', 'invalid_client', 401));
      return;
    }
    if (body.grant_type !== 'password') return;
    const user = users.get(String(body.username).toLowerCase());
    if (!user) set(aadsts(50034, `The user account {EUII Hidden} does not exist in the ${tid} directory. To sign into this application, the account must be added to the directory.`));
    else if (user.enabled === false) set(aadsts(50057, 'The user account is disabled.'));
    else if (body.password !== user.password) set(aadsts(50126, 'Error validating credentials due to invalid username or password.'));
    else if (user.consentMissing) set(aadsts(65001, `The user or administrator has not consented to use the application with ID '${AAD_WEB_APP}'. Send an interactive authorization request for this user and resource.`));
    else if (user.mfa) set(aadsts(50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '" + AAD_WEB_APP + "'.", 'interaction_required'));
  });

  // Microsoft Graph stand-in.
  const graphKeys = () => createLocalJWKSet({ keys: issuer.keys.toJSON() as JWK[] });
  const graphLog: string[] = [];
  const graphError = (res: ServerResponse, status: number, code: string, message: string) =>
    sendJson(res, status, { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID(), 'client-request-id': randomUUID() } } });
  const graph = https.createServer(tls, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', graphBaseUrl);
      graphLog.push(`${req.method} ${url.pathname}`);
      if (!gate('graph', req, res)) return;
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ')) return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.');
      try {
        const { payload } = await jwtVerify(auth.slice(7), graphKeys(), { algorithms: ['RS256'], audience: graphBaseUrl, issuer: v2Issuer });
        if (payload.tid !== tid) throw new Error('tenant');
      } catch {
        return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
      }
      const member = /^\/v1\.0\/directoryObjects\/([0-9a-f-]{36})\/getMemberObjects$/.exec(url.pathname);
      const userPath = /^\/v1\.0\/users\/([0-9a-f-]{36})$/.exec(url.pathname);
      const byOid = (oid: string) => [...users.values()].find((u) => u.oid === oid);
      if (member && req.method === 'POST') {
        const { securityEnabledOnly } = JSON.parse((await readBody(req)) || '{}') as { securityEnabledOnly?: unknown };
        if (typeof securityEnabledOnly !== 'boolean') return graphError(res, 400, 'Request_BadRequest', "The parameter 'securityEnabledOnly' in the request payload is not a valid parameter.");
        const user = byOid(member[1]!);
        if (!user) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${member[1]}' does not exist or one of its queried reference-property objects are not present.`);
        return sendJson(res, 200, { '@odata.context': `${graphBaseUrl}/v1.0/$metadata#Collection(Edm.String)`, value: user.groups });
      }
      if (userPath && req.method === 'GET') {
        const user = byOid(userPath[1]!);
        if (!user) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${userPath[1]}' does not exist or one of its queried reference-property objects are not present.`);
        const all: Record<string, unknown> = {
          id: user.oid,
          accountEnabled: user.enabled !== false,
          displayName: user.name,
          mail: user.upn,
          userPrincipalName: user.upn,
          lastPasswordChangeDateTime: user.lastPasswordChangeDateTime ?? '2026-01-05T10:00:00Z',
          signInSessionsValidFromDateTime: user.signInSessionsValidFromDateTime ?? '2026-01-05T10:00:00Z',
        };
        const select = (url.searchParams.get('$select') ?? '').split(',').filter(Boolean);
        const shown = select.length > 0 ? Object.fromEntries(select.map((k) => [k, all[k] ?? null])) : all;
        return sendJson(res, 200, { '@odata.context': `${graphBaseUrl}/v1.0/$metadata#users(${select.join(',')})/$entity`, ...shown });
      }
      graphError(res, 400, 'BadRequest', `Resource not found for the segment '${url.pathname.split('/').pop()}'.`);
    })().catch(() => res.destroy());
  });
  const graphPort = await listen(graph);
  graphBaseUrl = `https://127.0.0.1:${graphPort}`;

  let keyNumber = 1;
  const sign = async (signer: OAuth2Issuer, user: AadUser, claims: Record<string, unknown>, o: { kid?: string; expiresIn?: number }) =>
    signer.buildToken({
      ...(o.kid ? { kid: o.kid } : {}),
      expiresIn: o.expiresIn ?? 3600,
      scopesOrTransform: (_header, payload) => {
        apply(payload, userClaims(user));
        apply(payload, claims);
      },
    });
  const rogue = new OAuth2Issuer();
  await rogue.keys.generate('RS256', { kid: 'not-published' });
  rogue.url = authority;

  return {
    authority,
    get graphBaseUrl() {
      return graphBaseUrl;
    },
    caFile: AAD_CA_FILE,
    tenantId: tid,
    v1Issuer,
    v2Issuer,
    issuer,
    service,
    users,
    hits,
    mode,
    graphLog,
    token: (user, claims = {}, o = {}) => sign(issuer, user, claims, { kid: o.kid ?? 'key-1', ...(o.expiresIn ? { expiresIn: o.expiresIn } : {}) }),
    foreignToken: (user, claims = {}) => sign(rogue, user, claims, {}),
    async addKey(kid = `key-${++keyNumber}`) {
      await issuer.keys.generate('RS256', { kid });
      return kid;
    },
    async publicKeyPem(kid) {
      const jwk = (issuer.keys.toJSON() as JWK[]).find((k) => k.kid === kid);
      if (!jwk) throw new Error(`no key ${kid}`);
      return exportSPKI((await importJWK({ ...jwk, ext: true }, 'RS256', { extractable: true })) as CryptoKeyLike);
    },
    addUser,
    async close() {
      await Promise.all([oidc, graph].map((s) => new Promise<void>((r) => s.close(() => r()))));
      oidc.closeAllConnections();
      graph.closeAllConnections();
    },
  };
}

type CryptoKeyLike = Parameters<typeof exportSPKI>[0];

/** `alg: none`: header and payload of a real token, no signature. */
export function unsignedCopy(token: string, claims: Record<string, unknown> = {}): string {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...payload, ...claims })}.`;
}

/** The payload changed, the header and signature kept. */
export function tampered(token: string, claims: Record<string, unknown>): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  return `${h}.${b64({ ...payload, ...claims })}.${s}`;
}

/** HS256 with the provider's PUBLIC key as the HMAC secret (the RS/HS key-confusion forgery). */
export async function hs256WithPublicKey(pem: string, kid: string, payload: Record<string, unknown>): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid }).sign(new TextEncoder().encode(pem));
}

/** Claims of a token, unverified (for building forgeries from real ones). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}
