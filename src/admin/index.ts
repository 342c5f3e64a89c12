// Admin API under /mlgate/admin, Owner only (DESIGN sections 4 and 9). Two clients, one logic: the CLI (`mlgate revoke`,
// `mlgate sessions`) uses these JSON routes, the admin console (src/console/) calls the same AdminService
// (service.ts). Mounted by app.ts with one app.route(); errors are typed gateway errors answered by the app's handler.
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { BadRequest, Forbidden, MethodNotAllowed, PayloadTooLarge } from '../errors.ts';
import { readJsonObject, requireString } from '../http/helpers.ts';
import type { AuditSink } from '../observability/index.ts';
import type { VerifiedToken } from '../tokens/index.ts';
import { PAGE_DEFAULT, PAGE_MAX, type AdminService } from './service.ts';

export { AdminService, PAGE_DEFAULT, PAGE_MAX, type Actor, type AdminServiceDeps, type KeyView, type SessionView, type UserSessions } from './service.ts';

export interface AdminDeps {
  /** The same bearer check the proxied path uses (signature, expiry, revocation view and its freshness). */
  authenticate(header: string | undefined, now: number): Promise<VerifiedToken>;
  /** What an Owner can see and do; the console calls the same. */
  admin: AdminService;
  audit: AuditSink;
}

type AdminEnv = { Variables: { requestId: string; actor: string } };

const BODY_LIMIT = 16 * 1024;

export function adminRoutes(deps: AdminDeps): Hono<AdminEnv> {
  const { admin, audit } = deps;
  const api = new Hono<AdminEnv>();

  // Every path under /mlgate/admin, known or not, needs an Owner: nothing about the API is told to anyone else.
  api.use('*', async (c, next) => {
    const token = await deps.authenticate(c.req.header('authorization'), Date.now());
    if (!token.roles.includes('Owner')) {
      audit('deny', { user: token.sub, route: 'admin', method: c.req.method, path: c.req.path, reason: 'owner_required', requestId: c.get('requestId') });
      throw new Forbidden('Only an Owner may use the admin API.', 'owner_required');
    }
    c.set('actor', token.sub);
    await next();
    c.header('Cache-Control', 'no-store');
  });
  const body = bodyLimit({
    maxSize: BODY_LIMIT,
    onError: () => {
      throw new PayloadTooLarge(BODY_LIMIT);
    },
  });
  const who = (c: { get(k: 'actor' | 'requestId'): string }) => ({ actor: c.get('actor'), requestId: c.get('requestId') });

  api.post('/revoke/refresh-token', body, async (c) => {
    const refreshToken = requireString(await readJsonObject(c), 'refreshToken', 512);
    const { familyId, subject } = await admin.revokeRefreshToken(who(c), refreshToken);
    return c.json({ revoked: 'family', familyId, subject });
  });

  api.post('/revoke/family', body, async (c) => {
    const familyId = requireString(await readJsonObject(c), 'familyId', 128);
    const found = await admin.revokeFamily(who(c), familyId);
    return c.json({ revoked: 'family', familyId, found });
  });

  api.post('/revoke/user', body, async (c) => {
    const subject = requireString(await readJsonObject(c), 'subject', 512);
    const { notBefore, families } = await admin.revokeUser(who(c), subject);
    return c.json({ revoked: 'user', subject, notBefore, families });
  });

  api.get('/users/:subject/sessions', async (c) => {
    const subject = c.req.param('subject');
    const sessions = await admin.sessions(who(c), subject);
    return c.json({ subject, families: sessions });
  });

  // Users with live sessions, newest login first, one page at a time (?limit=1..200, ?after=<next of the page before>).
  api.get('/users', async (c) => {
    const { after, limit } = pageQuery(c);
    const { users, next } = await admin.users(who(c), after, limit);
    return c.json({ users: users.map((u) => ({ subject: u.subject, families: u.sessions })), next });
  });

  // Web services with a recorded owner, by name.
  api.get('/services', async (c) => {
    const { after, limit } = pageQuery(c);
    return c.json(await admin.services(after, limit));
  });

  // Transfer: records the owner whatever was recorded before (also for a service published before mlgate).
  api.post('/services/owner', body, async (c) => {
    const json = await readJsonObject(c);
    const service = requireString(json, 'service', 1024);
    const owner = requireString(json, 'owner', 512);
    return c.json(await admin.transferOwner(who(c), service, owner));
  });

  api.get('/keys', (c) => c.json({ keys: admin.keys() }));

  api.get('/nodes', (c) => c.json({ nodes: admin.nodes() }));

  // Recent audit events of THIS instance (each instance and cluster worker keeps its own), newest first.
  api.get('/audit', (c) => {
    const user = c.req.query('user') || undefined;
    const kind = c.req.query('kind') || undefined;
    const limit = intQuery(c.req.query('limit'), 100, 1000);
    const { events, capacity } = admin.auditEvents({ user, kind, limit });
    return c.json({ capacity, events: events.map((e) => ({ time: new Date(e.time).toISOString(), event: e.event, ...e.fields })) });
  });

  const methods: Array<[string, string[]]> = [
    ['/revoke/refresh-token', ['POST']],
    ['/revoke/family', ['POST']],
    ['/revoke/user', ['POST']],
    ['/services/owner', ['POST']],
    ['/users/:subject/sessions', ['GET', 'HEAD']],
    ['/users', ['GET', 'HEAD']],
    ['/services', ['GET', 'HEAD']],
    ['/keys', ['GET', 'HEAD']],
    ['/nodes', ['GET', 'HEAD']],
    ['/audit', ['GET', 'HEAD']],
  ];
  for (const [path, allow] of methods) {
    api.all(path, () => {
      throw new MethodNotAllowed(allow);
    });
  }
  return api;
}

/** ?limit= (1..max, default) as a number; anything else is a 400. */
export function intQuery(raw: string | undefined, def: number, max: number): number {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new BadRequest(`The query parameter limit must be a whole number from 1 to ${max}.`, 'invalid_query');
  return n;
}

function pageQuery(c: Context<AdminEnv>): { after: string | null; limit: number } {
  const after = c.req.query('after');
  if (after !== undefined && after.length > 2048) throw new BadRequest('The query parameter after is too long.', 'invalid_query');
  return { after: after || null, limit: intQuery(c.req.query('limit'), PAGE_DEFAULT, PAGE_MAX) };
}
