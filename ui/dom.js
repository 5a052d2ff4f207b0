// Building the page. Everything that came from a user or the server goes in
// as text (DOM text nodes and attribute values), never as markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let ids = 0;

// A labelled field: the label names the input it is for.
export function field(label, input, hint) {
  const id = input.id || `f${++ids}`;
  input.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

export function checkbox(label, props = {}) {
  const input = h('input', { type: 'checkbox', ...props });
  input.id = `f${++ids}`;
  return h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
}

// A line saying how something went: `role="alert"` for failures, so that
// screen readers say it.
export function notice(kind, ...text) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function when(value) {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function table(headers, rows, caption) {
  return h('div', { class: 'scroll' },
    h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      rows instanceof Node ? rows : h('tbody', {}, rows)));
}

// "Firefox on Linux" from a user agent.
export function deviceName(ua) {
  if (!ua) return 'Unknown device';
  const browsers = [
    [/Edg(e|A|iOS)?\//, 'Edge'], [/OPR\/|Opera/, 'Opera'], [/Firefox\/|FxiOS/, 'Firefox'],
    [/Chromium\//, 'Chromium'], [/Chrome\/|CriOS/, 'Chrome'], [/Safari\//, 'Safari'],
    [/^curl\//, 'curl'], [/^python-requests|^Python/i, 'Python'], [/^Wget/i, 'Wget'],
    [/^(docker|containers|skopeo|podman|containerd)/i, 'Container engine'],
  ];
  const systems = [
    [/Android/, 'Android'], [/iPhone|iPad|iPod/, 'iOS'], [/CrOS/, 'ChromeOS'],
    [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'], [/Linux|X11/, 'Linux'],
  ];
  const browser = browsers.find(([re]) => re.test(ua))?.[1];
  const system = systems.find(([re]) => re.test(ua))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  if (system) return `A browser on ${system}`;
  return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
}
