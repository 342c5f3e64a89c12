// The admin console in a real browser: Debian's chromium (scripts/test.sh installs it when missing) driven by
// playwright-core, against a real gateway over HTTPS. Logs in as admin, finds the session a curl-style login made,
// revokes it (the refresh token then answers 401), and shows that a Reader is refused, names with <script> are only
// text, a cross-site form and a form without its CSRF token are refused, and an idle session goes back to login.
// With MLGATE_SCREENSHOTS=1 (npm run console-screenshots) it also saves a screenshot of each page to docs/console/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceKey } from '../../src/policy/index.ts';
import { hashRefreshToken } from '../../src/tokens/index.ts';
import { ADMIN_PASSWORD, loginAdmin, request, ROOT, startStack, type Stack } from './setup.ts';
import { login, PASSWORD, ROLES, TestDirectory } from './users.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.MLGATE_SCREENSHOTS ? join(ROOT, 'docs', 'console') : undefined;
const EVIL_USER = `mallory<script>window.__pwned=1</script>"'><img src=x onerror="window.__pwned=2">`;
const EVIL_SERVICE = serviceKey(`churn<script>alert("x")</script>'`, 'v1');

const directory = new TestDirectory({
  rita: ['readers'],
  olive: ['owners'],
  'ann.lee': ['contributors'],
  [EVIL_USER]: ['contributors'],
});

let stack: Stack;
let browser: Browser;
let profile: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run npm test (scripts/test.sh installs Debian's chromium) or apt-get install chromium`);
  stack = await startStack({
    config: { auth: { roles: ROLES }, upstream: { healthCheck: { enabled: true, intervalMs: 1000 } } },
    providers: [directory],
  });
  profile = mkdtempSync(join(tmpdir(), 'mlgate-chromium-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh temporary profile (--user-data-dir) of its own; nothing reaches out.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env: { ...process.env, HOME: profile },
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await stack?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** A fresh browser context (own cookies) that counts dialogs: none may ever open (a script ran). */
async function newPage(): Promise<{ page: Page; dialogs: string[] }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 620 } });
  contexts.push(context);
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return { page, dialogs };
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

async function consoleLogin(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/mlgate/console`);
  await page.waitForURL(/\/mlgate\/console\/login/);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
}

/** No script ran and no element came from data: no <script> or <img> anywhere, no flag set. */
async function expectNoInjection(page: Page, dialogs: string[]): Promise<void> {
  expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(await page.locator('script, img').count()).toBe(0);
  expect(dialogs).toEqual([]);
}

describe('admin console in chromium', () => {
  it('admin sees the session of a curl login, revokes it, and its refresh token then answers 401', async () => {
    // The session to find: a plain HTTPS login, as curl would make it.
    const curl = await loginAdmin(stack);
    const rec = await stack.gateway.store.getRefresh(hashRefreshToken(curl.refresh_token), Date.now());
    const familyId = rec!.familyId;
    // Other users, one with markup in the name, and a service whose name has markup too.
    await login(stack, 'ann.lee');
    await login(stack, 'olive');
    await login(stack, EVIL_USER);
    await stack.gateway.store.setOwnerIfAbsent(EVIL_SERVICE, EVIL_USER);
    await stack.gateway.store.setOwnerIfAbsent('churn-model/1.2.0', 'ann.lee');
    await stack.gateway.store.setOwnerIfAbsent('forecast/3', 'olive');

    const { page, dialogs } = await newPage();
    await page.goto(`${stack.url}/mlgate/console`);
    await page.waitForURL(/\/mlgate\/console\/login$/);
    await shot(page, 'login');
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(/\/mlgate\/console\/sessions$/), page.click('button[type=submit]')]);

    const cookies = await page.context().cookies();
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, path: c.path }))).toEqual([
      { name: '__Secure-mlgate-console', httpOnly: true, secure: true, sameSite: 'Strict', path: '/mlgate/console' },
    ]);
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');

    // The curl login's family is listed under admin, with its client address.
    const row = page.locator('tr', { has: page.locator(`input[name=familyId][value="${familyId}"]`) });
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('td').nth(4).innerText()).toBe('127.0.0.1');
    // The user with markup in the name is shown as text, and nothing ran.
    expect(await page.locator('h2', { hasText: 'mallory<script>' }).innerText()).toBe(EVIL_USER);
    await expectNoInjection(page, dialogs);
    await shot(page, 'sessions');

    await Promise.all([page.waitForURL(/done=family/), row.locator('button', { hasText: 'Revoke' }).click()]);
    expect(await page.locator('.flash').innerText()).toContain('revoked');
    expect(await page.locator(`input[name=familyId][value="${familyId}"]`).count()).toBe(0);

    const refused = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: curl.refresh_token } });
    expect(refused.status).toBe(401);
    expect(refused.json().error).toBe('invalid_refresh_token');
    expect((await request(stack, 'GET', '/user', { token: curl.access_token })).status).toBe(401);

    // The other pages, and the escaped service name.
    await page.goto(`${stack.url}/mlgate/console/services`);
    expect(await page.locator('td.mono', { hasText: 'churn<script>' }).innerText()).toBe(EVIL_SERVICE);
    await expectNoInjection(page, dialogs);
    await shot(page, 'services');
    // Transfer through the form.
    const svcRow = page.locator('tr', { hasText: 'churn-model/1.2.0' });
    await svcRow.locator('input[name=owner]').fill('olive');
    await Promise.all([page.waitForURL(/done=owner/), svcRow.locator('button').click()]);
    expect(await stack.gateway.store.getOwner('churn-model/1.2.0')).toBe('olive');

    await page.goto(`${stack.url}/mlgate/console/nodes`);
    await expect.poll(async () => (await page.reload(), page.locator('.badge.up').count()), { timeout: 5000 }).toBe(1);
    expect(await page.locator('td', { hasText: ' ms' }).count()).toBe(1);
    await shot(page, 'nodes');
    await page.goto(`${stack.url}/mlgate/console/keys`);
    expect(await page.locator('td.mono').first().innerText()).toBe(stack.gateway.keys.signer.kid);
    await shot(page, 'keys');
    await request(stack, 'POST', '/login', { json: { username: 'rita', password: 'not-her-password' } });
    await page.goto(`${stack.url}/mlgate/console/audit`);
    expect(await page.locator('td', { hasText: 'admin.revoke.family' }).count()).toBeGreaterThan(0);
    await shot(page, 'audit');
    await page.fill('input[name=user]', 'rita');
    await page.fill('input[name=kind]', 'login');
    await Promise.all([page.waitForURL(/user=rita/), page.click('form.filters button')]);
    const kinds = await page.locator('tbody td.mono:nth-child(2)').allInnerTexts();
    expect(kinds.length).toBeGreaterThan(0);
    expect(kinds.every((k) => k.startsWith('login.'))).toBe(true);
    await expectNoInjection(page, dialogs);
  }, 90_000);

  it('a Reader-mapped user is refused with a 403 page', async () => {
    const { page } = await newPage();
    const answer = page.waitForResponse((r) => r.url().endsWith('/mlgate/console/login') && r.request().method() === 'POST');
    await consoleLogin(page, stack.url, 'rita', PASSWORD);
    expect((await answer).status()).toBe(403);
    expect(await page.locator('h1').innerText()).toBe('Access denied');
    expect(await page.locator('.error').innerText()).toContain('Only Owners may use the admin console');
    expect(await page.context().cookies()).toEqual([]);
    await shot(page, 'forbidden');
  });

  it('a form from another site, and a form without its CSRF token, are refused (403) and change nothing', async () => {
    const { page } = await newPage();
    await consoleLogin(page, stack.url, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(/\/sessions$/);
    await login(stack, 'ann.lee');
    const before = await stack.gateway.store.listFamilies('ann.lee', Date.now());
    expect(before.length).toBeGreaterThan(0);

    // Another origin (another port) auto-submits a form to the console in the same browser.
    const evil = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${stack.url}/mlgate/console/sessions/revoke-user"><input name="subject" value="ann.lee"><input name="csrf" value="guess"></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const port = (evil.address() as { port: number }).port;
      const answer = page.waitForResponse((r) => r.url().endsWith('/sessions/revoke-user'));
      await page.goto(`http://127.0.0.1:${port}/`);
      expect((await answer).status()).toBe(403);
    } finally {
      evil.close();
    }
    expect(await stack.gateway.store.listFamilies('ann.lee', Date.now())).toEqual(before);

    // The console's own form with its hidden token removed.
    await page.goto(`${stack.url}/mlgate/console/sessions?user=ann.lee`);
    const form = page.locator('form[action$="/sessions/revoke-user"]');
    await form.locator('input[name=csrf]').evaluate((el) => el.remove());
    const answer = page.waitForResponse((r) => r.url().endsWith('/sessions/revoke-user'));
    await form.locator('button').click();
    expect((await answer).status()).toBe(403);
    expect(await page.locator('.error').innerText()).toContain('CSRF');
    expect(await stack.gateway.store.listFamilies('ann.lee', Date.now())).toEqual(before);
  });

  it('an idle console session redirects to the login page', async () => {
    const short = await startStack({ config: { console: { idleTimeoutSeconds: 2 } } });
    try {
      const { page } = await newPage();
      await consoleLogin(page, short.url, 'admin', ADMIN_PASSWORD);
      await page.waitForURL(/\/sessions$/);
      await new Promise((r) => setTimeout(r, 2300));
      await page.goto(`${short.url}/mlgate/console/keys`);
      await page.waitForURL(/\/mlgate\/console\/login\?ended=idle$/);
      expect(await page.locator('.flash').innerText()).toContain('inactivity');
      expect(await page.locator('input[name=password]').count()).toBe(1);
    } finally {
      await short.close();
    }
  });
});
