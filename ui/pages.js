// The pages every user has: sessions, API token, password.

import { api, currentJti, signOut } from './api.js';
import { deviceName, field, h, notice, replace, table, when } from './dom.js';

// Container engines' offline refresh tokens are not browser sessions: their
// trees hold registry tokens, and their user agents say who they are.
const CONTAINER_AGENT = /^(docker|containers|skopeo|podman|containerd|buildah|go-containerregistry)/i;

// One session is one refresh-token tree; its active refresh token stands
// for it. A page of the API's tokens may hold none: keep reading until one
// turns up or the pages end.
async function sessionPage(cursor) {
  const sessions = [];
  let next = cursor;
  do {
    const query = new URLSearchParams({ state: 'active', limit: '100' });
    if (next) query.set('cursor', next);
    const page = await api('GET', `/api/v1/tokens?${query}`);
    const containers = new Set(page.items.filter((t) => t.token_type === 'registry').map((t) => t.parent_id));
    sessions.push(...page.items.filter((t) => t.token_type === 'refresh' && !containers.has(t.id)
      && !CONTAINER_AGENT.test(t.device?.user_agent || '')));
    next = page.next_cursor;
  } while (next && sessions.length === 0);
  return { sessions, next };
}

function expireTree(id) {
  return api('POST', `/api/v1/tokens/${encodeURIComponent(id)}/expire`, { affect_tree: true });
}

export async function sessionsPage(section) {
  const status = h('div', { class: 'status' });
  const body = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Show more sessions');
  const others = h('button', { type: 'button', class: 'danger' }, 'Sign out every other session');
  let cursor = null;
  const mine = currentJti();

  const row = (s) => {
    const current = s.jti === mine;
    const button = h('button', { type: 'button', class: 'small' }, current ? 'Sign out' : 'Sign out this session');
    const tr = h('tr', { 'data-session': s.id, class: current ? 'current' : null },
      h('td', {}, h('strong', {}, deviceName(s.device?.user_agent)), current ? h('span', { class: 'badge' }, 'this session') : null,
        h('div', { class: 'ua' }, s.device?.user_agent || '')),
      h('td', {}, s.device?.client_address || '—'),
      h('td', {}, when(s.device?.first_seen)),
      h('td', {}, when(s.device?.last_seen)),
      h('td', {}, when(s.issued_at)),
      h('td', {}, s.expires_at ? when(s.expires_at) : 'never'),
      h('td', {}, button));
    button.addEventListener('click', async () => {
      if (current) return signOut();
      button.disabled = true;
      try {
        await expireTree(s.id);
        tr.remove();
        replace(status, notice('ok', 'That session is signed out.'));
      } catch (e) {
        button.disabled = false;
        replace(status, notice('error', e.message));
      }
    });
    return tr;
  };

  const load = async () => {
    more.disabled = true;
    try {
      const { sessions, next } = await sessionPage(cursor);
      body.append(...sessions.map(row));
      cursor = next;
      more.hidden = !next;
    } catch (e) {
      replace(status, notice('error', e.message));
    } finally {
      more.disabled = false;
    }
  };

  others.addEventListener('click', async () => {
    if (!confirm('Sign out every session but this one?')) return;
    others.disabled = true;
    try {
      let count = 0;
      let next = null;
      do {
        const page = await sessionPage(next);
        for (const s of page.sessions) {
          if (s.jti === mine) continue;
          await expireTree(s.id);
          count += 1;
        }
        next = page.next;
      } while (next);
      for (const tr of body.querySelectorAll('tr:not(.current)')) tr.remove();
      replace(status, notice('ok', `${count} other session${count === 1 ? '' : 's'} signed out.`));
    } catch (e) {
      replace(status, notice('error', e.message));
    } finally {
      others.disabled = false;
    }
  });
  more.addEventListener('click', load);

  section.append(
    h('p', {}, 'Where your account is signed in. Signing a session out ends it at once, on every device that shares it.'),
    h('div', { class: 'actions' }, others), status,
    table(['Device', 'Address', 'First seen', 'Last seen', 'Signed in', 'Expires', ''], body, null), more);
  await load();
}

export async function apiTokenPage(section) {
  const info = h('div', {});
  const status = h('div', { class: 'status' });
  const shown = h('div', {});
  const create = h('button', { type: 'button' }, 'Create a token');
  const revoke = h('button', { type: 'button', class: 'danger', hidden: true }, 'Revoke');

  const refreshInfo = async () => {
    try {
      const t = await api('GET', '/api/v1/api-token');
      replace(info, h('dl', { class: 'facts' },
        h('dt', {}, 'Prefix'), h('dd', {}, h('code', { id: 'token-prefix' }, t.prefix)),
        h('dt', {}, 'Created'), h('dd', {}, when(t.created_at)),
        h('dt', {}, 'Last used'), h('dd', {}, t.last_used_at ? when(t.last_used_at) : 'never')));
      create.textContent = 'Regenerate';
      revoke.hidden = false;
    } catch (e) {
      if (e.status !== 404) throw e;
      replace(info, h('p', {}, 'You have no API token.'));
      create.textContent = 'Create a token';
      revoke.hidden = true;
    }
  };

  create.addEventListener('click', async () => {
    if (!revoke.hidden && !confirm('Regenerate your API token? The one you have stops working at once.')) return;
    replace(status);
    try {
      const t = await api('POST', '/api/v1/api-token');
      const value = h('input', { id: 'new-token', readonly: true, value: t.token, spellcheck: 'false' });
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(t.token);
          copy.textContent = 'Copied';
        } catch {
          value.select();
          copy.textContent = 'Press Ctrl+C to copy';
        }
      });
      replace(shown, h('div', { class: 'card secret' },
        notice('warn', 'Copy your token now: it will not be shown again.'),
        field('Your new API token', value), copy));
      await refreshInfo();
    } catch (e) {
      replace(status, notice('error', e.message));
    }
  });
  revoke.addEventListener('click', async () => {
    if (!confirm('Revoke your API token? Anything using it stops working.')) return;
    try {
      await api('DELETE', '/api/v1/api-token');
      replace(shown);
      replace(status, notice('ok', 'Your API token is revoked.'));
      await refreshInfo();
    } catch (e) {
      replace(status, notice('error', e.message));
    }
  });

  section.append(
    h('p', {}, 'One long-lived token for scripts: send it as ', h('code', {}, 'Authorization: Bearer …'), '. tokend keeps only its digest.'),
    info, h('div', { class: 'actions' }, create, revoke), status, shown);
  await refreshInfo();
}

export async function passwordPage(section) {
  const current = h('input', { type: 'password', name: 'current', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'new', autocomplete: 'new-password', required: true, maxlength: 1024 });
  const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', required: true, maxlength: 1024 });
  const status = h('div', { class: 'status' });
  const button = h('button', { type: 'submit' }, 'Change password');
  const form = h('form', { class: 'card narrow', id: 'password-form' },
    field('Current password', current), field('New password', next), field('New password again', again), status, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (next.value !== again.value) {
      replace(status, notice('error', 'The two new passwords are not the same.'));
      return;
    }
    button.disabled = true;
    try {
      const { expired } = await api('POST', '/api/v1/me/password', { current_password: current.value, new_password: next.value });
      form.reset();
      replace(status, notice('ok', `Your password is changed. Your other sessions and your API token no longer work (${expired} token${expired === 1 ? '' : 's'} expired).`));
    } catch (e) {
      const wait = e.status === 429 && e.retryAfter ? ` Wait ${e.retryAfter} seconds.` : '';
      replace(status, notice('error', e.message + wait));
    } finally {
      button.disabled = false;
    }
  });
  section.append(h('p', {}, 'Changing your password signs out every other session of yours and revokes your API token; this one stays.'), form);
}
