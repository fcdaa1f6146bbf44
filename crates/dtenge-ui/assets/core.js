// dtenge web interface: what every section shares — the session's state, translation, the API, formatting
// and forms — and a way to render the current section again. app.js (the shell) imports the sections, and
// the sections import this module, never the shell.
import { dict } from './i18n.js';
import { refusalText } from './refusals.js';

export const state = { me: null, lang: localStorage.getItem('dtenge.lang') || 'ru', section: null };

export function t(key, vars) {
  let s = (dict[state.lang] && dict[state.lang][key]) || dict.en[key];
  if (s === undefined) { console.warn('missing text', key); s = key; }
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace('{' + k + '}', v);
  return s;
}

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** Calls the UI backend; on an error answer throws an Error with its message, its `code` and, when the
 * platform refused, the platform's code as `reason`. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { 'x-dtenge-ui': '1' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401 && !path.endsWith('/login')) { showLogin(); throw new Error(t('login.bad')); }
  if (!res.ok) {
    const error = (data && data.error) || {};
    throw Object.assign(new Error(error.message || res.statusText), { code: error.code, reason: error.reason });
  }
  return data;
}

/** An error from `api` in the page's language: what its code names (the platform's, when it refused), then
 * the service's own words. */
export function explain(e) {
  return refusalText(e.reason || e.code, e.message, state.lang);
}

/** A request's reason in the page's language: named by its code (a request recorded before codes were
 * kept shows its words alone). */
export function reasonOf(r) {
  return refusalText(r.reason_code, r.reason, state.lang);
}

/** Tiyn as `4 000,00`. */
export function money(tiyn) {
  const n = BigInt(tiyn ?? 0);
  const whole = (n / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return whole + ',' + (n % 100n).toString().padStart(2, '0');
}

/** Ms since the epoch in Astana time (UTC+5), `26.11.2026 09:45`. */
export function time(ms, withSeconds = false) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(Number(ms) + 5 * 3600 * 1000);
  const p = (x) => String(x).padStart(2, '0');
  const s = `${p(d.getUTCDate())}.${p(d.getUTCMonth() + 1)}.${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  return withSeconds ? s + ':' + p(d.getUTCSeconds()) : s;
}

/** An Astana date (`2026-11-26` from a date input) as ms at its start, or null. */
export function astanaDayStart(value, plusDays = 0) {
  if (!value) return null;
  const [y, m, d] = value.split('-').map(Number);
  return Date.UTC(y, m - 1, d + plusDays) - 5 * 3600 * 1000;
}

const ICONS = {
  success: '<svg viewBox="0 0 20 20" aria-hidden="true"><circle cx="10" cy="10" r="9" fill="currentColor"/><path d="M5.5 10.5l3 3 6-6.5" stroke="#fff" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  rejected: '<svg viewBox="0 0 20 20" aria-hidden="true"><circle cx="10" cy="10" r="9" fill="currentColor"/><path d="M6.5 6.5l7 7M13.5 6.5l-7 7" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>',
  under_review: '<svg viewBox="0 0 20 20" aria-hidden="true"><circle cx="10" cy="10" r="8" stroke="currentColor" stroke-width="2" fill="none"/><path d="M10 5.5V10l3 2" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/></svg>',
  request_accepted: '<svg viewBox="0 0 20 20" aria-hidden="true"><circle cx="10" cy="10" r="8" stroke="currentColor" stroke-width="2" fill="none"/><path d="M7 10h6M10.5 7l3 3-3 3" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/></svg>',
  held: '<svg viewBox="0 0 20 20" aria-hidden="true"><rect x="4" y="9" width="12" height="8" rx="1.5" fill="currentColor"/><path d="M6.5 9V6.5a3.5 3.5 0 017 0V9" stroke="currentColor" stroke-width="2" fill="none"/></svg>',
  closed: '<svg viewBox="0 0 20 20" aria-hidden="true"><rect x="4" y="9" width="12" height="8" rx="1.5" fill="currentColor"/><path d="M6.5 9V6.5a3.5 3.5 0 016.8-1" stroke="currentColor" stroke-width="2" fill="none"/></svg>',
};

/** A status (SPEC §6) with its icon, and the reason under it when there is one (named in the page's language
 * when it has a code). */
export function statusBadge(status, reason, reasonCode) {
  const s = ICONS[status] ? status : 'request_accepted';
  return `<span class="status st-${s}" data-status="${esc(status)}">${ICONS[s]}${esc(t('status.' + status))}</span>` +
    (reason ? `<span class="reason">${esc(refusalText(reasonCode, reason, state.lang))}</span>` : '');
}

export function kindName(kind) { return t('kind.' + kind); }

export function toast(text, bad = false) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = 'toast' + (bad ? ' bad' : '');
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, bad ? 9000 : 5000);
}

export function table(columns, rows, emptyText) {
  if (!rows.length) return `<div class="empty">${esc(emptyText || t('msg.none'))}</div>`;
  const head = columns.map((c) => `<th class="${c.num ? 'num' : ''}">${esc(t(c.key))}</th>`).join('');
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

export const BANKS = ['STB1', 'STB2', 'STB3', 'TREASURY'];
export function bankOptions(selected) {
  return BANKS.map((b) => `<option value="${b}" ${b === selected ? 'selected' : ''}>${b}</option>`).join('');
}

/** Reads a form's named fields. */
export function formData(form) {
  const out = {};
  for (const el of form.elements) if (el.name) out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  return out;
}

/** Submits a maker's request and reports it. */
export async function prepareRequest(body) {
  const r = await api('/ui/api/requests', { method: 'POST', body });
  toast(t('msg.prepared', { id: r.id }));
  return r;
}

/** Recipient / subject of a request, for tables. */
export function requestSubject(r) {
  const a = r.action;
  switch (a.type) {
    case 'transfer': return { name: a.memo || '', to: a.to, amount: a.amount_tiyn, marking: a.marking };
    case 'hold': return { name: a.event, to: a.to, amount: a.amount_tiyn };
    case 'issuance': case 'redemption': return { name: 'NBK', amount: a.amount_tiyn };
    case 'open_account': return { name: `${a.name} (${a.bin})` };
    default: return { name: `${a.event} · ${a.account}` };
  }
}

export function canDecide(r) {
  return state.me.roles.includes('checker') && r.status === 'under_review' && r.maker !== state.me.login;
}

// The shell registers how to render the current section (it knows the sections; this module does not).
let renderer = async () => {};
export function onRender(render) { renderer = render; }
export function rerender() { return renderer(); }
