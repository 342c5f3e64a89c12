// Roles and the implicit-role table of configure-roles.md (ML Server 9.2+ semantics).

export type Role = 'Owner' | 'Contributor' | 'Reader';

export const ROLE_RANK: Record<Role, number> = Object.freeze({ Owner: 3, Contributor: 2, Reader: 1 });

/** Group names (matched case-insensitively, as AD does) or Azure AD object ids, per role. */
export interface RoleMapping {
  Owner?: string[];
  Contributor?: string[];
  Reader?: string[];
}

const ROLES_HIGH_FIRST: readonly Role[] = ['Owner', 'Contributor', 'Reader'];

// Locale-independent fold; AD group names and GUIDs both compare case-insensitively.
function fold(s: string): string {
  return s.toLowerCase();
}

function declared(list: readonly string[] | undefined): list is readonly string[] {
  return Array.isArray(list) && list.length > 0;
}

/**
 * The user's role from their groups: highest mapped role wins; users in no mapped group get the
 * implicit role of configure-roles.md ("Role configuration states"), or null (no access at all).
 */
export function resolveRole(groups: readonly string[], mapping: RoleMapping): Role | null {
  const mine = new Set(groups.map(fold));
  for (const role of ROLES_HIGH_FIRST) {
    const list = mapping[role];
    if (declared(list) && list.some((g) => mine.has(fold(g)))) return role;
  }
  // Implicit role, decided only by which roles are declared (non-empty) in the configuration.
  if (declared(mapping.Reader)) return null;
  if (declared(mapping.Contributor)) return 'Reader';
  return 'Contributor';
}
