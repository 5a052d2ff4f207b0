// Administration: users, the registry, the signing keys. The API refuses
// all of it to anybody who is not an administrator; the page only hides it.

import { api } from './api.js';
import { checkbox, deviceName, field, h, notice, replace, table, when } from './dom.js';

const PER_PAGE = 20;

// A password to show once: 20 characters from the browser's CSPRNG.
function generatedPassword() {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

const path = (name) => `/api/v1/users/${encodeURIComponent(name)}`;

export async function usersPage(section) {
  const status = h('div', { class: 'status' });
  const search = h('input', { type: 'search', name: 'search', autocomplete: 'off' });
  const body = h('tbody', {});
  const pager = h('div', { class: 'pager' });
  let users = [];
  let page = 0;

  const username = h('input', { name: 'new-username', autocomplete: 'off', required: true, maxlength: 150 });
  const password = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', maxlength: 1024 });
  const admin = checkbox('Administrator', { name: 'is_admin' });
  const active = checkbox('Active', { name: 'is_active', checked: true });
  const create = h('form', { class: 'card', id: 'create-user' },
    h('h2', {}, 'Create a user'),
    field('Username', username),
    field('Password', password, 'Leave empty to generate one, shown once.'),
    admin, active, h('button', { type: 'submit' }, 'Create user'));

  const act = async (what, done) => {
    replace(status);
    try {
      const result = await what();
      // The list first, then the word: what the notice says is on screen.
      await reload();
      replace(status, notice('ok', done(result)));
    } catch (e) {
      replace(status, notice('error', e.message));
    }
  };

  const row = (u) => {
    const name = u.username;
    const toggle = h('button', { type: 'button', class: 'small' }, u.is_active ? 'Deactivate' : 'Activate');
    toggle.addEventListener('click', () => act(
      () => api('PATCH', path(name), { is_active: !u.is_active }),
      () => `${name} is ${u.is_active ? 'deactivated' : 'active again'}.`));
    const reset = h('button', { type: 'button', class: 'small' }, 'Reset password');
    reset.addEventListener('click', () => {
      if (!confirm(`Give ${name} a new generated password? Every token of theirs stops working.`)) return;
      const pw = generatedPassword();
      act(() => api('POST', `${path(name)}/password`, { password: pw }), () => [`New password of ${name}, shown once: `, h('code', { class: 'once' }, pw)]);
    });
    const expire = h('button', { type: 'button', class: 'small' }, 'Expire tokens');
    expire.addEventListener('click', () => {
      if (!confirm(`Expire every token of ${name}, their API token included?`)) return;
      act(() => api('POST', `${path(name)}/tokens/expire`), (r) => `${r.expired} token${r.expired === 1 ? '' : 's'} of ${name} expired.`);
    });
    const revoke = h('button', { type: 'button', class: 'small' }, 'Revoke API token');
    revoke.addEventListener('click', () => act(() => api('DELETE', `${path(name)}/api-token`), () => `The API token of ${name} is revoked.`));
    const del = h('button', { type: 'button', class: 'small danger' }, 'Delete');
    del.addEventListener('click', () => {
      if (!confirm(`Delete ${name}? This cannot be undone; every token of theirs stops working.`)) return;
      act(() => api('DELETE', path(name)), () => `${name} is deleted.`);
    });
    return h('tr', { 'data-user': name },
      h('td', {}, h('span', { class: 'name' }, name)),
      h('td', {}, u.is_active ? 'active' : 'inactive'),
      h('td', {}, u.is_admin ? 'yes' : 'no'),
      h('td', {}, when(u.created_at)),
      h('td', {}, when(u.last_login)),
      h('td', { class: 'buttons' }, toggle, reset, expire, revoke, del));
  };

  const render = () => {
    const term = search.value.trim().toLowerCase();
    const found = users.filter((u) => u.username.toLowerCase().includes(term));
    const pages = Math.max(1, Math.ceil(found.length / PER_PAGE));
    page = Math.min(page, pages - 1);
    replace(body, found.slice(page * PER_PAGE, (page + 1) * PER_PAGE).map(row));
    const prev = h('button', { type: 'button', class: 'small', disabled: page === 0 }, 'Previous');
    const next = h('button', { type: 'button', class: 'small', disabled: page >= pages - 1 }, 'Next');
    prev.addEventListener('click', () => { page -= 1; render(); });
    next.addEventListener('click', () => { page += 1; render(); });
    replace(pager, prev, h('span', {}, `Page ${page + 1} of ${pages} · ${found.length} user${found.length === 1 ? '' : 's'}`), next);
  };

  const reload = async () => {
    users = await api('GET', '/api/v1/users');
    users.sort((a, b) => a.username.localeCompare(b.username));
    render();
  };

  search.addEventListener('input', () => { page = 0; render(); });
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    const pw = password.value || generatedPassword();
    const generated = !password.value;
    const name = username.value;
    act(async () => {
      await api('POST', '/api/v1/users', {
        username: name, password: pw,
        is_admin: admin.querySelector('input').checked, is_active: active.querySelector('input').checked,
      });
      create.reset();
    }, () => (generated ? [`${name} is created. Their password, shown once: `, h('code', { class: 'once' }, pw)] : `${name} is created.`));
  });

  section.append(create, field('Search users', search), status,
    table(['Username', 'State', 'Admin', 'Created', 'Last login', 'Actions'], body), pager);
  await reload();
}

export async function registryPage(section) {
  const status = h('div', { class: 'status' });
  const user = h('input', { name: 'username', autocomplete: 'off' });
  const state = h('select', { name: 'state' }, ['active', 'expired', 'all'].map((s) => h('option', { value: s }, s)));
  const kind = h('select', { name: 'kind' }, [['', 'every kind'], ['access', 'access'], ['refresh', 'refresh'], ['registry', 'registry']]
    .map(([v, t]) => h('option', { value: v }, t)));
  const filters = h('form', { class: 'filters', id: 'registry-filters' },
    field('User', user), field('State', state), field('Kind', kind), h('button', { type: 'submit' }, 'Show'));
  const body = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Next page');
  const archive = h('button', { type: 'button' }, 'Archive dead tokens now');
  let cursor = null;

  const load = async (fresh) => {
    if (fresh) { cursor = null; replace(body); }
    const query = new URLSearchParams({ state: state.value, limit: '50' });
    if (user.value.trim()) query.set('username', user.value.trim());
    if (cursor) query.set('cursor', cursor);
    try {
      const page = await api('GET', `/api/v1/registry/tokens?${query}`);
      const rows = page.items.filter((t) => !kind.value || t.token_type === kind.value);
      body.append(...rows.map((t) => h('tr', {},
        h('td', {}, t.token_type),
        h('td', {}, h('code', {}, t.id)),
        h('td', {}, t.user_id ? h('code', {}, t.user_id) : '—'),
        h('td', {}, when(t.issued_at)),
        h('td', {}, t.expires_at ? when(t.expires_at) : 'never'),
        h('td', {}, t.expired_at ? `expired ${when(t.expired_at)}` : t.rotated_at ? `rotated ${when(t.rotated_at)}` : 'alive'),
        h('td', {}, t.device ? `${deviceName(t.device.user_agent)}, ${t.device.client_address}` : '—'))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      replace(status, body.children.length ? null : notice('info', 'No tokens match.'));
    } catch (e) {
      replace(status, notice('error', e.message));
    }
  };

  filters.addEventListener('submit', (event) => { event.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  archive.addEventListener('click', async () => {
    try {
      const { archived } = await api('POST', '/api/v1/registry/archive', {});
      replace(status, notice('ok', `${archived} dead token${archived === 1 ? '' : 's'} archived.`));
    } catch (e) {
      replace(status, notice('error', e.message));
    }
  });
  section.append(filters, h('div', { class: 'actions' }, archive), status,
    table(['Kind', 'Id', 'User id', 'Issued', 'Expires', 'State', 'Device'], body), more);
  await load(true);
}

export async function keysPage(section) {
  const keys = await api('GET', '/api/v1/keys');
  section.append(
    h('p', {}, 'The key ring, read-only: it is set in tokend\'s configuration. Every key verifies; one signs.'),
    table(['Key id (kid)', 'Algorithm', 'Role'], keys.map((k) => h('tr', {},
      h('td', {}, h('code', {}, k.kid)), h('td', {}, k.alg), h('td', {}, k.signing ? 'signs' : 'verifies only')))));
}
