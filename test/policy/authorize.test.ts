import { describe, it, expect } from 'vitest';
import { authorize, matchRoute, ML_SERVER_ROUTES } from '../../src/policy/index.ts';
import type { Role, RouteRule } from '../../src/policy/index.ts';

function rule(method: string, path: string): RouteRule {
  const r = matchRoute(ML_SERVER_ROUTES, method, path);
  if (!r.ok) throw new Error(`no route for ${method} ${path}`);
  return r.match.rule;
}

const ME = 'alice';
const OTHER = 'bob';

// configure-roles.md permissions table: [operation, method, path, Owner, Contributor, Reader]
// for a service the caller published (owner = caller), so ownership never decides here.
const operations: [string, string, string, boolean, boolean, boolean][] = [
  ['publish', 'POST', '/services/s/v1', true, true, false],
  ['publish (server-generated version)', 'POST', '/services/s', true, true, false],
  ['publish realtime', 'POST', '/realtime-services/s/v1', true, true, false],
  ['publish realtime (server-generated version)', 'POST', '/realtime-services/s', true, true, false],
  ['update own', 'PATCH', '/services/s/v1', true, true, false],
  ['update own realtime', 'PATCH', '/realtime-services/s/v1', true, true, false],
  ['delete own', 'DELETE', '/services/s/v1', true, true, false],
  ['list', 'GET', '/services', true, true, true],
  ['list by name', 'GET', '/services/s', true, true, true],
  ['get', 'GET', '/services/s/v1', true, true, true],
  ['consume', 'POST', '/api/s/v1', true, true, true],
  ['consume swagger', 'GET', '/api/s/v1/swagger.json', true, true, true],
  ['consume batch', 'POST', '/api/s/v1/batch', true, true, true],
  ['batch results', 'GET', '/api/s/v1/batch/e1', true, true, true],
  ['batch cancel', 'DELETE', '/api/s/v1/batch/e1', true, true, true],
  ['batch artifact', 'GET', '/api/s/v1/batch/e1/0/files/out.png', true, true, true],
  ['create session', 'POST', '/sessions', true, true, true],
  ['execute in session', 'POST', '/sessions/x/execute', true, true, true],
  ['create snapshot', 'POST', '/sessions/x/snapshot', true, true, true],
  ['list snapshots', 'GET', '/snapshots', true, true, true],
  ['delete snapshot', 'DELETE', '/snapshots/x', true, true, true],
  ['status', 'GET', '/status', true, true, true],
  ['user', 'GET', '/user', true, true, true],
  ['node config list', 'GET', '/computenodes', true, false, false],
  ['node config change', 'POST', '/computenodes', true, false, false],
  ['node config item', 'DELETE', '/computenodes/n1', true, false, false],
];

const rows = operations.flatMap(([op, method, path, o, c, r]) =>
  (
    [
      ['Owner', o],
      ['Contributor', c],
      ['Reader', r],
    ] as [Role, boolean][]
  ).map(([role, allowed]) => [op, method, path, role, allowed] as const),
);

describe('authorize: every role x every operation', () => {
  it.each(rows)('%s (%s %s) as %s -> %s', (_op, method, path, role, allowed) => {
    const d = authorize({ subject: ME, role }, rule(method, path), ME);
    expect(d.effect).toBe(allowed ? 'allow' : 'deny');
    if (d.effect === 'deny') {
      expect(d.code).toBe('role_required');
      expect(d.reason).toContain(`you have ${role}.`);
    }
  });

  it('also covers every rule of the table', () => {
    const seen = new Set(operations.map(([, m, p]) => rule(m, p).id));
    const missing = ML_SERVER_ROUTES.filter((r) => !seen.has(r.id) && !r.id.startsWith('sessions.') && !r.id.startsWith('api.') && !r.id.startsWith('snapshots.'));
    expect(missing.map((r) => r.id)).toEqual([]);
  });
});

// Ownership of PATCH/DELETE: [case, role, recorded owner, allowed]
const ownership: [string, Role, string | null | undefined, boolean][] = [
  ['Owner, own service', 'Owner', ME, true],
  ["Owner, another user's service", 'Owner', OTHER, true],
  ['Owner, no recorded owner (null)', 'Owner', null, true],
  ['Owner, no recorded owner (undefined)', 'Owner', undefined, true],
  ['Contributor, own service', 'Contributor', ME, true],
  ["Contributor, another user's service", 'Contributor', OTHER, false],
  ['Contributor, no recorded owner (null)', 'Contributor', null, false],
  ['Contributor, no recorded owner (undefined)', 'Contributor', undefined, false],
  ['Contributor, empty recorded owner', 'Contributor', '', false],
  ['Contributor, owner differs only by case', 'Contributor', ME.toUpperCase(), false],
  ['Reader, own service (role still required)', 'Reader', ME, false],
  ["Reader, another user's service", 'Reader', OTHER, false],
  ['Reader, no recorded owner', 'Reader', null, false],
];

describe.each([
  ['PATCH', '/services/s/v1', 'update'],
  ['DELETE', '/services/s/v1', 'delete'],
  ['PATCH', '/realtime-services/s/v1', 'update'],
])('authorize: ownership for %s %s', (method, path, verb) => {
  it.each(ownership)('%s', (_case, role, owner, allowed) => {
    const d = authorize({ subject: ME, role }, rule(method, path), owner);
    expect(d.effect).toBe(allowed ? 'allow' : 'deny');
    if (d.effect === 'deny' && role !== 'Reader') {
      expect(d.code).toBe('ownership_required');
      expect(d.reason).toContain(`may ${verb} it`);
    }
    if (d.effect === 'deny' && role === 'Reader') expect(d.code).toBe('role_required');
  });
});

describe('authorize: reasons are human sentences naming what is missing', () => {
  it('names the required roles and the caller role', () => {
    expect(authorize({ subject: ME, role: 'Reader' }, rule('POST', '/services/s/v1'), null)).toEqual({
      effect: 'deny',
      code: 'role_required',
      reason: 'Role Contributor or Owner is required to publish a web service; you have Reader.',
    });
    expect(authorize({ subject: ME, role: 'Contributor' }, rule('GET', '/computenodes'), null)).toEqual({
      effect: 'deny',
      code: 'role_required',
      reason: 'Role Owner is required to manage compute node configuration; you have Contributor.',
    });
  });

  it('explains the ownership denial without naming the other publisher', () => {
    const other = authorize({ subject: ME, role: 'Contributor' }, rule('DELETE', '/services/s/v1'), OTHER);
    expect(other).toEqual({
      effect: 'deny',
      code: 'ownership_required',
      reason: 'Only an Owner or the user who published this web service may delete it; you have Contributor and did not publish it.',
    });
    expect(other.effect === 'deny' && other.reason).not.toContain(OTHER);
    expect(authorize({ subject: ME, role: 'Contributor' }, rule('PATCH', '/services/s/v1'), null)).toEqual({
      effect: 'deny',
      code: 'ownership_required',
      reason: 'No publisher is recorded for this web service, so only an Owner may update it; you have Contributor.',
    });
  });

  it('lists three roles in rank order for operator rules', () => {
    const r: RouteRule = { id: 'ops.custom', methods: ['GET'], pattern: '/x', roles: ['Owner', 'Reader', 'Contributor'], routeClass: 'api' };
    expect(authorize({ subject: ME, role: 'Owner' }, r, null)).toEqual({ effect: 'allow' });
    const onlyOwner: RouteRule = { ...r, roles: ['Owner'] };
    const d = authorize({ subject: ME, role: 'Reader' }, onlyOwner, null);
    expect(d.effect === 'deny' && d.reason).toBe('Role Owner is required to call this API (ops.custom); you have Reader.');
  });

  it('denies everyone on a rule with no roles (an operator block), saying so', () => {
    const blocked: RouteRule = { id: 'ops.noSessions', methods: ['POST'], pattern: '/sessions', roles: [], routeClass: 'sessions' };
    for (const role of ['Owner', 'Contributor', 'Reader'] as Role[]) {
      expect(authorize({ subject: ME, role }, blocked, null)).toEqual({
        effect: 'deny',
        code: 'role_required',
        reason: 'No role may call this API (ops.noSessions): the operator has blocked it.',
      });
    }
  });

  it('denies a principal with an unknown role', () => {
    const d = authorize({ subject: ME, role: 'Admin' as Role }, rule('GET', '/status'), null);
    expect(d.effect).toBe('deny');
  });

  it('never lets an empty subject match an empty recorded owner', () => {
    expect(authorize({ subject: '', role: 'Contributor' }, rule('DELETE', '/services/s/v1'), '').effect).toBe('deny');
  });
});
