// The web console at /ui/ in a real browser, against a real tokend started
// by run.sh (TOKEND_URL, TOKEND_ADMIN_PASSWORD). Each scenario of issue 14.8;
// every page is photographed into TOKEND_SCREENSHOTS.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const BASE = process.env.TOKEND_URL;
const ADMIN_PASSWORD = process.env.TOKEND_ADMIN_PASSWORD;
const SHOTS = process.env.TOKEND_SCREENSHOTS;
assert.ok(BASE && ADMIN_PASSWORD, 'run through tests/browser/run.sh');
const XSS = '<img src=x onerror=alert(1)>';

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.TOKEND_CHROMIUM || '/usr/bin/chromium', headless: true });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
});

// --- over HTTP, beside the browser ---------------------------------------

async function http(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function obtain(username, password) {
  const res = await http('POST', '/api/v1/token/obtain', { username, password });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

// Access tokens live 6 s here: a fresh one for each call.
const adminToken = async () => (await obtain('admin', ADMIN_PASSWORD)).access;

async function createUser(username, password, isAdmin = false) {
  const res = await http('POST', '/api/v1/users', { username, password, is_admin: isAdmin }, await adminToken());
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

// --- in the browser --------------------------------------------------------

// A new browser context (its own storage: one session), with every dialog
// recorded and confirmations accepted.
async function open(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, ...options });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on('dialog', async (dialog) => {
    page.dialogs.push({ type: dialog.type(), message: dialog.message() });
    await dialog.accept();
  });
  page.on('pageerror', (e) => page.errors.push(e.message));
  // A script or style the policy blocked: the page relies on something inline.
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) page.errors.push(m.text()); });
  await page.goto(`${BASE}/ui/`);
  return page;
}

async function signIn(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signedIn(username, password, options) {
  const page = await open(options);
  await signIn(page, username, password);
  await page.getByRole('heading', { name: 'My sessions' }).waitFor();
  await page.locator('tr[data-session]').first().waitFor();
  return page;
}

async function go(page, hash, heading) {
  await page.goto(`${BASE}/ui/${hash}`);
  await page.getByRole('heading', { name: heading, exact: true }).waitFor();
}

const refreshTokenOf = (page) => page.evaluate(() => sessionStorage.getItem('tokend.refresh'));

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png` });
}

// --- the scenarios ---------------------------------------------------------

test('signing in keeps no token in localStorage and at most the refresh token in sessionStorage', async () => {
  const page = await open();
  await shot(page, 'sign-in');
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('heading', { name: 'My sessions' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  assert.deepEqual(stored, ['tokend.refresh']);
  const refresh = await refreshTokenOf(page);
  const res = await http('POST', '/api/v1/token/verify', { token: refresh });
  assert.equal(res.status, 200);
  // Signing out expires the session's tree.
  await page.getByRole('button', { name: 'Sign out', exact: true }).first().click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal((await http('POST', '/api/v1/token/refresh', { refresh })).status, 401);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(page.errors, []);
});

test('the access token is refreshed before it expires, without a sign-in', async () => {
  await createUser('dora', 'dora-password-1');
  const page = await signedIn('dora', 'dora-password-1');
  // Lifetime 6 s: the console refreshes at four fifths of it, unasked.
  const answer = await page.waitForResponse((r) => r.url().endsWith('/api/v1/token/refresh'), { timeout: 20000 });
  assert.equal(answer.status(), 200);
  const second = await page.waitForResponse((r) => r.url().endsWith('/api/v1/token/refresh'), { timeout: 20000 });
  assert.equal(second.status(), 200);
  // Past the first access token's lifetime, calls still work.
  await go(page, '#/api-token', 'My API token');
  await page.getByText('You have no API token.').waitFor();
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.context().close();
});

test('two browsers are two sessions; signing the other out makes its refresh token refused', async () => {
  await createUser('carol', 'carol-password-1');
  const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
  const other = await signedIn('carol', 'carol-password-1', { userAgent: firefox });
  const page = await signedIn('carol', 'carol-password-1');
  await page.reload();
  await page.locator('tr[data-session]').nth(1).waitFor();
  assert.equal(await page.locator('tr[data-session]').count(), 2);
  const current = page.locator('tr.current');
  assert.equal(await current.count(), 1);
  await assert.doesNotReject(current.getByText('this session').waitFor());
  const otherRow = page.locator('tr[data-session]:not(.current)');
  assert.match(await otherRow.innerText(), /Firefox on Linux/);
  assert.match(await otherRow.innerText(), /127\.0\.0\.1/);
  await shot(page, 'sessions');

  const otherRefresh = await refreshTokenOf(other);
  assert.equal((await http('POST', '/api/v1/token/refresh', { refresh: otherRefresh })).status, 200);
  await otherRow.getByRole('button', { name: 'Sign out this session' }).click();
  await page.getByText('That session is signed out.').waitFor();
  const refused = await http('POST', '/api/v1/token/refresh', { refresh: otherRefresh });
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, 'token_not_valid');
  // This session still works.
  assert.equal((await http('POST', '/api/v1/token/refresh', { refresh: await refreshTokenOf(page) })).status, 200);
  // The other browser finds out at its next call.
  await other.reload();
  await other.getByRole('heading', { name: 'Sign in' }).waitFor();
  await other.context().close();
  await page.context().close();
});

test('sign out every other session leaves only this one', async () => {
  await createUser('erin', 'erin-password-1');
  const a = await signedIn('erin', 'erin-password-1');
  const b = await signedIn('erin', 'erin-password-1');
  const page = await signedIn('erin', 'erin-password-1');
  await page.getByRole('button', { name: 'Sign out every other session' }).click();
  await page.getByText('2 other sessions signed out.').waitFor();
  for (const other of [a, b]) {
    assert.equal((await http('POST', '/api/v1/token/refresh', { refresh: await refreshTokenOf(other) })).status, 401);
  }
  await page.reload();
  await page.locator('tr[data-session]').first().waitFor();
  assert.equal(await page.locator('tr[data-session]').count(), 1);
  for (const p of [a, b, page]) await p.context().close();
});

test('an API token made in the console works over HTTP, once shown', async () => {
  await createUser('frank', 'frank-password-1');
  const page = await signedIn('frank', 'frank-password-1');
  await go(page, '#/api-token', 'My API token');
  await page.getByText('You have no API token.').waitFor();
  await page.getByRole('button', { name: 'Create a token' }).click();
  await page.getByText('it will not be shown again').waitFor();
  const token = await page.getByLabel('Your new API token').inputValue();
  assert.match(token, /^tkd_/);
  const me = await http('GET', '/api/v1/me', undefined, token);
  assert.equal(me.status, 200);
  assert.equal(me.body.username, 'frank');
  assert.equal(me.body.auth, 'api_token');
  assert.equal(await page.locator('#token-prefix').innerText(), token.slice(0, (await page.locator('#token-prefix').innerText()).length));
  await shot(page, 'api-token');
  // Revoked from the console: refused over HTTP.
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('Your API token is revoked.').waitFor();
  assert.equal((await http('GET', '/api/v1/me', undefined, token)).status, 401);
  await page.context().close();
});

test('changing the password keeps this session and kills the other one', async () => {
  await createUser('grace', 'grace-password-1');
  const other = await signedIn('grace', 'grace-password-1');
  const page = await signedIn('grace', 'grace-password-1');
  const otherRefresh = await refreshTokenOf(other);
  await go(page, '#/password', 'My password');
  await page.getByLabel('Current password').fill('not-the-password');
  await page.getByLabel('New password', { exact: true }).fill('grace-password-2');
  await page.getByLabel('New password again').fill('grace-password-2');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('The current password is not correct.').waitFor();
  await page.getByLabel('Current password').fill('grace-password-1');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your password is changed.').waitFor();
  await shot(page, 'password');
  assert.equal((await http('POST', '/api/v1/token/refresh', { refresh: otherRefresh })).status, 401);
  await other.reload();
  await other.getByRole('heading', { name: 'Sign in' }).waitFor();
  // This one stays signed in.
  await go(page, '#/sessions', 'My sessions');
  await page.locator('tr.current').waitFor();
  assert.equal(await page.locator('tr[data-session]').count(), 1);
  await obtain('grace', 'grace-password-2');
  await other.context().close();
  await page.context().close();
});

test('an administrator creates, deactivates and deletes a user', async () => {
  const page = await signedIn('admin', ADMIN_PASSWORD);
  await go(page, '#/admin/users', 'Users');
  const form = page.locator('#create-user');
  await form.getByLabel('Username').fill('heidi');
  await form.getByRole('button', { name: 'Create user' }).click();
  await page.getByText('heidi is created. Their password, shown once:').waitFor();
  const password = await page.locator('code.once').innerText();
  await obtain('heidi', password);

  await page.getByLabel('Search users').fill('heid');
  const row = page.locator('tr[data-user="heidi"]');
  await row.waitFor();
  assert.equal(await page.locator('tr[data-user]').count(), 1);
  await shot(page, 'users');
  await row.getByRole('button', { name: 'Deactivate' }).click();
  await page.getByText('heidi is deactivated.').waitFor();
  assert.match(await row.innerText(), /inactive/);
  assert.equal((await http('POST', '/api/v1/token/obtain', { username: 'heidi', password })).status, 401);

  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('heidi is deleted.').waitFor();
  assert.ok(page.dialogs.some((d) => d.type === 'confirm' && d.message.includes('Delete heidi?')));
  assert.equal(await row.count(), 0);
  const users = await http('GET', '/api/v1/users', undefined, await adminToken());
  assert.ok(!users.body.some((u) => u.username === 'heidi'));

  // The last administrator stays: the API's refusal, in its words.
  await page.getByLabel('Search users').fill('admin');
  await page.locator('tr[data-user="admin"]').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('last active administrator').waitFor();

  await go(page, '#/admin/registry', 'Registry');
  await page.locator('tbody tr').first().waitFor();
  await page.getByRole('button', { name: 'Archive dead tokens now' }).click();
  await page.getByText(/dead tokens? archived\./).waitFor();
  await shot(page, 'registry');
  await go(page, '#/admin/keys', 'Signing keys');
  await page.getByText('signs', { exact: true }).waitFor();
  await shot(page, 'keys');
  await page.context().close();
});

test('a user who is not an administrator gets no administration', async () => {
  await createUser('ivan', 'ivan-password-1');
  const page = await signedIn('ivan', 'ivan-password-1');
  assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0);
  await page.goto(`${BASE}/ui/#/admin/users`);
  await page.getByRole('heading', { name: 'My sessions' }).waitFor();
  await page.context().close();
});

test('a throttled sign-in says how long to wait', async () => {
  await createUser('judy', 'judy-password-1');
  const page = await open();
  for (let i = 0; i < 3; i += 1) {
    await signIn(page, 'judy', `wrong-${i}`);
    await page.getByText('No active account').waitFor();
  }
  await signIn(page, 'judy', 'judy-password-1');
  const message = page.getByText(/Too many failed sign-ins\. Wait \d+ (seconds|minutes)/);
  await message.waitFor();
  assert.match(await message.innerText(), /Wait 1[45] minutes \(\d+ seconds\)/);
  await shot(page, 'throttled');
  await page.context().close();
});

test('markup from users is shown as text, never run', async () => {
  await createUser('mallory', 'mallory-password-1');
  const agent = `${XSS} Firefox/1.0 (X11; Linux)`;
  const evil = await signedIn('mallory', 'mallory-password-1', { userAgent: agent });
  const page = await signedIn('mallory', 'mallory-password-1');
  await page.reload();
  await page.locator('tr[data-session]').nth(1).waitFor();
  await page.getByText(agent, { exact: true }).waitFor();
  assert.equal(await page.locator('main img').count(), 0);

  // A username of markup: the API refuses the name, and the page says so as text.
  const admin = await signedIn('admin', ADMIN_PASSWORD);
  await go(admin, '#/admin/users', 'Users');
  await admin.locator('#create-user').getByLabel('Username').fill(XSS);
  await admin.locator('#create-user').getByRole('button', { name: 'Create user' }).click();
  await admin.getByText('Enter a valid username').waitFor();
  await admin.getByLabel('Search users').fill(XSS);
  assert.equal(await admin.locator('main img').count(), 0);
  for (const p of [evil, page, admin]) {
    assert.deepEqual(p.dialogs.filter((d) => d.type === 'alert'), []);
    assert.deepEqual(p.errors, []);
    await p.context().close();
  }
});

test('the console is usable at phone width and follows a dark system theme', async () => {
  await createUser('kim', 'kim-password-1');
  const page = await signedIn('kim', 'kim-password-1', { viewport: { width: 390, height: 800 }, colorScheme: 'dark', isMobile: true });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width}px wide`);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(17, 20, 24)');
  await shot(page, 'sessions-phone-dark');
  // Keyboard: Tab reaches the navigation and Enter follows it.
  await page.keyboard.press('Tab');
  let reached = false;
  for (let i = 0; i < 6 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.getAttribute('href') === '#/api-token');
  }
  assert.ok(reached, 'Tab reaches "My API token"');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'My API token' }).waitFor();
  await page.context().close();
});

test('sessions are paged with the API\'s cursor', async () => {
  await createUser('liam', 'liam-password-1');
  // 60 sessions over HTTP: 120 tokens, more than one page of the API's 100.
  for (let i = 0; i < 60; i += 1) await obtain('liam', 'liam-password-1');
  const page = await signedIn('liam', 'liam-password-1');
  const first = await page.locator('tr[data-session]').count();
  assert.ok(first < 61, `${first} sessions on the first page`);
  await page.getByRole('button', { name: 'Show more sessions' }).click();
  await page.locator('tr[data-session]').nth(first).waitFor();
  while (await page.getByRole('button', { name: 'Show more sessions' }).isVisible()) {
    const before = await page.locator('tr[data-session]').count();
    await page.getByRole('button', { name: 'Show more sessions' }).click();
    await page.locator('tr[data-session]').nth(before).waitFor();
  }
  assert.equal(await page.locator('tr[data-session]').count(), 61);
  const ids = await page.locator('tr[data-session]').evaluateAll((rows) => rows.map((r) => r.dataset.session));
  assert.equal(new Set(ids).size, 61);
  await page.context().close();
});

test('an administrator resets a password, expires tokens, revokes an API token and filters the registry', async () => {
  await createUser('mia', 'mia-password-1');
  const mia = await obtain('mia', 'mia-password-1');
  const apiToken = (await http('POST', '/api/v1/api-token', undefined, mia.access)).body.token;
  const page = await signedIn('admin', ADMIN_PASSWORD);
  await go(page, '#/admin/users', 'Users');
  await page.getByLabel('Search users').fill('mia');
  const row = page.locator('tr[data-user="mia"]');

  await row.getByRole('button', { name: 'Revoke API token' }).click();
  await page.getByText('The API token of mia is revoked.').waitFor();
  assert.equal((await http('GET', '/api/v1/me', undefined, apiToken)).status, 401);

  await row.getByRole('button', { name: 'Expire tokens' }).click();
  await page.getByText(/\d+ tokens? of mia expired\./).waitFor();
  assert.equal((await http('POST', '/api/v1/token/refresh', { refresh: mia.refresh })).status, 401);

  await row.getByRole('button', { name: 'Reset password' }).click();
  await page.getByText('New password of mia, shown once:').waitFor();
  const password = await page.locator('code.once').innerText();
  assert.equal((await http('POST', '/api/v1/token/obtain', { username: 'mia', password: 'mia-password-1' })).status, 401);
  await obtain('mia', password);

  await go(page, '#/admin/registry', 'Registry');
  await page.getByLabel('User').fill('mia');
  await page.getByLabel('State').selectOption('all');
  await page.getByLabel('Kind').selectOption('refresh');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.locator('tbody tr').nth(1).waitFor();
  const kinds = await page.locator('tbody tr td:first-child').allInnerTexts();
  assert.ok(kinds.length >= 2 && kinds.every((k) => k === 'refresh'), kinds.join());
  await page.context().close();
});

test('every field of every page has a label', async () => {
  const page = await signedIn('admin', ADMIN_PASSWORD);
  for (const [hash, heading] of [['#/sessions', 'My sessions'], ['#/api-token', 'My API token'], ['#/password', 'My password'],
    ['#/admin/users', 'Users'], ['#/admin/registry', 'Registry'], ['#/admin/keys', 'Signing keys']]) {
    await go(page, hash, heading);
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.labels.length === 0 || !el.labels[0].textContent.trim()).map((el) => el.outerHTML));
    assert.deepEqual(unlabelled, [], hash);
  }
  assert.deepEqual(page.errors, [], 'no script errors and nothing the Content-Security-Policy blocked');
  await page.context().close();
});

test('a container engine\'s offline refresh token is not listed as a session', async () => {
  await createUser('nora', 'nora-password-1');
  const form = new URLSearchParams({
    grant_type: 'password', username: 'nora', password: 'nora-password-1',
    service: 'tokend', client_id: 'docker', access_type: 'offline', scope: '',
  });
  const res = await fetch(`${BASE}/token`, {
    method: 'POST', body: form,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'docker/27.0.3 go/go1.22 os/linux' },
  });
  assert.equal(res.status, 200);
  assert.ok((await res.json()).refresh_token);
  const page = await signedIn('nora', 'nora-password-1');
  await page.reload();
  await page.locator('tr.current').waitFor();
  assert.equal(await page.locator('tr[data-session]').count(), 1);
  await page.context().close();
});
