// Admin revocation API under /mlgate/admin, Owner only (DESIGN section 4). The CLI (`mlgate revoke`, `mlgate
// sessions`) is a client of exactly this API. Mounted by app.ts with one app.route(); errors are typed gateway
// errors answered by the app's one error handler.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge } from '../errors.ts';
import { guardStore, readJsonObject, requireString } from '../http/helpers.ts';
import type { AuditSink } from '../observability/index.ts';
import type { TokenStore } from '../store/index.ts';
import { hashRefreshToken, type VerifiedToken } from '../tokens/index.ts';

export interface AdminDeps {
  /** The same bearer check the proxied path uses (signature, expiry, revocation view and its freshness). */
  authenticate(header: string | undefined, now: number): Promise<VerifiedToken>;
  store: TokenStore;
  audit: AuditSink;
}

type AdminEnv = { Variables: { requestId: string; actor: string } };

const BODY_LIMIT = 16 * 1024;

export function adminRoutes(deps: AdminDeps): Hono<AdminEnv> {
  const { store, audit } = deps;
  const admin = new Hono<AdminEnv>();

  // Every path under /mlgate/admin, known or not, needs an Owner: nothing about the API is told to anyone else.
  admin.use('*', async (c, next) => {
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

  admin.post('/revoke/refresh-token', body, async (c) => {
    const refreshToken = requireString(await readJsonObject(c), 'refreshToken', 512);
    const now = Date.now();
    const rec = await guardStore(store.getRefresh(hashRefreshToken(refreshToken), now));
    if (!rec) throw new NotFound('No live refresh token matches.', 'refresh_token_not_found');
    // A refresh token is ended with its family, as DELETE /login/refreshToken does: its access tokens end too.
    await guardStore(store.revokeFamily(rec.familyId, now));
    audit('admin.revoke.refresh_token', { ...who(c), user: rec.identity.subject, sid: rec.familyId });
    return c.json({ revoked: 'family', familyId: rec.familyId, subject: rec.identity.subject });
  });

  admin.post('/revoke/family', body, async (c) => {
    const familyId = requireString(await readJsonObject(c), 'familyId', 128);
    const found = await guardStore(store.revokeFamily(familyId, Date.now()));
    audit('admin.revoke.family', { ...who(c), sid: familyId, found });
    return c.json({ revoked: 'family', familyId, found });
  });

  admin.post('/revoke/user', body, async (c) => {
    const subject = requireString(await readJsonObject(c), 'subject', 512);
    const now = Date.now();
    const families = await guardStore(store.revokeSubject(subject, now, now));
    audit('admin.revoke.user', { ...who(c), user: subject, notBefore: now, families });
    return c.json({ revoked: 'user', subject, notBefore: now, families });
  });

  admin.get('/users/:subject/sessions', async (c) => {
    const subject = c.req.param('subject');
    const families = await guardStore(store.listFamilies(subject, Date.now()));
    audit('admin.sessions', { ...who(c), user: subject, count: families.length });
    return c.json({
      subject,
      families: families.map((f) => ({
        familyId: f.familyId,
        provider: f.provider,
        startedAt: new Date(f.startedAt).toISOString(),
        lastUsedAt: new Date(f.lastUsedAt).toISOString(),
        expiresAt: new Date(f.expiresAt).toISOString(),
        clientAddress: f.clientAddress ?? null,
      })),
    });
  });

  for (const path of ['/revoke/refresh-token', '/revoke/family', '/revoke/user']) {
    admin.all(path, () => {
      throw new MethodNotAllowed(['POST']);
    });
  }
  admin.all('/users/:subject/sessions', () => {
    throw new MethodNotAllowed(['GET', 'HEAD']);
  });
  return admin;
}
