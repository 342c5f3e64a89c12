// The admin console at /mlgate/console: server-rendered pages for Owners, a client of the same admin logic as the
// JSON API (src/admin/service.ts). Mounted by app.ts with one app.route().
//
// Security: login through the same password check as POST /login (throttle, provider chain, audit); only Owners get
// a console session (others: a 403 page). The session is an opaque id in an HttpOnly, Secure, SameSite=Strict
// cookie scoped to /mlgate/console (never sent to the proxied ML Server API), held in this process with an idle
// timeout. Every POST: Origin must be this origin, and (once logged in) the form's synchronizer token must match the
// session's. Every answer: a CSP without inline script or style, no framing, no caching.
import type { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AdminService } from '../admin/index.ts';
import { PAGE_DEFAULT, PAGE_MAX } from '../admin/index.ts';
import { BadRequest, Forbidden, GatewayError, PayloadTooLarge, RouteNotFound, UnsupportedMediaType } from '../errors.ts';
import type { AuditSink, Logger } from '../observability/index.ts';
import type { IdentitySnapshot } from '../store/index.ts';
import { ConsoleSessions, csrfMatches, type ConsoleSession } from './sessions.ts';
import { CONSOLE_CSS } from './style.ts';
import { auditBody, BASE, errorPage, FLASH, keysBody, layout, loginPage, nodesBody, servicesBody, sessionsBody } from './views.ts';

export { ConsoleSessions } from './sessions.ts';

export interface ConsoleDeps {
  admin: AdminService;
  /** The password check of POST /login (throttle, providers, audit, metrics); throws typed errors. */
  checkPassword(username: string, password: string, clientAddress: string): Promise<IdentitySnapshot>;
  /** Roles of an identity; throws Forbidden (no_role) when it has none. */
  rolesOf(identity: IdentitySnapshot): string[];
  audit: AuditSink;
  log: Logger;
  idleTimeoutSeconds: number;
  /** Absolute lifetime of a session: the role is checked at login only. */
  maxSessionSeconds: number;
  /**
   * Whether the user was revoked at or after `sinceMs`, from the revocation view every instance and worker shares
   * (a revocation made elsewhere must end this process's console sessions too); throws RevocationUnavailable when
   * the view is stale, as for gateway tokens.
   */
  subjectRevokedSince(subject: string, sinceMs: number): boolean;
}

type ConsoleEnv = {
  Bindings: { incoming: IncomingMessage };
  Variables: { requestId: string; session: ConsoleSession; cookie: string };
};
type C = Context<ConsoleEnv>;

export const COOKIE = '__Secure-mlgate-console';
const FORM_LIMIT = 16 * 1024;

export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

function secure(res: Response, cacheable = false): void {
  const h = res.headers;
  h.set('Content-Security-Policy', CSP);
  h.set('X-Frame-Options', 'DENY');
  h.set('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on form posts.
  h.set('Referrer-Policy', 'same-origin');
  h.set('Cross-Origin-Opener-Policy', 'same-origin');
  h.set('Cross-Origin-Resource-Policy', 'same-origin');
  if (!cacheable) {
    h.set('Cache-Control', 'no-store');
    h.set('Pragma', 'no-cache');
  }
}

/** The Origin of a POST must be this gateway's own https origin (as the browser reached it: the Host header). */
function sameOrigin(c: C): boolean {
  const origin = c.req.header('origin');
  const host = c.req.header('host');
  return origin !== undefined && host !== undefined && origin === `https://${host}`;
}

function field(form: Record<string, unknown>, name: string, max: number): string {
  const v = form[name];
  if (typeof v !== 'string' || v.trim() === '') throw new BadRequest(`The form field "${name}" is required.`, 'missing_field');
  if (v.length > max) throw new BadRequest(`The form field "${name}" is longer than ${max} characters.`, 'invalid_field');
  return v;
}

async function readForm(c: C): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) throw new UnsupportedMediaType();
  return (await c.req.parseBody()) as Record<string, unknown>;
}

const clientAddress = (c: C): string => c.env.incoming.socket.remoteAddress ?? 'unknown';
const redirect = (c: C, to: string): Response => c.redirect(to, 303);

export function consoleRoutes(deps: ConsoleDeps): { app: Hono<ConsoleEnv>; sessions: ConsoleSessions } {
  const { admin, audit, log } = deps;
  const sessions = new ConsoleSessions(deps.idleTimeoutSeconds * 1000, deps.maxSessionSeconds * 1000);
  admin.onSubjectRevoked((subject) => sessions.endSubject(subject));
  const app = new Hono<ConsoleEnv>();
  const who = (c: C) => ({ actor: c.get('session').subject, requestId: c.get('requestId') });

  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? 'unknown';
    let status = 500;
    let heading = 'Something went wrong';
    let message = 'An internal error occurred; the gateway log has the details.';
    if (err instanceof GatewayError) {
      status = err.status;
      message = err.message;
      heading = status === 403 ? 'Access denied' : status === 404 ? 'Not found' : status >= 500 ? 'Service unavailable' : 'Request refused';
      log[status >= 500 ? 'warn' : 'info']({ requestId, status, code: err.code, detail: err.detail, method: c.req.method }, err.message);
    } else {
      log.error({ requestId, err: { name: err.name, message: err.message, stack: err.stack } }, 'unhandled console error');
    }
    const res = c.html(errorPage(status, heading, message, requestId), status as 500);
    return res;
  });

  app.use('*', async (c, next) => {
    await next();
    secure(c.res, c.req.path === `${BASE}/static/console.css`);
  });

  const form = bodyLimit({
    maxSize: FORM_LIMIT,
    onError: () => {
      throw new PayloadTooLarge(FORM_LIMIT);
    },
  });

  app.get('/static/console.css', (c) => {
    c.header('Content-Type', 'text/css; charset=utf-8');
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(CONSOLE_CSS);
  });

  app.get('/login', (c) => {
    if (sessions.touch(getCookie(c, COOKIE))) return redirect(c, `${BASE}/sessions`);
    const ended = c.req.query('ended');
    const notice =
      ended === 'idle' ? 'Your console session ended after a period of inactivity. Please log in again.'
      : ended === 'logout' ? 'You are logged out.'
      : ended === 'revoked' ? 'Your console session ended: your tokens were revoked. Please log in again.'
      : undefined;
    return c.html(loginPage(notice ? { notice } : {}));
  });

  app.post('/login', form, async (c) => {
    if (!sameOrigin(c)) throw new Forbidden('The login form must be sent from this console.', 'cross_origin');
    const body = await readForm(c);
    const username = field(body, 'username', 256);
    const password = field(body, 'password', 1024);
    let identity: IdentitySnapshot;
    try {
      identity = await deps.checkPassword(username, password, clientAddress(c));
    } catch (err) {
      // Wrong credentials and throttling stay on the login page; a directory or store outage is an error page.
      if (err instanceof GatewayError && (err.status === 401 || err.status === 429)) {
        for (const [k, v] of Object.entries(err.headers)) if (k !== 'WWW-Authenticate') c.header(k, v);
        return c.html(loginPage({ error: err.message, username }), err.status as 401);
      }
      throw err;
    }
    let roles: string[] = [];
    try {
      roles = deps.rolesOf(identity);
    } catch (err) {
      if (!(err instanceof Forbidden)) throw err;
    }
    if (!roles.includes('Owner')) {
      audit('console.denied', { user: identity.subject, provider: identity.provider, roles, clientAddress: clientAddress(c), requestId: c.get('requestId') });
      throw new Forbidden(
        `Only Owners may use the admin console (the local administrator, or a member of a group mapped to the Owner role). You logged in as ${identity.subject}, role ${roles[0] ?? 'none'}.`,
        'owner_required',
      );
    }
    const { id } = sessions.create({ subject: identity.subject, displayName: identity.displayName || identity.subject, provider: identity.provider });
    audit('console.login', { user: identity.subject, provider: identity.provider, clientAddress: clientAddress(c), requestId: c.get('requestId') });
    setCookie(c, COOKIE, id, { path: BASE, httpOnly: true, secure: true, sameSite: 'Strict' });
    return redirect(c, `${BASE}/sessions`);
  });

  // Everything below needs a console session. A POST is checked for its origin before anything else.
  app.use('*', async (c, next) => {
    if (c.req.method === 'POST' && !sameOrigin(c)) {
      audit('console.csrf_refused', { reason: 'origin', origin: c.req.header('origin') ?? null, path: c.req.path, clientAddress: clientAddress(c), requestId: c.get('requestId') });
      throw new Forbidden('This form must be sent from the console itself (Origin check).', 'cross_origin');
    }
    const cookie = getCookie(c, COOKIE);
    const session = sessions.touch(cookie);
    if (!session) {
      if (cookie) deleteCookie(c, COOKIE, { path: BASE, secure: true });
      return redirect(c, `${BASE}/login${cookie ? '?ended=idle' : ''}`);
    }
    if (deps.subjectRevokedSince(session.subject, session.createdAt)) {
      sessions.end(cookie);
      deleteCookie(c, COOKIE, { path: BASE, secure: true });
      audit('console.session_ended', { user: session.subject, reason: 'revoked', requestId: c.get('requestId') });
      return redirect(c, `${BASE}/login?ended=revoked`);
    }
    c.set('session', session);
    c.set('cookie', cookie!);
    await next();
  });

  /** The synchronizer token of a state-changing form; a missing or wrong one changes nothing. */
  const checked = async (c: C): Promise<Record<string, unknown>> => {
    const body = await readForm(c);
    const token = body.csrf;
    if (!csrfMatches(c.get('session'), typeof token === 'string' ? token : undefined)) {
      audit('console.csrf_refused', { user: c.get('session').subject, reason: 'token', path: c.req.path, requestId: c.get('requestId') });
      throw new Forbidden('The form is stale or was not sent from the console (CSRF token). Reload the page and try again.', 'csrf_token');
    }
    return body;
  };

  app.get('/', (c) => redirect(c, `${BASE}/sessions`));

  app.post('/logout', form, async (c) => {
    await checked(c);
    sessions.end(c.get('cookie'));
    audit('console.logout', { user: c.get('session').subject, requestId: c.get('requestId') });
    deleteCookie(c, COOKIE, { path: BASE, secure: true });
    return redirect(c, `${BASE}/login?ended=logout`);
  });

  const flash = (c: C): string | undefined => FLASH[c.req.query('done') ?? ''];
  const limitOf = (c: C): number => {
    const n = Number(c.req.query('limit') ?? PAGE_DEFAULT);
    return Number.isInteger(n) && n >= 1 ? Math.min(n, PAGE_MAX) : PAGE_DEFAULT;
  };
  const afterOf = (c: C): string | null => {
    const a = c.req.query('after');
    return a && a.length <= 2048 ? a : null;
  };

  app.get('/sessions', async (c) => {
    const session = c.get('session');
    const filter = (c.req.query('user') ?? '').slice(0, 512);
    const limit = limitOf(c);
    let page: { users: Awaited<ReturnType<AdminService['users']>>['users']; next: string | null };
    let after: string | null = null;
    if (filter) {
      const rows = await admin.sessions(who(c), filter);
      page = { users: rows.length > 0 ? [{ subject: filter, sessions: rows }] : [], next: null };
    } else {
      after = afterOf(c);
      page = await admin.users(who(c), after, limit);
    }
    return c.html(layout('sessions', 'Sessions', session, sessionsBody(session, { ...page, after, filter, limit }), flash(c)));
  });

  app.post('/sessions/revoke-family', form, async (c) => {
    const body = await checked(c);
    const familyId = field(body, 'familyId', 128);
    const subject = typeof body.subject === 'string' && body.subject.length <= 512 ? body.subject : undefined;
    await admin.revokeFamily(who(c), familyId, subject);
    return redirect(c, `${BASE}/sessions?done=family`);
  });

  app.post('/sessions/revoke-user', form, async (c) => {
    const body = await checked(c);
    await admin.revokeUser(who(c), field(body, 'subject', 512));
    // Revoking oneself ends this console session too (onSubjectRevoked): the redirect then lands on the login page.
    return redirect(c, `${BASE}/sessions?done=user`);
  });

  app.get('/services', async (c) => {
    const after = afterOf(c);
    const page = await admin.services(after, limitOf(c));
    return c.html(layout('services', 'Web services', c.get('session'), servicesBody(c.get('session'), { ...page, after }), flash(c)));
  });

  app.post('/services/transfer', form, async (c) => {
    const body = await checked(c);
    const service = typeof body.service === 'string' && body.service !== '' ? field(body, 'service', 1024) : `${field(body, 'name', 512)}/${field(body, 'version', 256)}`;
    await admin.transferOwner(who(c), service, field(body, 'owner', 512).trim());
    return redirect(c, `${BASE}/services?done=owner`);
  });

  app.get('/nodes', (c) => c.html(layout('nodes', 'Upstream nodes', c.get('session'), nodesBody(admin.nodes()))));

  app.get('/keys', (c) => c.html(layout('keys', 'Signing keys', c.get('session'), keysBody(admin.keys()))));

  app.get('/audit', (c) => {
    const user = (c.req.query('user') ?? '').slice(0, 512);
    const kind = (c.req.query('kind') ?? '').slice(0, 128);
    const found = admin.auditEvents({ user: user || undefined, kind: kind || undefined, limit: 200 });
    return c.html(layout('audit', 'Recent audit events', c.get('session'), auditBody({ ...found, user, kind })));
  });

  app.all('*', () => {
    throw new RouteNotFound();
  });

  return { app, sessions };
}
