// The access decision: role first, then web-service ownership (configure-roles.md permissions table).

import type { Role } from './roles.ts';
import { ROLE_RANK } from './roles.ts';
import type { RouteRule } from './routes.ts';

export interface Principal {
  subject: string;
  role: Role;
}

export type Decision =
  | { effect: 'allow' }
  | { effect: 'deny'; reason: string; code: 'role_required' | 'ownership_required' };

// What a denied caller was trying to do, for the human sentence; unknown (operator) rules fall back to the id.
const ACTIONS: Readonly<Record<string, string>> = {
  'services.list': 'list web services',
  'services.listByName': 'list web services',
  'services.get': 'get a web service',
  'services.publishAutoVersion': 'publish a web service',
  'services.publish': 'publish a web service',
  'services.update': 'update a web service',
  'services.delete': 'delete a web service',
  'realtime.publishAutoVersion': 'publish a realtime web service',
  'realtime.publish': 'publish a realtime web service',
  'realtime.update': 'update a realtime web service',
  'nodes.collection': 'manage compute node configuration',
  'nodes.item': 'manage compute node configuration',
};

// Verb used in ownership sentences ("... may update it").
const OWNERSHIP_VERBS: Readonly<Record<string, string>> = {
  'services.update': 'update',
  'services.delete': 'delete',
  'realtime.update': 'update',
};

const ALLOW: Decision = Object.freeze({ effect: 'allow' });

function roleList(roles: readonly Role[]): string {
  const sorted = [...new Set(roles)].sort((a, b) => ROLE_RANK[a] - ROLE_RANK[b]);
  if (sorted.length <= 1) return sorted.join('');
  return `${sorted.slice(0, -1).join(', ')} or ${sorted[sorted.length - 1]!}`;
}

/** Allow or deny `principal` on `rule`; `owner` is the recorded publisher of the addressed service, if any. */
export function authorize(principal: Principal, rule: RouteRule, owner: string | null | undefined): Decision {
  const role = principal.role;
  if (!rule.roles.includes(role)) {
    const action = Object.hasOwn(ACTIONS, rule.id) ? ACTIONS[rule.id]! : `call this API (${rule.id})`;
    if (rule.roles.length === 0) {
      return { effect: 'deny', code: 'role_required', reason: `No role may ${action}: the operator has blocked it.` };
    }
    return {
      effect: 'deny',
      code: 'role_required',
      reason: `Role ${roleList(rule.roles)} is required to ${action}; you have ${String(role)}.`,
    };
  }
  if (rule.ownership !== 'owner-or-publisher' || role === 'Owner') return ALLOW;
  // Non-Owners may change only what they published; an unknown publisher means Owner only (fail closed).
  const verb = Object.hasOwn(OWNERSHIP_VERBS, rule.id)
    ? OWNERSHIP_VERBS[rule.id]!
    : rule.records === 'unpublish' ? 'delete' : 'change';
  if (typeof owner !== 'string' || owner === '') {
    return {
      effect: 'deny',
      code: 'ownership_required',
      reason: `No publisher is recorded for this web service, so only an Owner may ${verb} it; you have ${role}.`,
    };
  }
  if (owner === principal.subject && principal.subject !== '') return ALLOW;
  return {
    effect: 'deny',
    code: 'ownership_required',
    reason: `Only an Owner or the user who published this web service may ${verb} it; you have ${role} and did not publish it.`,
  };
}
