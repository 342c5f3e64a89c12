// The console's pages, rendered on the server with hono/html: every interpolated value is escaped (& < > " ');
// nothing here uses raw() on data. Attributes are always double-quoted. No inline script or style (CSP).
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { KeyView, UserSessions, SessionView } from '../admin/index.ts';
import type { AuditEvent } from '../observability/index.ts';
import type { NodeStatus } from '../proxy/index.ts';
import type { ConsoleSession } from './sessions.ts';

export const BASE = '/mlgate/console';
type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const PAGES = [
  ['sessions', 'Sessions'],
  ['services', 'Web services'],
  ['nodes', 'Nodes'],
  ['keys', 'Signing keys'],
  ['audit', 'Audit'],
] as const;
export type PageName = (typeof PAGES)[number][0];

/** Fixed confirmation messages chosen by a `done` query word (no user input is reflected). */
export const FLASH: Record<string, string> = {
  family: 'The session was revoked: its refresh token and access tokens no longer work.',
  user: "All of the user's sessions were revoked, and every access token issued to them before now.",
  owner: 'The owner was recorded.',
};

const when = (iso: string | number): string => {
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
};

function document(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · mlgate console</title>
<link rel="stylesheet" href="${BASE}/static/console.css">
</head>
<body>
${body}
</body>
</html>`;
}

export function csrfField(session: ConsoleSession): Html {
  return html`<input type="hidden" name="csrf" value="${session.csrf}">`;
}

export function layout(page: PageName, title: string, session: ConsoleSession, body: Html, flash?: string): Html {
  const nav = PAGES.map(
    ([name, label]) => html`<a href="${BASE}/${name}"${name === page ? html` aria-current="page"` : ''}>${label}</a>`,
  );
  return document(
    title,
    html`<header>
<span class="brand">mlgate console</span>
<nav>${nav}</nav>
<form method="post" action="${BASE}/logout">${csrfField(session)}<span>${session.displayName}</span><button type="submit">Log out</button></form>
</header>
<main>
${flash ? html`<div class="flash" role="status">${flash}</div>` : ''}
<h1>${title}</h1>
${body}
</main>`,
  );
}

export function loginPage(opts: { error?: string; username?: string; notice?: string }): Html {
  return document(
    'Log in',
    html`<main><div class="card">
<h1>mlgate console</h1>
${opts.notice ? html`<div class="flash" role="status">${opts.notice}</div>` : ''}
${opts.error ? html`<div class="error" role="alert">${opts.error}</div>` : ''}
<form method="post" action="${BASE}/login">
<label>Username <input name="username" autocomplete="username" required value="${opts.username ?? ''}"></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
<p class="note">Owners only: the local administrator, or a member of a group mapped to the Owner role.</p>
</div></main>`,
  );
}

/** A full page for an error (403 for non-Owners, 503 when the store is down, ...). */
export function errorPage(status: number, heading: string, message: string, requestId: string): Html {
  return document(
    heading,
    html`<main><div class="card">
<h1>${heading}</h1>
<div class="error" role="alert">${message}</div>
<p class="note">Status ${status} · request ${requestId}</p>
<p><a href="${BASE}/login">Back to the login page</a></p>
</div></main>`,
  );
}

function sessionRows(session: ConsoleSession, user: string, rows: SessionView[]): Html[] {
  return rows.map(
    (s) => html`<tr>
<td>${s.provider}</td>
<td>${when(s.startedAt)}</td>
<td>${when(s.lastUsedAt)}</td>
<td>${when(s.expiresAt)}</td>
<td class="mono">${s.clientAddress ?? '—'}</td>
<td class="mono" title="refresh family id">${s.familyId.slice(0, 8)}…</td>
<td><form class="inline" method="post" action="${BASE}/sessions/revoke-family">${csrfField(session)}<input type="hidden" name="familyId" value="${s.familyId}"><input type="hidden" name="subject" value="${user}"><button class="danger" type="submit">Revoke</button></form></td>
</tr>`,
  );
}

export function sessionsBody(session: ConsoleSession, opts: { users: UserSessions[]; next: string | null; after: string | null; filter: string; limit: number }): Html {
  const users = opts.users.map(
    (u) => html`<section class="user">
<div class="head"><h2>${u.subject}</h2>
<form class="inline" method="post" action="${BASE}/sessions/revoke-user">${csrfField(session)}<input type="hidden" name="subject" value="${u.subject}"><button class="danger" type="submit">Revoke all sessions of this user</button></form></div>
<table><thead><tr><th>Provider</th><th>Created</th><th>Last used</th><th>Expires</th><th>Client address</th><th>Family</th><th></th></tr></thead>
<tbody>${sessionRows(session, u.subject, u.sessions)}</tbody></table>
</section>`,
  );
  const pageLink = (after: string) => `${BASE}/sessions?limit=${opts.limit}&after=${encodeURIComponent(after)}`;
  return html`<p class="lead">Active refresh-token families (one per login), newest login first. Revoking one ends its refresh token and its access tokens on every instance.</p>
<form class="filters" method="get" action="${BASE}/sessions">
<label>User (exact) <input name="user" value="${opts.filter}"></label>
<button class="secondary" type="submit">Show</button>
${opts.filter ? html`<a href="${BASE}/sessions">All users</a>` : ''}
</form>
${opts.users.length === 0 ? html`<div class="empty">No active sessions${opts.filter ? ' for this user' : ''}.</div>` : users}
<div class="pager">
${opts.after !== null ? html`<a href="${BASE}/sessions?limit=${opts.limit}">First page</a>` : ''}
${opts.next !== null ? html`<a rel="next" href="${pageLink(opts.next)}">Next page</a>` : ''}
</div>`;
}

export function servicesBody(session: ConsoleSession, opts: { services: Array<{ service: string; owner: string }>; next: string | null; after: string | null }): Html {
  const rows = opts.services.map(
    (s) => html`<tr>
<td class="mono">${s.service}</td>
<td>${s.owner}</td>
<td><form class="inline" method="post" action="${BASE}/services/transfer">${csrfField(session)}<input type="hidden" name="service" value="${s.service}"><input name="owner" aria-label="New owner" placeholder="new owner" required> <button class="secondary" type="submit">Transfer</button></form></td>
</tr>`,
  );
  return html`<p class="lead">Web services with the owner mlgate recorded when they were published (section "Roles" of the README). Only the owner or an Owner may update or delete a service; a service published before mlgate has no recorded owner until one is set here.</p>
${opts.services.length === 0 ? html`<div class="empty">No recorded owners.</div>` : html`<table><thead><tr><th>Service (name/version)</th><th>Owner</th><th>Transfer ownership</th></tr></thead><tbody>${rows}</tbody></table>`}
<div class="pager">
${opts.after !== null ? html`<a href="${BASE}/services">First page</a>` : ''}
${opts.next !== null ? html`<a rel="next" href="${BASE}/services?after=${encodeURIComponent(opts.next)}">Next page</a>` : ''}
</div>
<h2>Record the owner of any service</h2>
<form class="filters" method="post" action="${BASE}/services/transfer">${csrfField(session)}
<label>Name <input name="name" required></label>
<label>Version <input name="version" required></label>
<label>Owner (user id) <input name="owner" required></label>
<button type="submit">Record owner</button>
</form>`;
}

export function nodesBody(nodes: NodeStatus[]): Html {
  const rows = nodes.map((n) => {
    const state = !n.healthy ? html`<span class="badge down">unhealthy</span>` : n.ejectedForMs > 0 ? html`<span class="badge ejected">ejected ${Math.ceil(n.ejectedForMs / 1000)} s</span>` : html`<span class="badge up">up</span>`;
    return html`<tr>
<td class="mono">${n.url}</td>
<td>${state}</td>
<td>${n.probeLatencyMs === null ? html`<span class="badge muted">no probe yet</span>` : `${n.probeLatencyMs} ms`}</td>
<td>${n.ejections}</td>
<td>${n.consecutiveFailures}</td>
<td>${n.requests}</td>
<td>${n.failures}</td>
<td>${n.inflight}</td>
</tr>`;
  });
  return html`<p class="lead">Operationalization nodes behind this instance: health from the active probes, passive ejections after requests fail in a row. Latency is the last probe's round trip.</p>
<table><thead><tr><th>Node</th><th>State</th><th>Probe latency</th><th>Ejections</th><th>Failures in a row</th><th>Requests</th><th>Failed</th><th>In flight</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function keysBody(keys: KeyView[]): Html {
  const rows = keys.map(
    (k) => html`<tr>
<td class="mono">${k.kid}</td>
<td>${k.alg}</td>
<td>${when(k.createdAt)}</td>
<td>${k.active ? html`<span class="badge up">signing</span>` : html`<span class="badge muted">verify only</span>`}</td>
<td>${k.generated ? 'generated at start (dev)' : 'PEM file'}</td>
</tr>`,
  );
  return html`<p class="lead">Keys that sign and verify mlgate access tokens, published at <span class="mono">/.well-known/jwks.json</span>. Created: generation time, or the key file's modification time.</p>
<table><thead><tr><th>Key id (kid)</th><th>Algorithm</th><th>Created</th><th>Use</th><th>Source</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function details(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([k, v]) => k !== 'user' && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
}

export function auditBody(opts: { events: AuditEvent[]; kinds: string[]; capacity: number; user: string; kind: string }): Html {
  const rows = opts.events.map(
    (e) => html`<tr>
<td class="nowrap">${when(e.time)}</td>
<td class="mono nowrap">${e.event}</td>
<td>${e.user ?? ''}</td>
<td class="mono details">${details(e.fields)}</td>
</tr>`,
  );
  return html`<p class="lead">The most recent audit events of this instance (it keeps ${opts.capacity}; other instances and cluster workers keep their own — the audit log stream has them all).</p>
<form class="filters" method="get" action="${BASE}/audit">
<label>User <input name="user" value="${opts.user}"></label>
<label>Kind <input name="kind" list="kinds" value="${opts.kind}" placeholder="e.g. login or login.failed"></label>
<datalist id="kinds">${opts.kinds.map((k) => html`<option value="${k}">`)}</datalist>
<button class="secondary" type="submit">Filter</button>
${opts.user || opts.kind ? html`<a href="${BASE}/audit">Clear</a>` : ''}
</form>
${opts.events.length === 0 ? html`<div class="empty">No matching events.</div>` : html`<table><thead><tr><th>Time</th><th>Event</th><th>User</th><th>Details</th></tr></thead><tbody>${rows}</tbody></table>`}`;
}
