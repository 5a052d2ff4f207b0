// The public JSON API, and the session: the access token lives in memory
// only and is refreshed before it expires; at most the refresh token is kept
// in sessionStorage (so a reload of the tab stays signed in), never in
// localStorage.

const KEY = 'tokend.refresh';
const session = { access: null, refresh: null, timer: null, onEnd: null };

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.detail || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code || 'error';
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
}

async function send(method, path, body, bearer) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { detail: 'tokend cannot be reached. Check the connection and try again.' });
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data, res.headers.get('retry-after'));
  return data;
}

// An authenticated call; a 401 gets one refresh and one more try.
export async function api(method, path, body) {
  if (!session.access) await refresh();
  try {
    return await send(method, path, body, session.access);
  } catch (e) {
    if (e.status !== 401 || e.code !== 'token_not_valid' || !session.refresh) throw e;
    await refresh();
    return send(method, path, body, session.access);
  }
}

// The claims of a JWT, read without checking it (the server checks).
export function claims(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return {};
  }
}

export function currentJti() {
  return session.refresh ? claims(session.refresh).jti : null;
}

function keep(answer) {
  session.access = answer.access;
  if (answer.refresh) {
    session.refresh = answer.refresh;
    sessionStorage.setItem(KEY, answer.refresh);
  }
  clearTimeout(session.timer);
  if (answer.expires_in) {
    // Refresh at four fifths of the lifetime, so that a call never meets
    // an expired token.
    const ms = Math.max(1000, answer.expires_in * 800);
    session.timer = setTimeout(() => refresh().catch(() => {}), ms);
  }
}

let refreshing = null;

// A new access token from the refresh token; the session ends when it is
// refused. Concurrent callers share one refresh.
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!session.refresh) throw new ApiError(401, { detail: 'Please sign in.', code: 'not_authenticated' });
      try {
        keep(await send('POST', '/api/v1/token/refresh', { refresh: session.refresh }));
      } catch (e) {
        if (e.status === 401) end('Your session has ended. Please sign in again.');
        throw e;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function signIn(username, password) {
  keep(await send('POST', '/api/v1/token/obtain', { username, password }));
}

// Resumes the tab's session after a reload; false when there is none.
export async function resume() {
  session.refresh = sessionStorage.getItem(KEY);
  if (!session.refresh) return false;
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}

// Signing out expires the session's whole tree.
export async function signOut() {
  const token = session.refresh;
  try {
    if (token) await send('POST', '/api/v1/token/expire', { token, affect_tree: true });
  } finally {
    end(null);
  }
}

function end(message) {
  clearTimeout(session.timer);
  session.access = null;
  session.refresh = null;
  sessionStorage.removeItem(KEY);
  if (session.onEnd) session.onEnd(message);
}

export function onSessionEnd(callback) {
  session.onEnd = callback;
}
