import { describe, it, expect } from 'vitest';
import { resolveRole, ROLE_RANK } from '../../src/policy/index.ts';
import type { Role, RoleMapping } from '../../src/policy/index.ts';

describe('ROLE_RANK', () => {
  it('ranks Owner > Contributor > Reader', () => {
    expect(ROLE_RANK).toEqual({ Owner: 3, Contributor: 2, Reader: 1 });
  });
});

// configure-roles.md, "How are roles assigned": the persona table, every row.
const personas: [string, string[], RoleMapping, Role | null][] = [
  ['Administrator', ['admins', 'engineering', 'FTE-north'], { Owner: ['admins', 'managers'], Contributor: ['stats'] }, 'Owner'],
  ['Lead data scientist', ['managers', 'stats', 'FTE-north'], { Owner: ['admins', 'managers'], Contributor: ['stats'], Reader: ['app-devs'] }, 'Owner'],
  ['R programmer', ['stats', 'FTE-north'], { Owner: ['admins', 'managers'], Contributor: ['stats'], Reader: ['app-devs'] }, 'Contributor'],
  ['Python developer', ['stats', 'FTE-north'], { Owner: ['admins', 'managers'] }, 'Contributor'],
  ['Application Developer', ['app-devs', 'FTE-north'], { Owner: ['admins', 'managers'], Contributor: ['stats'], Reader: ['app-devs'] }, 'Reader'],
  ['System Integrator', ['vendor2'], { Owner: ['admins', 'managers'], Contributor: ['stats'] }, 'Reader'],
  ['Sales', ['sales'], { Owner: ['admins', 'managers'], Contributor: ['stats'], Reader: ['app-devs'] }, null],
];

describe('resolveRole: persona table of configure-roles.md', () => {
  it.each(personas)('%s', (_persona, groups, mapping, role) => {
    expect(resolveRole(groups, mapping)).toBe(role);
  });
});

// configure-roles.md, "Role configuration states": users WITHOUT a matching group, every row.
const O = ['owners'];
const C = ['contributors'];
const R = ['readers'];
const configurations: [string, RoleMapping, Role | null][] = [
  ['No roles: RBAC not configured', {}, 'Contributor'],
  ['No roles: all lists empty', { Owner: [], Contributor: [], Reader: [] }, 'Contributor'],
  ['Owner only', { Owner: O }, 'Contributor'],
  ['Owner only (empty Contributor and Reader lists)', { Owner: O, Contributor: [], Reader: [] }, 'Contributor'],
  ['Contributor + Owner', { Owner: O, Contributor: C }, 'Reader'],
  ['Contributor only', { Contributor: C }, 'Reader'],
  ['Reader + Contributor + Owner', { Owner: O, Contributor: C, Reader: R }, null],
  ['Reader + Owner', { Owner: O, Reader: R }, null],
  ['Reader only', { Reader: R }, null],
  ['Reader + Contributor', { Contributor: C, Reader: R }, null],
];

describe('resolveRole: implicit role for users in no mapped group', () => {
  it.each(configurations)('%s', (_config, mapping, role) => {
    expect(resolveRole(['some-other-group'], mapping)).toBe(role);
    expect(resolveRole([], mapping)).toBe(role);
  });
});

describe('resolveRole: members of mapped groups get their role in every configuration', () => {
  const full: RoleMapping = { Owner: O, Contributor: C, Reader: R };
  it.each([
    [['owners'], full, 'Owner'],
    [['contributors'], full, 'Contributor'],
    [['readers'], full, 'Reader'],
    [['readers', 'contributors'], full, 'Contributor'], // highest wins
    [['readers', 'owners', 'contributors'], full, 'Owner'],
    [['owners'], { Owner: O }, 'Owner'],
    [['contributors'], { Contributor: C }, 'Contributor'],
    [['readers'], { Reader: R }, 'Reader'],
    [['readers'], { Owner: O, Reader: R }, 'Reader'],
  ] as [string[], RoleMapping, Role][])('%j in %j -> %s', (groups, mapping, role) => {
    expect(resolveRole(groups, mapping)).toBe(role);
  });
});

describe('resolveRole: matching', () => {
  it('matches group names case-insensitively, as AD does', () => {
    expect(resolveRole(['ADMINS'], { Owner: ['Admins'] })).toBe('Owner');
    expect(resolveRole(['App Developers'], { Reader: ['app developers'] })).toBe('Reader');
  });

  it('matches Azure AD object ids case-insensitively', () => {
    const oid = '6f1c2a3b-0000-4e5f-8a9b-0123456789ab';
    expect(resolveRole([oid.toUpperCase()], { Contributor: [oid], Reader: ['x'] })).toBe('Contributor');
  });

  it('does not match partial names or DN fragments', () => {
    expect(resolveRole(['admin'], { Owner: ['admins'], Reader: ['r'] })).toBeNull();
    expect(resolveRole(['CN=admins,OU=x'], { Owner: ['admins'], Reader: ['r'] })).toBeNull();
  });
});
