import { describe, it, expect } from 'vitest';
import { ML_SERVER_ROUTES, matchRoute, compileRoutes, normalizeTarget } from '../../src/policy/index.ts';
import type { RouteRule } from '../../src/policy/index.ts';

const T = ML_SERVER_ROUTES;

// Every route of the table: [method, path, rule id, params].
const routes: [string, string, string, Record<string, string>][] = [
  ['GET', '/services', 'services.list', {}],
  ['GET', '/services/add-one', 'services.listByName', { name: 'add-one' }],
  ['POST', '/services/add-one', 'services.publishAutoVersion', { name: 'add-one' }],
  ['GET', '/services/add-one/v1.0.0', 'services.get', { name: 'add-one', version: 'v1.0.0' }],
  ['POST', '/services/add-one/v1.0.0', 'services.publish', { name: 'add-one', version: 'v1.0.0' }],
  ['PATCH', '/services/add-one/v1.0.0', 'services.update', { name: 'add-one', version: 'v1.0.0' }],
  ['DELETE', '/services/add-one/v1.0.0', 'services.delete', { name: 'add-one', version: 'v1.0.0' }],
  ['POST', '/realtime-services/kmeans', 'realtime.publishAutoVersion', { name: 'kmeans' }],
  ['POST', '/realtime-services/kmeans/v2', 'realtime.publish', { name: 'kmeans', version: 'v2' }],
  ['PATCH', '/realtime-services/kmeans/v2', 'realtime.update', { name: 'kmeans', version: 'v2' }],
  ['POST', '/api/add-one/v1.0.0', 'api.consume', { name: 'add-one', version: 'v1.0.0' }],
  ['GET', '/api/add-one/v1.0.0/swagger.json', 'api.swagger', { name: 'add-one', version: 'v1.0.0' }],
  ['POST', '/api/bos-rf/1.0.0/batch', 'api.batch', { name: 'bos-rf', version: '1.0.0' }],
  ['GET', '/api/bos-rf/1.0.0/batch', 'api.batch', { name: 'bos-rf', version: '1.0.0' }],
  ['GET', '/api/bos-rf/1.0.0/batch/9c6be3d2', 'api.batchExecution', { name: 'bos-rf', version: '1.0.0', executionId: '9c6be3d2' }],
  ['DELETE', '/api/bos-rf/1.0.0/batch/9c6be3d2', 'api.batchExecution', { name: 'bos-rf', version: '1.0.0', executionId: '9c6be3d2' }],
  ['GET', '/api/bos-rf/1.0.0/batch/9c6be3d2/5/files', 'api.batchArtifacts', { name: 'bos-rf', version: '1.0.0', executionId: '9c6be3d2', index: '5' }],
  ['GET', '/api/bos-rf/1.0.0/batch/9c6be3d2/5/files/Histogram.png', 'api.batchArtifact', { name: 'bos-rf', version: '1.0.0', executionId: '9c6be3d2', index: '5', fileName: 'Histogram.png' }],
  ['GET', '/sessions', 'sessions.collection', {}],
  ['POST', '/sessions', 'sessions.collection', {}],
  ['DELETE', '/sessions/s1', 'sessions.close', { id: 's1' }],
  ['DELETE', '/sessions/s1/force', 'sessions.forceClose', { id: 's1' }],
  ['POST', '/sessions/s1/execute', 'sessions.execute', { id: 's1' }],
  ['POST', '/sessions/s1/cancel', 'sessions.cancel', { id: 's1' }],
  ['GET', '/sessions/s1/console-output', 'sessions.consoleOutput', { id: 's1' }],
  ['GET', '/sessions/s1/history', 'sessions.history', { id: 's1' }],
  ['GET', '/sessions/s1/workspace', 'sessions.workspace', { id: 's1' }],
  ['GET', '/sessions/s1/workspace/model', 'sessions.workspaceObject', { id: 's1', objectName: 'model' }],
  ['POST', '/sessions/s1/workspace/model', 'sessions.workspaceObject', { id: 's1', objectName: 'model' }],
  ['DELETE', '/sessions/s1/workspace/model', 'sessions.workspaceObject', { id: 's1', objectName: 'model' }],
  ['GET', '/sessions/s1/files', 'sessions.files', { id: 's1' }],
  ['POST', '/sessions/s1/files', 'sessions.files', { id: 's1' }],
  ['GET', '/sessions/s1/files/data.csv', 'sessions.file', { id: 's1', fileName: 'data.csv' }],
  ['DELETE', '/sessions/s1/files/data.csv', 'sessions.file', { id: 's1', fileName: 'data.csv' }],
  ['POST', '/sessions/s1/snapshot', 'sessions.createSnapshot', { id: 's1' }],
  ['POST', '/sessions/s1/loadsnapshot/snap9', 'sessions.loadSnapshot', { id: 's1', snapshotId: 'snap9' }],
  ['GET', '/snapshots', 'snapshots.list', {}],
  ['GET', '/snapshots/snap9', 'snapshots.item', { id: 'snap9' }],
  ['DELETE', '/snapshots/snap9', 'snapshots.item', { id: 'snap9' }],
  ['GET', '/status', 'status', {}],
  ['GET', '/user', 'user', {}],
  ['GET', '/computenodes', 'nodes.collection', {}],
  ['POST', '/computenodes', 'nodes.collection', {}],
  ['PUT', '/computenodes', 'nodes.collection', {}],
  ['PATCH', '/computenodes', 'nodes.collection', {}],
  ['DELETE', '/computenodes', 'nodes.collection', {}],
  ['GET', '/computenodes/node-1', 'nodes.item', { rest: 'node-1' }],
  ['POST', '/computenodes/node-1', 'nodes.item', { rest: 'node-1' }],
  ['PATCH', '/computenodes/node-1', 'nodes.item', { rest: 'node-1' }],
  ['DELETE', '/computenodes/node-1', 'nodes.item', { rest: 'node-1' }],
  ['PUT', '/computenodes/node%201/config', 'nodes.item', { rest: 'node 1/config' }],
];

describe('matchRoute: every route of ML_SERVER_ROUTES', () => {
  it.each(routes)('%s %s -> %s', (method, path, id, params) => {
    const r = matchRoute(T, method, path);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.match.rule.id).toBe(id);
    expect({ ...r.match.params }).toEqual(params);
  });

  it('covers every rule and every method of the table', () => {
    const covered = new Set(routes.map(([m, , id]) => `${id} ${m}`));
    for (const rule of T) for (const m of rule.methods) expect(covered, `${rule.id} ${m}`).toContain(`${rule.id} ${m}`);
  });

  it('does not contain the gateway-answered /login routes', () => {
    expect(matchRoute(T, 'POST', '/login')).toEqual({ ok: false, status: 404 });
    expect(matchRoute(T, 'POST', '/login/refreshToken')).toEqual({ ok: false, status: 404 });
  });
});

describe('matchRoute: HEAD is allowed wherever GET is', () => {
  it.each([
    ['/services', 'services.list'],
    ['/services/a/b', 'services.get'],
    ['/api/a/b/swagger.json', 'api.swagger'],
    ['/status', 'status'],
  ])('HEAD %s -> %s', (path, id) => {
    const r = matchRoute(T, 'HEAD', path);
    expect(r.ok && r.match.rule.id).toBe(id);
  });

  it('HEAD on a POST-only route is 405', () => {
    expect(matchRoute(T, 'HEAD', '/api/a/b')).toEqual({ ok: false, status: 405, allow: ['POST'] });
  });
});

describe('matchRoute: 404 (default deny) and 405', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/services/a/b/c'],
    ['GET', '/api/a'],
    ['GET', '/api/a/b/c'],
    ['GET', '/api/a/b/swagger.yaml'],
    ['GET', '/sessions/s1/unknown'],
    ['GET', '/snapshots/a/b'],
    ['GET', '/status/x'],
    ['GET', '/realtime-services'],
    ['GET', '/mlgate/health'],
    ['GET', 'services'],
    ['GET', ''],
  ])('%s %j -> 404', (method, path) => {
    expect(matchRoute(T, method, path)).toEqual({ ok: false, status: 404 });
  });

  it.each([
    ['PUT', '/services/a/b', ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE']],
    ['DELETE', '/services', ['GET', 'HEAD']],
    ['PUT', '/services/a', ['GET', 'HEAD', 'POST']],
    ['GET', '/api/a/b', ['POST']],
    ['POST', '/api/a/b/swagger.json', ['GET', 'HEAD']],
    ['PUT', '/api/a/b/batch', ['GET', 'HEAD', 'POST']],
    ['PATCH', '/sessions', ['GET', 'HEAD', 'POST']],
    ['GET', '/sessions/s1', ['DELETE']],
    ['POST', '/status', ['GET', 'HEAD']],
    ['OPTIONS', '/user', ['GET', 'HEAD']],
    ['GET', '/realtime-services/a/b', ['POST', 'PATCH']],
    ['get', '/status', ['GET', 'HEAD']], // methods are case-sensitive
  ])('%s %s -> 405 allow %j', (method, path, allow) => {
    expect(matchRoute(T, method, path)).toEqual({ ok: false, status: 405, allow });
  });
});

describe('matchRoute: fixed words are case-sensitive and matched on the raw segment', () => {
  it.each([
    ['GET', '/Services'],
    ['GET', '/SERVICES'],
    ['DELETE', '/Services/a/b'],
    ['POST', '/API/a/b'],
    ['GET', '/Status'],
    ['GET', '/computeNodes'],
    ['GET', '/%73ervices'], // encoded fixed word never matches
    ['DELETE', '/service%73/a/b'],
    ['GET', '/api/a/b/Swagger.json'],
  ])('%s %s -> 404', (method, path) => {
    expect(matchRoute(T, method, path)).toEqual({ ok: false, status: 404 });
  });

  it('no case variant of any route reaches a rule (the node may be case-insensitive)', () => {
    for (const [method, path] of routes) {
      const upper = path.toUpperCase();
      if (upper !== path) expect(matchRoute(T, method, upper).ok, upper).toBe(false);
    }
  });
});

describe('matchRoute: parameters are percent-decoded', () => {
  it('decodes UTF-8 and spaces in names', () => {
    const r = matchRoute(T, 'DELETE', '/services/caf%C3%A9%20v2/1.0');
    expect(r.ok && { ...r.match.params }).toEqual({ name: 'café v2', version: '1.0' });
  });

  it('treats an undecodable segment (not from normalizeTarget) as unroutable', () => {
    expect(matchRoute(T, 'GET', '/services/%zz')).toEqual({ ok: false, status: 404 });
  });

  it('routes exactly what normalizeTarget accepted', () => {
    const n = normalizeTarget('/api/add-one/v1.0.0?format=json');
    expect(n.ok).toBe(true);
    if (!n.ok) return;
    const r = matchRoute(T, 'POST', n.path);
    expect(r.ok && r.match.rule.id).toBe('api.consume');
  });
});

describe('compileRoutes', () => {
  const extra: RouteRule = { id: 'ops.lockStatus', methods: ['GET'], pattern: '/status', roles: ['Owner'], routeClass: 'status' };

  it('puts operator rules first so they win', () => {
    const table = compileRoutes([extra]);
    expect(table[0]!.id).toBe('ops.lockStatus');
    expect(table.length).toBe(T.length + 1);
    const r = matchRoute(table, 'GET', '/status');
    expect(r.ok && r.match.rule.id).toBe('ops.lockStatus');
  });

  it('falls through to base rules for methods the operator rule does not list', () => {
    const table = compileRoutes([{ id: 'ops.publishOwnerOnly', methods: ['POST'], pattern: '/services/{name}/{version}', roles: ['Owner'], records: 'publish', routeClass: 'services' }]);
    const post = matchRoute(table, 'POST', '/services/a/b');
    const del = matchRoute(table, 'DELETE', '/services/a/b');
    expect(post.ok && post.match.rule.id).toBe('ops.publishOwnerOnly');
    expect(del.ok && del.match.rule.id).toBe('services.delete');
  });

  it('accepts a custom base and returns a frozen table', () => {
    const table = compileRoutes([], [extra]);
    expect(table.map((r) => r.id)).toEqual(['ops.lockStatus']);
    expect(Object.isFrozen(table)).toBe(true);
    expect(Object.isFrozen(table[0])).toBe(true);
    expect(Object.isFrozen(T)).toBe(true);
  });

  const base = { id: 'x.rule', methods: ['GET'], roles: ['Reader'], routeClass: 'api' } as const;
  it.each([
    ['no leading slash', { ...base, pattern: 'services' }, /must start with '\/'/],
    ['trailing slash', { ...base, pattern: '/services/' }, /trailing slash/],
    ['empty segment', { ...base, pattern: '/a//b' }, /empty segment/],
    ['mixed segment', { ...base, pattern: '/a/v{version}' }, /mixes text and a parameter/],
    ['bad param name', { ...base, pattern: '/a/{1x}' }, /mixes text and a parameter/],
    ['duplicate param', { ...base, pattern: '/a/{x}/{x}' }, /appears twice/],
    ['rest not last', { ...base, pattern: '/a/{rest*}/b' }, /must be the last segment/],
    ['percent in literal', { ...base, pattern: '/a%2Fb' }, /outside RFC 3986 pchar/],
    ['semicolon in literal', { ...base, pattern: '/a;b' }, /outside RFC 3986 pchar/],
    ['dot segment', { ...base, pattern: '/a/..' }, /dot segment/],
    ['lower-case method', { ...base, pattern: '/a', methods: ['get'] }, /upper-case HTTP method/],
    ['no methods', { ...base, pattern: '/a', methods: [] }, /methods must be a non-empty list/],
    ['unknown role', { ...base, pattern: '/a', roles: ['Admin'] }, /unknown role "Admin"/],
    ['roles not a list', { ...base, pattern: '/a', roles: 'Owner' }, /roles must be a list/],
    ['bad ownership', { ...base, pattern: '/s/{name}/{version}', ownership: 'anyone' }, /ownership must be/],
    ['ownership without version', { ...base, pattern: '/s/{name}', ownership: 'owner-or-publisher' }, /need \{name\} and \{version\}/],
    ['unpublish without params', { ...base, pattern: '/s', records: 'unpublish' }, /need \{name\} and \{version\}/],
    ['publish without name', { ...base, pattern: '/s', records: 'publish' }, /records: publish needs \{name\}/],
    ['bad routeClass', { ...base, pattern: '/a', routeClass: 'Bad Class' }, /routeClass/],
    ['bad id', { ...base, pattern: '/a', id: '' }, /id must be/],
  ])('rejects %s', (_what, rule, message) => {
    expect(() => compileRoutes([rule as unknown as RouteRule])).toThrow(message);
  });

  it('names the offending rule in the message', () => {
    expect(() => compileRoutes([{ ...base, pattern: '/a/{x}/{x}' } as unknown as RouteRule])).toThrow(/route rule #1 "x.rule".*\/a\/\{x\}\/\{x\}/);
  });

  it('accepts an empty roles list as an explicit deny-all rule', () => {
    const table = compileRoutes([{ id: 'ops.noSessions', methods: ['GET', 'POST'], pattern: '/sessions', roles: [], routeClass: 'sessions' }]);
    const r = matchRoute(table, 'POST', '/sessions');
    expect(r.ok && r.match.rule.id).toBe('ops.noSessions');
    expect(r.ok && r.match.rule.roles).toEqual([]);
  });

  it('rejects duplicate ids, including clashes with the base table', () => {
    expect(() => compileRoutes([{ ...extra, id: 'services.publish' }])).toThrow(/duplicate rule id "services.publish"/);
  });
});

describe('compileRoutes: operator rules that take over web-service routes keep ownership and owner bookkeeping', () => {
  const op = (r: Partial<RouteRule> & Pick<RouteRule, 'methods' | 'pattern'>): RouteRule => ({ id: 'ops.rule', roles: ['Owner'], routeClass: 'custom', ...r });
  const first = (table: readonly RouteRule[]): RouteRule => table[0]!;

  it.each([
    ['Owner-only publish', op({ methods: ['POST'], pattern: '/services/{name}/{version}' }), undefined, 'publish'],
    ['Owner-only publish, server-chosen version', op({ methods: ['POST'], pattern: '/services/{name}' }), undefined, 'publish'],
    ['delete widened to Contributor', op({ methods: ['DELETE'], pattern: '/services/{name}/{version}', roles: ['Owner', 'Contributor'] }), 'owner-or-publisher', 'unpublish'],
    ['update by other parameter positions', op({ methods: ['PATCH'], pattern: '/services/{name}/{version}', roles: ['Contributor'] }), 'owner-or-publisher', undefined],
    ['blocked deletes (no role)', op({ methods: ['DELETE'], pattern: '/services/{name}/{version}', roles: [] }), 'owner-or-publisher', 'unpublish'],
    ['realtime update', op({ methods: ['PATCH'], pattern: '/realtime-services/{name}/{version}' }), 'owner-or-publisher', undefined],
  ] as [string, RouteRule, string | undefined, string | undefined][])('%s inherits them', (_what, rule, ownership, records) => {
    const r = first(compileRoutes([rule]));
    expect(r.ownership).toBe(ownership);
    expect(r.records).toBe(records);
  });

  it('a Contributor still cannot delete what another user published through a widened operator rule', async () => {
    const { authorize } = await import('../../src/policy/index.ts');
    const table = compileRoutes([op({ methods: ['DELETE'], pattern: '/services/{name}/{version}', roles: ['Owner', 'Contributor'] })]);
    const m = matchRoute(table, 'DELETE', '/services/a/1');
    expect(m.ok && m.match.rule.id).toBe('ops.rule');
    if (!m.ok) return;
    expect(authorize({ subject: 'ann', role: 'Contributor' }, m.match.rule, 'bert')).toMatchObject({ effect: 'deny', code: 'ownership_required' });
    expect(authorize({ subject: 'ann', role: 'Contributor' }, m.match.rule, 'ann').effect).toBe('allow');
  });

  it.each([
    ['GET beside POST', ['GET', 'POST'], [['ops.rule:GET', ['GET'], undefined, undefined], ['ops.rule:POST', ['POST'], undefined, 'publish']]],
    ['GET beside PATCH and DELETE', ['GET', 'PATCH', 'DELETE'], [['ops.rule:GET', ['GET'], undefined, undefined], ['ops.rule:PATCH', ['PATCH'], 'owner-or-publisher', undefined], ['ops.rule:DELETE', ['DELETE'], 'owner-or-publisher', 'unpublish']]],
    ['publish and delete', ['POST', 'DELETE'], [['ops.rule:POST', ['POST'], undefined, 'publish'], ['ops.rule:DELETE', ['DELETE'], 'owner-or-publisher', 'unpublish']]],
    ['GET and HEAD only', ['GET', 'HEAD'], [['ops.rule', ['GET', 'HEAD'], undefined, undefined]]],
  ] as [string, string[], [string, string[], string | undefined, string | undefined][]][])(
    '%s on a web service: one rule per group of methods, each inheriting only what its methods do',
    (_what, methods, expected) => {
      const table = compileRoutes([op({ methods, pattern: '/services/{name}/{version}', roles: ['Owner', 'Contributor'] })]);
      const mine = table.filter((r) => r.id.startsWith('ops.rule'));
      expect(mine.map((r) => [r.id, r.methods, r.ownership, r.records])).toEqual(expected);
      // What a request with each method matches carries only its own method's checks.
      for (const [id, ms, ownership, records] of expected) {
        for (const m of ms) {
          const hit = matchRoute(table, m, '/services/a/1');
          expect(hit.ok && [hit.match.rule.id, hit.match.rule.ownership, hit.match.rule.records], m).toEqual([id, ownership, records]);
        }
      }
    },
  );

  it('leaves rules alone that take over nothing with ownership', () => {
    for (const rule of [
      op({ methods: ['GET'], pattern: '/services/{name}/{version}' }), // GET has no bookkeeping
      op({ methods: ['DELETE'], pattern: '/sessions/{id}' }),
      op({ methods: ['DELETE'], pattern: '/services/{name}/{version}/extra' }), // longer: no overlap
      op({ methods: ['POST'], pattern: '/api/{name}/{version}' }),
    ]) {
      const r = first(compileRoutes([rule]));
      expect([r.ownership, r.records], rule.pattern).toEqual([undefined, undefined]);
    }
  });

  it.each([
    ['a pattern without {version}', op({ methods: ['DELETE'], pattern: '/services/{name}/latest' }), /must capture \{name\} and \{version\}/],
    ['a catch-all', op({ methods: ['DELETE'], pattern: '/services/{rest*}' }), /must capture \{name\} and \{version\}/],
    ['renamed parameters', op({ methods: ['PATCH'], pattern: '/services/{n}/{v}' }), /must capture \{name\} and \{version\}/],
    ['contradicting records', op({ methods: ['DELETE'], pattern: '/services/{name}/{version}', records: 'publish' }), /differ from the built-in rules/],
  ] as [string, RouteRule, RegExp][])('refuses %s (fails at start, never silently)', (_what, rule, message) => {
    expect(() => compileRoutes([rule])).toThrow(message);
  });
});
