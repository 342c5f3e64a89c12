// configure-roles.md, row by row, against the pure policy: the "Roles and their permissions" table for EVERY rule of
// ML_SERVER_ROUTES, the "Role configuration states" (implicit-role) table end to end (groups -> role -> decision),
// and "Web service permissions after role change".
import { describe, expect, it } from 'vitest';
import { authorize, matchRoute, ML_SERVER_ROUTES, resolveRole } from '../../src/policy/index.ts';
import type { Decision, Role, RoleMapping, RouteRule } from '../../src/policy/index.ts';

type Category = 'publish' | 'update' | 'delete' | 'list' | 'consume' | 'other' | 'nodeConfig';

// Which row of the permissions table each rule of the table falls under. A new rule must be classified here.
const CATEGORY: Readonly<Record<string, Category>> = {
  'services.list': 'list',
  'services.listByName': 'list',
  'services.get': 'list',
  'services.publishAutoVersion': 'publish',
  'services.publish': 'publish',
  'services.update': 'update',
  'services.delete': 'delete',
  'realtime.publishAutoVersion': 'publish',
  'realtime.publish': 'publish',
  'realtime.update': 'update',
  'api.consume': 'consume',
  'api.swagger': 'consume',
  'api.batch': 'consume',
  'api.batchExecution': 'consume',
  'api.batchArtifacts': 'consume',
  'api.batchArtifact': 'consume',
  'sessions.collection': 'other',
  'sessions.close': 'other',
  'sessions.forceClose': 'other',
  'sessions.execute': 'other',
  'sessions.cancel': 'other',
  'sessions.consoleOutput': 'other',
  'sessions.history': 'other',
  'sessions.workspace': 'other',
  'sessions.workspaceObject': 'other',
  'sessions.files': 'other',
  'sessions.file': 'other',
  'sessions.createSnapshot': 'other',
  'sessions.loadSnapshot': 'other',
  'snapshots.list': 'other',
  'snapshots.item': 'other',
  status: 'other',
  user: 'other',
  'nodes.collection': 'nodeConfig',
  'nodes.item': 'nodeConfig',
};

type Owned = 'own' | 'other' | 'none';
type Expect = 'allow' | 'role_required' | 'ownership_required';

// The permissions table. [role, the table's words, category, whose service, expected decision].
const PERMISSIONS: [Role, string, Category, Owned[], Expect][] = [
  ['Owner', 'Publish any service', 'publish', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'Update any service', 'update', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'Delete any service', 'delete', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'List any service', 'list', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'Consume any service', 'consume', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'Call any other API', 'other', ['own', 'other', 'none'], 'allow'],
  ['Owner', 'centralized configuration APIs (no API restrictions)', 'nodeConfig', ['own', 'other', 'none'], 'allow'],

  ['Contributor', 'Publish any service', 'publish', ['own', 'other', 'none'], 'allow'],
  ['Contributor', 'Update their services', 'update', ['own'], 'allow'],
  ['Contributor', 'Update service published by another (prohibited)', 'update', ['other'], 'ownership_required'],
  ['Contributor', 'Update a service with no recorded publisher (mlgate: Owner only)', 'update', ['none'], 'ownership_required'],
  ['Contributor', 'Delete their services', 'delete', ['own'], 'allow'],
  ['Contributor', 'Delete service published by another (prohibited)', 'delete', ['other'], 'ownership_required'],
  ['Contributor', 'Delete a service with no recorded publisher (mlgate: Owner only)', 'delete', ['none'], 'ownership_required'],
  ['Contributor', 'List any service', 'list', ['own', 'other', 'none'], 'allow'],
  ['Contributor', 'Consume any service', 'consume', ['own', 'other', 'none'], 'allow'],
  ['Contributor', 'Call almost any other API', 'other', ['own', 'other', 'none'], 'allow'],
  ['Contributor', 'Centralized node configuration (prohibited)', 'nodeConfig', ['own', 'other', 'none'], 'role_required'],

  ['Reader', 'List any service', 'list', ['own', 'other', 'none'], 'allow'],
  ['Reader', 'Consume any service', 'consume', ['own', 'other', 'none'], 'allow'],
  ['Reader', 'Call almost any other APIs', 'other', ['own', 'other', 'none'], 'allow'],
  ['Reader', 'Publish any service (prohibited)', 'publish', ['own', 'other', 'none'], 'role_required'],
  ['Reader', 'Update any service (prohibited, even their own)', 'update', ['own', 'other', 'none'], 'role_required'],
  ['Reader', 'Delete any service (prohibited, even their own)', 'delete', ['own', 'other', 'none'], 'role_required'],
  ['Reader', 'Centralized node configuration (prohibited)', 'nodeConfig', ['own', 'other', 'none'], 'role_required'],
];

const ME = 'carol';
const OTHER = 'dave';
const ownerOf = (o: Owned): string | null => (o === 'own' ? ME : o === 'other' ? OTHER : null);

function outcome(d: Decision): Expect {
  return d.effect === 'allow' ? 'allow' : d.code;
}

const rulesIn = (c: Category): RouteRule[] => ML_SERVER_ROUTES.filter((r) => CATEGORY[r.id] === c);

describe('configure-roles.md "Roles and their permissions": every row, on every rule it covers', () => {
  it('classifies every rule of ML_SERVER_ROUTES (and nothing that is not in it)', () => {
    expect(ML_SERVER_ROUTES.map((r) => r.id).filter((id) => !Object.hasOwn(CATEGORY, id))).toEqual([]);
    const ids = new Set(ML_SERVER_ROUTES.map((r) => r.id));
    expect(Object.keys(CATEGORY).filter((id) => !ids.has(id))).toEqual([]);
  });

  it('has a row for every role x category', () => {
    for (const role of ['Owner', 'Contributor', 'Reader'] as Role[]) {
      for (const c of new Set(Object.values(CATEGORY))) {
        const owned = PERMISSIONS.filter(([r, , cat]) => r === role && cat === c).flatMap(([, , , o]) => o);
        expect(owned.sort(), `${role} ${c}`).toEqual(['none', 'other', 'own']);
      }
    }
  });

  it.each(PERMISSIONS)('%s: %s (%s, services: %j) -> %s', (role, _words, category, owned, expected) => {
    const rules = rulesIn(category);
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      for (const o of owned) {
        const d = authorize({ subject: ME, role }, rule, ownerOf(o));
        expect(outcome(d), `${rule.id} owner=${o}`).toBe(expected);
        if (d.effect === 'deny') expect(d.reason).toContain(`you have ${role}`);
      }
    }
  });

  it('ownership matters only on update and delete rules', () => {
    for (const rule of ML_SERVER_ROUTES) {
      const c = CATEGORY[rule.id];
      expect(rule.ownership === 'owner-or-publisher', rule.id).toBe(c === 'update' || c === 'delete');
    }
  });

  it('publish rules record the owner, delete rules remove it', () => {
    for (const rule of ML_SERVER_ROUTES) {
      const c = CATEGORY[rule.id];
      expect(rule.records, rule.id).toBe(c === 'publish' ? 'publish' : c === 'delete' ? 'unpublish' : undefined);
    }
  });
});

// "Role configuration states": users who are in none of the mapped groups, and what they may then do.
const O = ['owners'];
const C = ['contributors'];
const R = ['readers'];
const IMPLICIT: [string, RoleMapping, Role | null][] = [
  ['No roles: RBAC not configured', {}, 'Contributor'],
  ['Owner only', { Owner: O }, 'Contributor'],
  ['Contributor + Owner', { Owner: O, Contributor: C }, 'Reader'],
  ['Contributor only', { Contributor: C }, 'Reader'],
  ['Reader + Contributor + Owner', { Owner: O, Contributor: C, Reader: R }, null],
  ['Reader + Owner', { Owner: O, Reader: R }, null],
  ['Reader only', { Reader: R }, null],
];

function can(role: Role | null, method: string, path: string, owner: string | null): boolean {
  if (role === null) return false; // the app refuses a user without a role before any rule (403 no_role)
  const m = matchRoute(ML_SERVER_ROUTES, method, path);
  if (!m.ok) throw new Error(`no route for ${method} ${path}`);
  return authorize({ subject: ME, role }, m.match.rule, owner).effect === 'allow';
}

describe('configure-roles.md "Role configuration states": users without a role', () => {
  it.each(IMPLICIT)('%s -> %s', (_config, mapping, role) => {
    expect(resolveRole(['FTE-north'], mapping)).toBe(role);
    const publishes = role === 'Contributor';
    const reads = role !== null;
    expect(can(role, 'POST', '/services/s/1', null)).toBe(publishes);
    expect(can(role, 'PATCH', '/services/s/1', ME)).toBe(publishes);
    expect(can(role, 'DELETE', '/services/s/1', ME)).toBe(publishes);
    expect(can(role, 'DELETE', '/services/s/1', OTHER)).toBe(false);
    expect(can(role, 'GET', '/services', null)).toBe(reads);
    expect(can(role, 'POST', '/api/s/1', null)).toBe(reads);
    expect(can(role, 'GET', '/status', null)).toBe(reads);
    expect(can(role, 'GET', '/computenodes', null)).toBe(false);
  });

  it('default (no roles): every authenticated user can publish, list, consume and change only what they deployed', () => {
    const role = resolveRole([], {});
    expect(role).toBe('Contributor');
    expect(can(role, 'POST', '/services/s', null)).toBe(true);
    expect(can(role, 'GET', '/services/s/1', null)).toBe(true);
    expect(can(role, 'PATCH', '/services/s/1', ME)).toBe(true);
    expect(can(role, 'PATCH', '/services/s/1', OTHER)).toBe(false);
  });
});

describe('configure-roles.md "Web service permissions after role change"', () => {
  const mapping: RoleMapping = { Owner: O, Contributor: C };

  it('an Owner reassigned to Contributor keeps their own services but loses everyone else\'s', () => {
    const before = resolveRole(['owners'], mapping);
    const after = resolveRole(['contributors'], mapping);
    expect([before, after]).toEqual(['Owner', 'Contributor']);
    expect(can(before, 'DELETE', '/services/s/1', OTHER)).toBe(true);
    expect(can(after, 'DELETE', '/services/s/1', OTHER)).toBe(false);
    expect(can(after, 'PATCH', '/services/s/1', ME)).toBe(true);
    expect(can(after, 'POST', '/api/s/1', OTHER)).toBe(true);
  });

  it('a user in no role any more (Reader implicit) can no longer manage even the services they published', () => {
    const after = resolveRole(['FTE-north'], mapping);
    expect(after).toBe('Reader');
    expect(can(after, 'PATCH', '/services/s/1', ME)).toBe(false);
    expect(can(after, 'DELETE', '/services/s/1', ME)).toBe(false);
    expect(can(after, 'POST', '/api/s/1', ME)).toBe(true);
  });

  it('with Reader declared, a user in no role any more gets no access at all', () => {
    expect(resolveRole(['FTE-north'], { ...mapping, Reader: R })).toBeNull();
  });
});
