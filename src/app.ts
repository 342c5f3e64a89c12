// The one place where capabilities are wired together and typed errors become HTTP answers.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIPv6 } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { AdminService, adminRoutes } from './admin/index.ts';
import { AadBearerTokens, AadProvider, buildProviders, CredentialChain, LoginThrottle, type CredentialProvider } from './auth/index.ts';
import type { Config } from './config/index.ts';
import { consoleRoutes } from './console/index.ts';
import {
  BadRequest,
  Forbidden,
  GatewayError,
  InvalidToken,
  MethodNotAllowed,
  RevocationUnavailable,
  RouteNotFound,
  type ErrorBody,
} from './errors.ts';
import { guardStore, readJsonObjectFrom, requireString, sendJson } from './http/helpers.ts';
import { AuditRing, auditTo, GatewayMetrics, type AuditSink, type Logger } from './observability/index.ts';
import {
  authorize,
  compileRoutes,
  matchRoute,
  normalizeTarget,
  publishedVersion,
  resolveRole,
  serviceKey,
  ML_SERVER_ROUTES,
  type Role,
  type RouteRule,
} from './policy/index.ts';
import { createUpstream, tapSmallAnswer, type UpstreamPool } from './proxy/index.ts';
import { createStore, RedisTokenStore, type IdentitySnapshot, type RevocationEntry, type TokenStore } from './store/index.ts';
import { AccessTokens, AssertionMinter, KeyRing, RevocationView, SessionService, type VerifiedToken } from './tokens/index.ts';

type Env = {
  Bindings: { incoming: IncomingMessage; outgoing: ServerResponse };
  Variables: { requestId: string; path: string; search: string; routeClass: string };
};

export interface Gateway {
  app: Hono<Env>;
  config: Config;
  store: TokenStore;
  keys: KeyRing;
  access: AccessTokens;
  assertions: AssertionMinter;
  view: RevocationView;
  sessions: SessionService;
  upstream: UpstreamPool;
  routes: readonly RouteRule[];
  metrics: GatewayMetrics;
  /** What an Owner can see and do: the admin API and the console both call it. */
  admin: AdminService;
  setMetricsText(read: () => Promise<string>): void;
  /** The metrics text (every worker's in cluster mode), for the separate metrics port. */
  readMetrics(): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger: Logger;
  /** Dev mode: a key generated at start. Production passes none and loads config.tokens.signingKeys. */
  keys?: KeyRing;
  store?: TokenStore;
  /** Extra credential providers (tests); admin is built from config. */
  providers?: CredentialProvider[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Coarse label for metrics before (or without) a route match. */
function routeClassOf(path: string): string {
  if (path === '/login' || path.startsWith('/login/')) return 'login';
  if (path.startsWith('/mlgate/')) return 'mlgate';
  if (path.startsWith('/.well-known/')) return 'jwks';
  return 'unmatched';
}
const ROLE_NAMES: readonly Role[] = ['Owner', 'Contributor', 'Reader'];
/** A publish answer longer than this is not read for the node-chosen version (it is a few hundred bytes). */
const PUBLISH_ANSWER_LIMIT = 64 * 1024;

export async function createGateway(config: Config, opts: GatewayOptions): Promise<Gateway> {
  const log = opts.logger;
  // Recent audit events of this process, for the admin console and GET /mlgate/admin/audit.
  const recentAudit = new AuditRing(config.console.recentAuditEvents);
  const audit: AuditSink = auditTo(log, recentAudit);
  const keys =
    opts.keys ??
    (config.tokens.signingKeys.length > 0
      ? await KeyRing.fromFiles(config.tokens.algorithm, config.tokens.signingKeys)
      : await KeyRing.generate(config.tokens.algorithm));
  const accessTtlMs = config.tokens.accessTokenTtlSeconds * 1000;
  const skewMs = config.tokens.clockToleranceSeconds * 1000;
  // Revocations must outlive every token they cover: Azure AD tokens can live longer than ours.
  const aadMaxLifetimeMs = config.auth.providers.includes('aad') && config.auth.aad ? config.auth.aad.maxTokenLifetimeSeconds * 1000 : 0;
  const metrics = new GatewayMetrics({
    revocationViewAgeSeconds: () => view.staleness(Date.now()) / 1000,
    revocationEntries: () => view.size,
    verifiedTokens: () => access.stats,
  });
  const storeLog = (level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void => log[level](fields ?? {}, msg);
  const store = metrics.instrument(opts.store ?? (await createStore(config.store, { revocationTtlMs: Math.max(accessTtlMs, aadMaxLifetimeMs) + skewMs }, storeLog)));

  const view = new RevocationView(config.revocation.maxStalenessSeconds * 1000);
  // Entries that arrive while a snapshot is being read are applied again after it is loaded: load() replaces the
  // view, and an event published between the read and the load would otherwise be lost until the next reload.
  const collectors = new Set<RevocationEntry[]>();
  const unsubscribeRevocations = store.onRevocation((e) => {
    view.apply(e);
    for (const seen of collectors) seen.push(e);
  });
  const reloadView = async (accept: () => boolean): Promise<boolean> => {
    const seen: RevocationEntry[] = [];
    collectors.add(seen);
    try {
      const entries = await store.listRevocations(Date.now());
      if (!accept()) return false;
      view.load(entries, Date.now());
      for (const e of seen) view.apply(e);
      return true;
    } finally {
      collectors.delete(seen);
    }
  };
  // Reload on every (re)connect: events sent while the feed was down are not replayed. The view turns live only
  // after a reload that started while the feed was still up (a generation counter drops stale reloads), and a
  // failed reload is retried while the feed stays up, so the view cannot stay stale behind a live feed.
  let feedGeneration = 0;
  let feedLive = false;
  let reloadTimer: NodeJS.Timeout | undefined;
  const reload = (generation: number, attempt: number): void => {
    reloadView(() => generation === feedGeneration && feedLive).then(
      (loaded) => {
        if (loaded) view.setLive(true, Date.now());
      },
      (err: unknown) => {
        log.warn({ err: String(err), attempt }, 'revocation reload failed');
        if (generation !== feedGeneration || !feedLive) return;
        reloadTimer = setTimeout(() => reload(generation, attempt + 1), Math.min(100 * 2 ** attempt, 2_000));
        reloadTimer.unref();
      },
    );
  };
  const unsubscribeFeed = store.onFeedState((live) => {
    feedGeneration++;
    feedLive = live;
    clearTimeout(reloadTimer);
    if (live) reload(feedGeneration, 0);
    else view.setLive(false, Date.now());
  });
  await reloadView(() => true);

  const access = new AccessTokens(keys, {
    issuer: config.tokens.issuer,
    audience: config.tokens.audience,
    ttlSeconds: config.tokens.accessTokenTtlSeconds,
    clockToleranceSeconds: config.tokens.clockToleranceSeconds,
    cacheSize: config.tokens.verifiedCacheSize,
  });
  const assertions = new AssertionMinter(keys, {
    issuer: config.tokens.issuer,
    audience: config.upstream.assertionAudience,
    ttlSeconds: config.upstream.assertionTtlSeconds,
  });

  const providers = await buildProviders(config.auth);
  providers.push(...(opts.providers ?? []));
  // With the Redis store, failed-login counters are shared by every instance (DESIGN section 5).
  const throttle = new LoginThrottle(config.auth.throttle, store instanceof RedisTokenStore ? store.sharedCounters : undefined);
  const credentials = new CredentialChain(providers, { maxConcurrent: config.auth.maxConcurrentPasswordChecks });

  const roleMapping = config.auth.roles;
  const rolesOf = (identity: IdentitySnapshot): string[] => {
    // The local admin is Owner (configure-roles.md); everyone else by group mapping and the implicit-role table.
    const role = identity.provider === 'admin' ? 'Owner' : resolveRole(identity.groups, roleMapping);
    if (!role) throw new Forbidden('Your account has no Machine Learning Server role.', 'no_role');
    return [role];
  };

  // Azure AD bearer tokens (remoteLoginAAD) are accepted next to ours when the aad provider is enabled; their
  // verified form is cached like ours, roles resolved once per token (no role = 403 no_role at the route).
  const aad = providers.find((p): p is AadProvider => p instanceof AadProvider);
  const aadTokens = aad
    ? new AadBearerTokens<VerifiedToken>(
        aad,
        ({ identity, iat, exp, tokenId }) => {
          const role = resolveRole(identity.groups, roleMapping);
          return { sub: identity.subject, name: identity.displayName, roles: role ? [role] : [], idp: identity.provider, sid: `aad:${tokenId}`, jti: tokenId, iat, exp };
        },
        { cacheSize: config.tokens.verifiedCacheSize, clockToleranceSeconds: config.auth.aad!.clockToleranceSeconds },
      )
    : undefined;
  const authenticate = bearerAuthenticator(access, view, aadTokens);

  const graceKey = config.tokens.graceKeyFile
    ? Buffer.from(readFileSync(config.tokens.graceKeyFile, 'utf8').trim(), 'base64')
    : randomBytes(32);
  // Else every refresh within the grace window would fail later, as a misleading 503.
  if (graceKey.length !== 32) throw new Error(`tokens.graceKeyFile: ${config.tokens.graceKeyFile} holds ${graceKey.length} bytes; it must hold 32 (base64)`);
  const sessions = new SessionService(
    store,
    access,
    {
      refreshIdleTtlSeconds: config.tokens.refreshIdleTtlSeconds,
      refreshMaxLifetimeSeconds: config.tokens.refreshMaxLifetimeSeconds,
      reuseGraceSeconds: config.tokens.reuseGraceSeconds,
      graceKey,
    },
    { rolesOf, revalidate: (identity) => credentials.revalidate(identity), audit },
  );

  // One or several nodes, health probes, identity mode, forwarding engine (src/proxy/factory.ts).
  const upstream = createUpstream(config.upstream, log, process.env, config.proxy.engine);
  upstream.start();
  const admin = new AdminService({ store, audit, keys, nodes: () => upstream.status(), recentAudit });

  const routes = compileRoutes(
    config.policy.extraRoutes.map((r) => ({ ...r, roles: r.roles as Role[] })),
    ML_SERVER_ROUTES,
  );

  // Housekeeping off the hot path: expired cache and view entries.
  const pruner = setInterval(() => {
    const now = Date.now();
    access.prune(now);
    aadTokens?.prune(now);
    view.prune(now);
  }, 60_000);
  pruner.unref();

  const app = new Hono<Env>();

  app.onError((err, c) => errorResponse(err, c, log));
  app.notFound((c) => errorResponse(new RouteNotFound(), c, log));

  // Every request: an id, and the raw request-target checked once; the checked path is what routes and forwards.
  app.use('*', async (c, next) => {
    const incoming = c.env.incoming;
    const claimed = incoming.headers['x-request-id'];
    const requestId = typeof claimed === 'string' && REQUEST_ID.test(claimed) ? claimed : randomUUID();
    c.set('requestId', requestId);
    const target = normalizeTarget(incoming.url ?? '');
    // The query can carry a refresh token (DELETE /login/refreshToken): only the path goes to the log.
    if (!target.ok) throw new BadRequest(`The request path is not allowed (${target.reason}).`, 'invalid_path', incoming.url?.split('?')[0]);
    c.set('path', target.path);
    c.set('search', target.search);
    c.set('routeClass', routeClassOf(target.path));
    const started = performance.now();
    const method = METHODS.has(incoming.method ?? '') ? incoming.method! : 'other';
    c.env.outgoing.once('close', () => {
      const routeClass = c.get('routeClass');
      metrics.requests.inc({ route_class: routeClass, method, status: String(c.env.outgoing.statusCode) });
      metrics.duration.observe({ route_class: routeClass }, (performance.now() - started) / 1000);
    });
    // On the Node response, before next(): it goes out with hono's answers (writeHead merges) and with the ones
    // written directly (login, refresh). Forwarded answers carry it from the proxy, errors from errorResponse.
    if (c.get('routeClass') !== 'unmatched') c.env.outgoing.setHeader('X-Request-Id', requestId);
    await next();
  });

  const loginJson = (c: Context<Env>) => readJsonObjectFrom(c.env.incoming, config.server.loginBodyLimitBytes);
  // Token answers must never be cached by a proxy or browser (RFC 6749 section 5.1).
  app.use('/login', noStore);
  app.use('/login/*', noStore);
  const clientAddress = (c: Context<Env>): string => c.env.incoming.socket.remoteAddress ?? 'unknown';

  // The password check of POST /login, also used by the admin console's login form: throttle, providers, audit.
  const checkPassword = async (username: string, password: string, address: string): Promise<IdentitySnapshot> => {
    try {
      await throttle.check(username, address);
    } catch (err) {
      metrics.logins.inc({ provider: 'any', outcome: 'throttled' });
      audit('login.throttled', { user: username, clientAddress: address, reason: err instanceof GatewayError ? err.detail : undefined });
      throw err;
    }
    let identity: IdentitySnapshot;
    try {
      identity = await credentials.verify(username, password);
    } catch (err) {
      if (err instanceof GatewayError && err.status === 401) {
        // The attempt stays counted (throttle.check counted it before the password work).
        audit('login.failed', { user: username, clientAddress: address, reason: err.detail });
      } else {
        await throttle.released(username, address).catch(() => undefined);
      }
      metrics.logins.inc({ provider: 'any', outcome: err instanceof GatewayError ? err.code : 'error' });
      throw err;
    }
    metrics.logins.inc({ provider: identity.provider, outcome: 'ok' });
    await throttle.succeeded(username, address);
    return identity;
  };

  app.post('/login', async (c) => {
    const body = await loginJson(c);
    const username = requireString(body, 'username', 256);
    const password = requireString(body, 'password', 1024);
    const address = clientAddress(c);
    const identity = await checkPassword(username, password, address);
    return sendJson(c.env.outgoing, 200, await guardStore(sessions.login(identity, address)));
  });

  app.post('/login/refreshToken', async (c) => {
    const body = await loginJson(c);
    const refreshToken = requireString(body, 'refreshToken', 512);
    try {
      const answer = await guardStore(sessions.refresh(refreshToken, clientAddress(c)));
      metrics.refreshes.inc({ outcome: 'ok' });
      return sendJson(c.env.outgoing, 200, answer);
    } catch (err) {
      metrics.refreshes.inc({ outcome: err instanceof GatewayError ? err.code : 'error' });
      throw err;
    }
  });

  app.delete('/login/refreshToken', async (c) => {
    const token = c.req.query('refreshToken');
    if (!token) throw new BadRequest('The query parameter refreshToken is required.', 'missing_field');
    await guardStore(sessions.revoke(token));
    return c.body(null, 200);
  });

  app.get('/.well-known/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(keys.jwks());
  });

  app.get('/mlgate/health', (c) => c.json({ status: 'ok' }));

  // Cluster workers swap this for a reader of every worker's metrics (gathered by the primary).
  let metricsText = (): Promise<string> => metrics.registry.metrics();
  const metricsAllowed = new BlockList();
  for (const cidr of config.metrics.allowFrom) {
    const [net, bits] = cidr.split('/') as [string, string];
    metricsAllowed.addSubnet(net, Number(bits), isIPv6(net) ? 'ipv6' : 'ipv4');
  }
  app.get('/mlgate/metrics', async (c) => {
    if (!config.metrics.enabled) throw new RouteNotFound();
    const address = clientAddress(c).replace(/^::ffff:/, '');
    if (!metricsAllowed.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')) {
      throw new Forbidden('Metrics are not served to this address (metrics.allowFrom).', 'forbidden');
    }
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metricsText());
  });

  app.get('/mlgate/ready', async (c) => {
    const now = Date.now();
    const checks: Record<string, string> = {
      keys: 'ok',
      store: 'ok',
      revocation: view.isFresh(now) ? 'ok' : 'stale',
      // At least one node that takes requests (healthy by the probes, not ejected).
      nodes: upstream.status(now).some((n) => n.available) ? 'ok' : 'none_available',
    };
    try {
      await store.ping();
    } catch {
      checks.store = 'unavailable';
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    return c.json({ status: ready ? 'ready' : 'not_ready', checks }, ready ? 200 : 503);
  });

  for (const path of ['/login', '/login/refreshToken', '/.well-known/jwks.json', '/mlgate/health', '/mlgate/ready', '/mlgate/metrics']) {
    const allow = path === '/login' ? ['POST'] : path === '/login/refreshToken' ? ['POST', 'DELETE'] : ['GET', 'HEAD'];
    app.all(path, () => {
      throw new MethodNotAllowed(allow);
    });
  }
  app.route('/mlgate/admin', adminRoutes({ authenticate, admin, audit }));
  const adminConsole = config.console.enabled
    ? consoleRoutes({
        admin,
        checkPassword,
        rolesOf,
        audit,
        log,
        idleTimeoutSeconds: config.console.idleTimeoutSeconds,
        maxSessionSeconds: config.console.maxSessionSeconds,
        subjectRevokedSince: (subject, sinceMs) => {
          const now = Date.now();
          if (!view.isFresh(now)) throw new RevocationUnavailable(`view stale for ${view.staleness(now)} ms`);
          return view.isSubjectRevokedSince(subject, sinceMs);
        },
      })
    : undefined;
  if (adminConsole) app.route('/mlgate/console', adminConsole.app);
  app.all('/mlgate/*', () => {
    throw new RouteNotFound();
  });

  // Everything else is an ML Server API call: route, authenticate, authorize, forward.
  app.all('*', async (c) => {
    const method = c.req.method;
    const path = c.get('path');
    const matched = matchRoute(routes, method, path);
    if (!matched.ok) {
      if (matched.status === 405) throw new MethodNotAllowed(matched.allow ?? []);
      throw new RouteNotFound(`${method} ${path}`);
    }
    const { rule, params } = matched.match;
    c.set('routeClass', rule.routeClass);
    const now = Date.now();
    const token = await authenticate(c.env.incoming.headers.authorization, now);
    const role = token.roles.find((r): r is Role => (ROLE_NAMES as readonly string[]).includes(r));
    if (!role) throw new Forbidden('Your account has no Machine Learning Server role.', 'no_role');

    const service = params.name !== undefined && params.version !== undefined ? serviceKey(params.name, params.version) : undefined;
    const owner = rule.ownership && service !== undefined ? await guardStore(store.getOwner(service)) : undefined;
    const decision = authorize({ subject: token.sub, role }, rule, owner);
    if (decision.effect === 'deny') {
      audit('deny', { user: token.sub, role, route: rule.id, method, path, reason: decision.code, requestId: c.get('requestId') });
      throw new Forbidden(decision.reason, decision.code);
    }

    const requestId = c.get('requestId');
    await upstream.forward(c.env.incoming, c.env.outgoing, {
      requestId,
      target: path + c.get('search'),
      clientAddress: clientAddress(c),
      // Minted per (access token, node audience), reused while fresh; not used in passthrough mode.
      assertionFor: (node) => assertions.forToken(token, Date.now(), node.assertionAudience),
      onNodeResponse: (status, answer) => {
        if (status < 200 || status >= 300 || !rule.records) return;
        // The node accepted this publish, so the service did not exist there: whoever a record still names (a service
        // removed at the node behind mlgate's back) is stale, and the caller is the publisher now.
        const recordOwner = (key: string): Promise<void> =>
          store.setOwner(key, token.sub).then((previous) => {
            if (previous !== null && previous !== token.sub) log.warn({ requestId, service: key, previous, owner: token.sub }, 'stale owner record replaced by a new publish');
            audit('publish', { user: token.sub, service: key, owner: token.sub, ...(previous !== null && previous !== token.sub ? { replaced: previous } : {}), requestId });
          });
        let bookkeeping: Promise<void>;
        if (service !== undefined) {
          bookkeeping = rule.records === 'publish'
            ? recordOwner(service)
            : store.deleteOwner(service).then(() => audit('delete', { user: token.sub, service, requestId }));
        } else if (rule.records === 'publish' && params.name !== undefined) {
          // The node chose the version (POST /services/{name}): it is only in its small answer, read as it streams.
          const name = params.name;
          const location = answer.headers.location;
          bookkeeping = tapSmallAnswer(answer, PUBLISH_ANSWER_LIMIT).then((body) => {
            const version = publishedVersion(name, { body, location });
            if (version !== null) return recordOwner(serviceKey(name, version));
            log.warn({ requestId, name }, 'publish answer names no version: no owner recorded, only an Owner may change it');
            audit('publish', { user: token.sub, service: name, owner: null, requestId });
          });
        } else {
          return;
        }
        bookkeeping.catch((err: unknown) => log.error({ err: String(err), service, requestId }, 'ownership bookkeeping failed'));
      },
    });
    return RESPONSE_ALREADY_SENT;
  });

  return {
    app,
    config,
    store,
    keys,
    access,
    assertions,
    view,
    sessions,
    upstream,
    routes,
    metrics,
    admin,
    readMetrics: () => metricsText(),
    setMetricsText(read) {
      metricsText = read;
    },
    async close() {
      clearInterval(pruner);
      adminConsole?.sessions.close();
      clearTimeout(reloadTimer);
      unsubscribeRevocations();
      unsubscribeFeed();
      upstream.close();
      await Promise.all(providers.map((p) => p.close?.()));
      await store.close();
    },
  };
}

/** Another kind of bearer token accepted next to ours (Azure AD), with its own verified-token cache. */
export interface ForeignBearer {
  cached(token: string, now: number): VerifiedToken | undefined;
  /** Cheap and unverified: the token is of this kind (decides where it is verified, nothing more). */
  claims(token: string): boolean;
  verify(token: string, now: number): Promise<VerifiedToken>;
}

/**
 * The bearer check, shared by the proxied path and the admin API: gateway tokens, and Azure AD tokens when the
 * aad provider is on. Seen tokens of either kind are a Map lookup; the revocation view covers both (by subject).
 */
export function bearerAuthenticator(
  access: AccessTokens,
  view: RevocationView,
  foreign?: ForeignBearer,
): (header: string | undefined, now: number) => Promise<VerifiedToken> {
  return async (header, now) => {
    if (!header) throw new InvalidToken('An access token is required (Authorization: Bearer <token>).', 'missing_token');
    const space = header.indexOf(' ');
    if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') {
      throw new InvalidToken('The Authorization header must use the Bearer scheme.', 'invalid_token');
    }
    const raw = header.slice(space + 1).trim();
    const token =
      foreign === undefined
        ? await access.verify(raw, now)
        : (access.cached(raw, now) ?? foreign.cached(raw, now) ?? (await (foreign.claims(raw) ? foreign.verify(raw, now) : access.verify(raw, now))));
    if (!view.isFresh(now)) throw new RevocationUnavailable(`view stale for ${view.staleness(now)} ms`);
    if (view.isRevoked(token)) throw new InvalidToken('The access token has been revoked.', 'token_revoked');
    return token;
  };
}

// On the Node response, before next(): a header set on a finished answer makes hono rebuild it as a full fetch
// Response, and login and refresh write their answers directly.
async function noStore(c: Context<Env>, next: () => Promise<void>): Promise<void> {
  c.env.outgoing.setHeader('Cache-Control', 'no-store');
  c.env.outgoing.setHeader('Pragma', 'no-cache');
  await next();
}

function errorResponse(err: Error, c: Context<Env>, log: Logger): Response {
  const requestId = c.get('requestId') ?? randomUUID();
  let status: number;
  let body: ErrorBody;
  let headers: Record<string, string> = {};
  if (err instanceof GatewayError) {
    status = err.status;
    body = { error: err.code, message: err.message, requestId };
    headers = err.headers;
    const level = status >= 500 ? 'warn' : 'info';
    log[level]({ requestId, status, code: err.code, detail: err.detail, method: c.req.method }, err.message);
  } else if (err instanceof HTTPException) {
    status = err.status;
    body = { error: 'bad_request', message: err.message || 'Bad request.', requestId };
  } else {
    status = 500;
    body = { error: 'internal_error', message: 'An internal error occurred.', requestId };
    log.error({ requestId, err: { name: err.name, message: err.message, stack: err.stack } }, 'unhandled error');
  }
  const res = c.env.outgoing;
  // The answer already started streaming: nothing sensible can be written any more.
  if (res.headersSent) {
    res.destroy();
    return RESPONSE_ALREADY_SENT;
  }
  // Straight to the Node response, like the token answers: refusals are what a flood of bad requests costs.
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('X-Request-Id', requestId);
  res.setHeader('Cache-Control', 'no-store');
  return sendJson(res, status, body);
}
