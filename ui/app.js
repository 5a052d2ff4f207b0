// The console: sign-in, the navigation, and which page the address shows.

import { ApiError, api, onSessionEnd, resume, signIn, signOut } from './api.js';
import { field, h, notice, replace } from './dom.js';
import { apiTokenPage, passwordPage, sessionsPage } from './pages.js';
import { keysPage, registryPage, usersPage } from './admin.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let me = null;

const PAGES = {
  '#/sessions': ['My sessions', sessionsPage, false],
  '#/api-token': ['My API token', apiTokenPage, false],
  '#/password': ['My password', passwordPage, false],
  '#/admin/users': ['Users', usersPage, true],
  '#/admin/registry': ['Registry', registryPage, true],
  '#/admin/keys': ['Signing keys', keysPage, true],
};

function signInPage(message) {
  me = null;
  nav.hidden = true;
  replace(who);
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', { id: 'signin-status' }, message ? notice('info', message) : null);
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', id: 'signin' },
    h('h1', {}, 'Sign in'),
    field('Username', username), field('Password', password), status, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(status);
    try {
      await signIn(username.value, password.value);
      password.value = '';
      if (!location.hash || location.hash === '#/signin') location.hash = '#/sessions';
      await start();
    } catch (e) {
      replace(status, notice('error', signInError(e)));
    } finally {
      button.disabled = false;
    }
  });
  replace(main, form);
  document.title = 'Sign in · tokend';
  username.focus();
}

function signInError(e) {
  if (e instanceof ApiError && e.status === 429 && e.retryAfter) {
    return `Too many failed sign-ins. Wait ${waitWords(e.retryAfter)} before trying again.`;
  }
  return e.message;
}

function waitWords(seconds) {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'} (${seconds} seconds)`;
}

async function start() {
  me = await api('GET', '/api/v1/me');
  replace(who, h('span', { class: 'user' }, me.username), me.is_admin ? h('span', { class: 'badge' }, 'administrator') : null,
    h('button', { type: 'button', class: 'link', id: 'signout', onclick: () => signOut().catch(() => {}) }, 'Sign out'));
  replace(nav, Object.entries(PAGES)
    .filter(([, [, , admin]]) => !admin || me.is_admin)
    .map(([hash, [title]]) => h('a', { href: hash }, title)));
  nav.hidden = false;
  await show();
}

async function show() {
  if (!me) return;
  let hash = location.hash;
  if (!PAGES[hash] || (PAGES[hash][2] && !me.is_admin)) hash = '#/sessions';
  const [title, page] = PAGES[hash];
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${title} · tokend`;
  const section = h('section', { 'aria-labelledby': 'page-title' }, h('h1', { id: 'page-title' }, title));
  replace(main, section);
  try {
    await page(section, me);
  } catch (e) {
    section.append(notice('error', e.message));
  }
}

window.addEventListener('hashchange', () => show());
onSessionEnd((message) => signInPage(message));

(async () => {
  if (await resume()) {
    try {
      await start();
      return;
    } catch {
      // fall through to the sign-in form
    }
  }
  signInPage(null);
})();
