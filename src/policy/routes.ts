// The route table: ordered, first match on (pattern, method), default deny (404; 405 for a known
// pattern with another method). Fixed words match case-sensitively against the RAW segment.

import type { Role } from './roles.ts';
import { ROLE_RANK } from './roles.ts';
import { decodeSegment, MAX_SEGMENTS } from './target.ts';

export type RouteAction = 'gateway' | 'proxy';

export interface RouteRule {
  id: string;
  methods: readonly string[];
  pattern: string;
  roles: readonly Role[];
  ownership?: 'owner-or-publisher';
  records?: 'publish' | 'unpublish';
  routeClass: string;
}

export interface RouteMatch {
  rule: RouteRule;
  params: Record<string, string>;
}

export type MatchResult = { ok: true; match: RouteMatch } | { ok: false; status: 404 | 405; allow?: string[] };

const ALL: readonly Role[] = ['Owner', 'Contributor', 'Reader'];
const PUBLISHERS: readonly Role[] = ['Owner', 'Contributor'];
const OWNER: readonly Role[] = ['Owner'];

// ML Server 9.x operationalization API (deployr-api-docs 9.0.1 core list, mrsdeploy / azureml-model-management-sdk
// clients for realtime and batch). /login* is answered by the gateway itself and is deliberately absent.
const BASE_RULES: readonly RouteRule[] = [
  // Web services management.
  { id: 'services.list', methods: ['GET'], pattern: '/services', roles: ALL, routeClass: 'services' },
  { id: 'services.listByName', methods: ['GET'], pattern: '/services/{name}', roles: ALL, routeClass: 'services' },
  // Publish with a server-generated version: the version is not in the path, only in the node's answer.
  { id: 'services.publishAutoVersion', methods: ['POST'], pattern: '/services/{name}', roles: PUBLISHERS, records: 'publish', routeClass: 'services' },
  { id: 'services.get', methods: ['GET'], pattern: '/services/{name}/{version}', roles: ALL, routeClass: 'services' },
  { id: 'services.publish', methods: ['POST'], pattern: '/services/{name}/{version}', roles: PUBLISHERS, records: 'publish', routeClass: 'services' },
  { id: 'services.update', methods: ['PATCH'], pattern: '/services/{name}/{version}', roles: PUBLISHERS, ownership: 'owner-or-publisher', routeClass: 'services' },
  { id: 'services.delete', methods: ['DELETE'], pattern: '/services/{name}/{version}', roles: PUBLISHERS, ownership: 'owner-or-publisher', records: 'unpublish', routeClass: 'services' },
  // Realtime web services (9.1+) share the (name, version) namespace; they are deleted via /services.
  { id: 'realtime.publishAutoVersion', methods: ['POST'], pattern: '/realtime-services/{name}', roles: PUBLISHERS, records: 'publish', routeClass: 'services' },
  { id: 'realtime.publish', methods: ['POST'], pattern: '/realtime-services/{name}/{version}', roles: PUBLISHERS, records: 'publish', routeClass: 'services' },
  { id: 'realtime.update', methods: ['PATCH'], pattern: '/realtime-services/{name}/{version}', roles: PUBLISHERS, ownership: 'owner-or-publisher', routeClass: 'services' },
  // Service consumption (request-response, swagger, asynchronous batch).
  { id: 'api.consume', methods: ['POST'], pattern: '/api/{name}/{version}', roles: ALL, routeClass: 'api' },
  { id: 'api.swagger', methods: ['GET'], pattern: '/api/{name}/{version}/swagger.json', roles: ALL, routeClass: 'api' },
  { id: 'api.batch', methods: ['GET', 'POST'], pattern: '/api/{name}/{version}/batch', roles: ALL, routeClass: 'api' },
  { id: 'api.batchExecution', methods: ['GET', 'DELETE'], pattern: '/api/{name}/{version}/batch/{executionId}', roles: ALL, routeClass: 'api' },
  { id: 'api.batchArtifacts', methods: ['GET'], pattern: '/api/{name}/{version}/batch/{executionId}/{index}/files', roles: ALL, routeClass: 'api' },
  { id: 'api.batchArtifact', methods: ['GET'], pattern: '/api/{name}/{version}/batch/{executionId}/{index}/files/{fileName}', roles: ALL, routeClass: 'api' },
  // Remote sessions (mrsdeploy remote execution).
  { id: 'sessions.collection', methods: ['GET', 'POST'], pattern: '/sessions', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.close', methods: ['DELETE'], pattern: '/sessions/{id}', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.forceClose', methods: ['DELETE'], pattern: '/sessions/{id}/force', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.execute', methods: ['POST'], pattern: '/sessions/{id}/execute', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.cancel', methods: ['POST'], pattern: '/sessions/{id}/cancel', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.consoleOutput', methods: ['GET'], pattern: '/sessions/{id}/console-output', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.history', methods: ['GET'], pattern: '/sessions/{id}/history', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.workspace', methods: ['GET'], pattern: '/sessions/{id}/workspace', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.workspaceObject', methods: ['GET', 'POST', 'DELETE'], pattern: '/sessions/{id}/workspace/{objectName}', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.files', methods: ['GET', 'POST'], pattern: '/sessions/{id}/files', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.file', methods: ['GET', 'DELETE'], pattern: '/sessions/{id}/files/{fileName}', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.createSnapshot', methods: ['POST'], pattern: '/sessions/{id}/snapshot', roles: ALL, routeClass: 'sessions' },
  { id: 'sessions.loadSnapshot', methods: ['POST'], pattern: '/sessions/{id}/loadsnapshot/{snapshotId}', roles: ALL, routeClass: 'sessions' },
  // Snapshots.
  { id: 'snapshots.list', methods: ['GET'], pattern: '/snapshots', roles: ALL, routeClass: 'snapshots' },
  { id: 'snapshots.item', methods: ['GET', 'DELETE'], pattern: '/snapshots/{id}', roles: ALL, routeClass: 'snapshots' },
  // Status and the caller's own user record.
  { id: 'status', methods: ['GET'], pattern: '/status', roles: ALL, routeClass: 'status' },
  { id: 'user', methods: ['GET'], pattern: '/user', roles: ALL, routeClass: 'user' },
  // Centralized compute-node configuration (9.2+): exact paths unverified in public docs; Owner only, so a
  // wrong guess opens nothing (operators add the exact paths in config if they differ).
  { id: 'nodes.collection', methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], pattern: '/computenodes', roles: OWNER, routeClass: 'admin' },
  { id: 'nodes.item', methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], pattern: '/computenodes/{rest*}', roles: OWNER, routeClass: 'admin' },
];

// ---- pattern compilation ----

type Seg = { lit: string; param?: undefined } | { lit?: undefined; param: string };
interface Compiled {
  segs: readonly Seg[];
  rest: string | null; // name of a final '{x*}' parameter (one or more remaining segments)
}

const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,=:@]+$/;
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)(\*)?\}$/;

function compilePattern(pattern: string): Compiled {
  const bad = (why: string): Error => new Error(`Invalid route pattern "${pattern}": ${why}`);
  if (typeof pattern !== 'string' || !pattern.startsWith('/')) throw bad("it must start with '/'");
  if (pattern === '/') return { segs: [], rest: null };
  if (pattern.endsWith('/')) throw bad('no trailing slash (ML Server routes have none)');
  const raw = pattern.slice(1).split('/');
  if (raw.length > MAX_SEGMENTS) throw bad(`more than ${MAX_SEGMENTS} segments`);
  const segs: Seg[] = [];
  const names = new Set<string>();
  let rest: string | null = null;
  raw.forEach((s, i) => {
    if (s === '') throw bad('empty segment');
    const m = PARAM.exec(s);
    if (m) {
      const name = m[1]!;
      if (names.has(name)) throw bad(`parameter {${name}} appears twice`);
      names.add(name);
      if (m[2]) {
        if (i !== raw.length - 1) throw bad(`{${name}*} must be the last segment`);
        rest = name;
      } else {
        segs.push({ param: name });
      }
      return;
    }
    if (s.includes('{') || s.includes('}')) throw bad(`segment "${s}" mixes text and a parameter; use a whole-segment {name}`);
    if (!LITERAL.test(s)) throw bad(`segment "${s}" has characters outside RFC 3986 pchar (no '%', ';', '\\')`);
    if (s === '.' || s === '..') throw bad('dot segment');
    segs.push({ lit: s });
  });
  return { segs, rest };
}

// Compiled patterns per rule object (rules are frozen, so the cache cannot go stale).
const cache = new WeakMap<RouteRule, Compiled>();
function compiled(rule: RouteRule): Compiled {
  let c = cache.get(rule);
  if (c === undefined) {
    c = compilePattern(rule.pattern);
    cache.set(rule, c);
  }
  return c;
}

function paramNames(c: Compiled): Set<string> {
  const s = new Set<string>();
  for (const seg of c.segs) if (seg.param !== undefined) s.add(seg.param);
  if (c.rest !== null) s.add(c.rest);
  return s;
}

function validateRule(rule: RouteRule, index: number): RouteRule {
  const where = `route rule #${index + 1}${rule && typeof rule.id === 'string' ? ` "${rule.id}"` : ''}`;
  const bad = (why: string): Error => new Error(`Invalid ${where}: ${why}`);
  if (rule === null || typeof rule !== 'object') throw bad('not an object');
  if (typeof rule.id !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(rule.id)) throw bad('id must be a non-empty word (letters, digits, . _ : -)');
  if (!Array.isArray(rule.methods) || rule.methods.length === 0) throw bad('methods must be a non-empty list');
  for (const m of rule.methods) {
    if (typeof m !== 'string' || !/^[A-Z][A-Z-]*$/.test(m)) throw bad(`method "${String(m)}" must be an upper-case HTTP method`);
  }
  // An empty list is an explicit deny-all rule (operators blocking an API); authorize() refuses everyone on it.
  if (!Array.isArray(rule.roles)) throw bad('roles must be a list of Owner, Contributor, Reader (empty: nobody)');
  for (const r of rule.roles) {
    if (!Object.hasOwn(ROLE_RANK, r)) throw bad(`unknown role "${String(r)}" (use Owner, Contributor, Reader)`);
  }
  if (rule.ownership !== undefined && rule.ownership !== 'owner-or-publisher') throw bad(`ownership must be 'owner-or-publisher'`);
  if (rule.records !== undefined && rule.records !== 'publish' && rule.records !== 'unpublish') throw bad(`records must be 'publish' or 'unpublish'`);
  if (typeof rule.routeClass !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(rule.routeClass)) throw bad('routeClass must be a short lower-case label');
  let c: Compiled;
  try {
    c = compilePattern(rule.pattern);
  } catch (e) {
    throw bad((e as Error).message);
  }
  // Ownership is keyed by (name, version), so rules that read or write it must capture them.
  const names = paramNames(c);
  if ((rule.ownership !== undefined || rule.records === 'unpublish') && !(names.has('name') && names.has('version'))) {
    throw bad('ownership and records: unpublish need {name} and {version} in the pattern');
  }
  if (rule.records === 'publish' && !names.has('name')) throw bad('records: publish needs {name} in the pattern');
  const frozen: RouteRule = Object.freeze({
    id: rule.id,
    methods: Object.freeze([...rule.methods]),
    pattern: rule.pattern,
    roles: Object.freeze([...rule.roles]),
    ...(rule.ownership !== undefined ? { ownership: rule.ownership } : {}),
    ...(rule.records !== undefined ? { records: rule.records } : {}),
    routeClass: rule.routeClass,
  });
  cache.set(frozen, c);
  return frozen;
}

function validateTable(rules: readonly RouteRule[]): readonly RouteRule[] {
  const out = rules.map(validateRule);
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.id)) throw new Error(`Invalid route table: duplicate rule id "${r.id}"`);
    seen.add(r.id);
  }
  return Object.freeze(out);
}

export const ML_SERVER_ROUTES: readonly RouteRule[] = validateTable(BASE_RULES);

function overlaps(a: Compiled, b: Compiled): boolean {
  const la = a.segs.length;
  const lb = b.segs.length;
  if (a.rest === null && b.rest === null && la !== lb) return false;
  if (a.rest === null && b.rest !== null && la <= lb) return false;
  if (b.rest === null && a.rest !== null && lb <= la) return false;
  for (let i = 0; i < Math.min(la, lb); i++) {
    const x = a.segs[i]!.lit;
    const y = b.segs[i]!.lit;
    if (x !== undefined && y !== undefined && x !== y) return false;
  }
  return true;
}

/**
 * An operator rule that takes over paths and methods of a base rule with ownership or owner bookkeeping inherits
 * them, method by method: operator rules change WHO may call, never whether the publisher is checked and recorded
 * (otherwise a rule letting Contributors DELETE would skip the ownership check, and an Owner-only delete would leave
 * stale owners). A rule whose methods inherit different things is split into one rule per group of methods (ids
 * `<id>:<METHODS>`): a GET listed beside a POST must not record its caller as a publisher, nor a GET beside a DELETE
 * be checked for ownership or end the owner record.
 */
function inheritOwnership(rule: RouteRule, index: number, base: readonly RouteRule[]): RouteRule[] {
  const mine = compilePattern(rule.pattern);
  const guarded = base.filter((b) => (b.ownership !== undefined || b.records !== undefined) && overlaps(mine, compiled(b)));
  if (!guarded.some((b) => b.methods.some((m) => rule.methods.includes(m)))) return [rule];
  const where = `route rule #${index + 1} "${rule.id}"`;
  const names = paramNames(mine);
  const groups = new Map<string, { methods: string[]; ownership: RouteRule['ownership']; records: RouteRule['records']; ids: string }>();
  for (const method of rule.methods) {
    const shadowed = guarded.filter((b) => b.methods.includes(method));
    const ids = shadowed.map((b) => b.id).join(', ');
    const ownership = shadowed.some((b) => b.ownership !== undefined) ? ('owner-or-publisher' as const) : undefined;
    const records = [...new Set(shadowed.map((b) => b.records).filter((r) => r !== undefined))];
    if (records.length > 1) throw new Error(`Invalid ${where}: it covers both publish and delete of web services (${ids}); write one rule per method`);
    const inherits = ownership !== undefined || records[0] !== undefined;
    if (inherits && ((rule.ownership !== undefined && rule.ownership !== ownership) || (rule.records !== undefined && rule.records !== records[0]))) {
      throw new Error(`Invalid ${where}: its ownership/records differ from the built-in rules it takes over (${ids})`);
    }
    const group = inherits ? { ownership, records: records[0] } : { ownership: rule.ownership, records: rule.records };
    if ((group.ownership !== undefined || group.records === 'unpublish') && !(names.has('name') && names.has('version'))) {
      throw new Error(`Invalid ${where}: it takes over ${ids}, whose publisher is checked or recorded, so its pattern must capture {name} and {version}`);
    }
    const key = `${group.ownership ?? ''}|${group.records ?? ''}`;
    const existing = groups.get(key);
    if (existing) existing.methods.push(method);
    else groups.set(key, { methods: [method], ...group, ids });
  }
  const split = groups.size > 1;
  return [...groups.values()].map((g) => {
    const { ownership: _o, records: _r, ...rest } = rule;
    return {
      ...rest,
      id: split ? `${rule.id}:${g.methods.join('+')}` : rule.id,
      methods: g.methods,
      ...(g.ownership !== undefined ? { ownership: g.ownership } : {}),
      ...(g.records !== undefined ? { records: g.records } : {}),
    };
  });
}

/**
 * Operator rules (from config) go first, then the base table; throws a clear Error on any bad rule. Operator rules
 * that take over publish/update/delete of web services inherit their ownership check and owner bookkeeping.
 */
export function compileRoutes(extraRules: readonly RouteRule[], base: readonly RouteRule[] = ML_SERVER_ROUTES): readonly RouteRule[] {
  const checked = extraRules.flatMap((r, i) => {
    validateRule(r, i); // shape first, with its own messages
    return inheritOwnership(r, i, base);
  });
  return validateTable([...checked, ...base]);
}

// ---- matching ----

function shapeMatches(c: Compiled, segments: readonly string[]): boolean {
  const n = c.segs.length;
  if (c.rest === null ? segments.length !== n : segments.length <= n) return false;
  for (let i = 0; i < n; i++) {
    const lit = c.segs[i]!.lit;
    if (lit !== undefined && lit !== segments[i]) return false;
  }
  return true;
}

function extractParams(c: Compiled, segments: readonly string[]): Record<string, string> | null {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  try {
    c.segs.forEach((seg, i) => {
      if (seg.param !== undefined) params[seg.param] = decodeSegment(segments[i]!);
    });
    if (c.rest !== null) params[c.rest] = segments.slice(c.segs.length).map(decodeSegment).join('/');
  } catch {
    return null; // path did not come from normalizeTarget: treat as unroutable
  }
  return params;
}

function methodAllowed(rule: RouteRule, method: string): boolean {
  return rule.methods.includes(method) || (method === 'HEAD' && rule.methods.includes('GET'));
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
function sortMethods(ms: Set<string>): string[] {
  const rank = (m: string): number => {
    const i = METHOD_ORDER.indexOf(m);
    return i === -1 ? METHOD_ORDER.length : i;
  };
  return [...ms].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** First rule whose pattern and method match `path` (a normalizeTarget path); 405 lists what is allowed. */
export function matchRoute(table: readonly RouteRule[], method: string, path: string): MatchResult {
  if (typeof path !== 'string' || !path.startsWith('/')) return { ok: false, status: 404 };
  const segments = path === '/' ? [] : path.slice(1).split('/');
  let allow: Set<string> | null = null;
  for (const rule of table) {
    const c = compiled(rule);
    if (!shapeMatches(c, segments)) continue;
    if (methodAllowed(rule, method)) {
      const params = extractParams(c, segments);
      if (params === null) return { ok: false, status: 404 };
      return { ok: true, match: { rule, params } };
    }
    allow ??= new Set<string>();
    for (const m of rule.methods) allow.add(m);
    if (rule.methods.includes('GET')) allow.add('HEAD');
  }
  return allow === null ? { ok: false, status: 404 } : { ok: false, status: 405, allow: sortMethods(allow) };
}
