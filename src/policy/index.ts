// Public surface of policy/: pure functions and plain data, no I/O, no imports from the rest of src/.

export type { Role, RoleMapping } from './roles.ts';
export { ROLE_RANK, resolveRole } from './roles.ts';
export type { TargetResult } from './target.ts';
export { normalizeTarget, decodeSegment } from './target.ts';
export type { RouteAction, RouteRule, RouteMatch, MatchResult } from './routes.ts';
export { ML_SERVER_ROUTES, matchRoute, compileRoutes } from './routes.ts';
export type { Principal, Decision } from './authorize.ts';
export { authorize } from './authorize.ts';
export type { PublishAnswer } from './ownership.ts';
export { publishedVersion, serviceKey } from './ownership.ts';
