// dtenge web interface: sign-in, language, routing. Shared helpers live in core.js; one module per section in sections/.
import { state, t, esc, api, time, onRender, explain } from './core.js';
import home from './sections/home.js';
import issuance from './sections/issuance.js';
import transfers from './sections/transfers.js';
import accounts from './sections/accounts.js';
import redeeming from './sections/redeeming.js';
import reports from './sections/reports.js';
import holding from './sections/holding.js';
import approvals from './sections/approvals.js';
import nbk from './sections/nbk.js';
import regulator from './sections/regulator.js';

// Sections in menu order. `who(me)` says who sees a section.
const treasury = (me) => me.participant !== 'NBK';
const SECTIONS = [
  { ...nbk, who: (me) => me.roles.includes('operator') },
  { ...regulator, who: (me) => me.roles.includes('operator') && me.participant === 'NBK' },
  { ...home, who: treasury },
  { ...issuance, who: treasury },
  { ...transfers, who: treasury },
  { ...accounts, who: treasury },
  { ...redeeming, who: treasury },
  { ...reports, who: () => true },
  { ...holding, who: treasury },
  { ...approvals, who: treasury },
];

// ---- shell -----------------------------------------------------------------

function applyStaticText() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const b of document.querySelectorAll('[data-lang]')) b.classList.toggle('active', b.dataset.lang === state.lang);
  document.title = t('app.title') + (state.me ? ' — ' + state.me.participant : '');
  if (state.me) document.getElementById('user-roles').textContent = '(' + state.me.roles.map((r) => t('role.' + r)).join(', ') + ')';
}

function setLang(lang) {
  state.lang = lang;
  localStorage.setItem('dtenge.lang', lang);
  applyStaticText();
  if (state.me) { renderNav(); render(); }
}

function visibleSections() { return SECTIONS.filter((s) => s.who(state.me)); }

function renderNav() {
  const nav = document.getElementById('nav');
  nav.innerHTML = visibleSections().map((s) =>
    `<a href="#/${s.id}" id="nav-${s.id}" class="${state.section === s.id ? 'active' : ''}">${esc(t('nav.' + s.id))}</a>`).join('');
}

async function render() {
  const sections = visibleSections();
  const wanted = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const section = sections.find((s) => s.id === wanted) || sections[0];
  state.section = section.id;
  renderNav();
  const main = document.getElementById('main');
  main.innerHTML = `<p class="muted">${esc(t('msg.loading'))}</p>`;
  main.dataset.section = section.id;
  delete main.dataset.ready;
  try {
    await section.render(main);
  } catch (e) {
    main.innerHTML = `<h1>${esc(t('nav.' + section.id))}</h1><p class="error">${esc(t('msg.error'))}: ${esc(explain(e))}</p>`;
  }
  main.dataset.ready = section.id;
}

onRender(render);

function showLogin() {
  state.me = null;
  document.getElementById('app-view').hidden = true;
  document.getElementById('login-view').hidden = false;
  applyStaticText();
  document.getElementById('login-user').focus();
}

function showApp() {
  document.getElementById('login-view').hidden = true;
  document.getElementById('app-view').hidden = false;
  document.getElementById('participant').textContent = state.me.participant;
  document.getElementById('user-name').textContent = state.me.name;
  applyStaticText();
  render();
}

function tick() {
  const el = document.getElementById('clock');
  if (el) el.textContent = time(Date.now(), true);
}

async function start() {
  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', () => setLang(b.dataset.lang));
  document.getElementById('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById('login-error');
    err.hidden = true;
    try {
      state.me = await api('/ui/api/login', { method: 'POST', body: { login: document.getElementById('login-user').value, password: document.getElementById('login-password').value } });
      document.getElementById('login-password').value = '';
      location.hash = '';
      showApp();
    } catch (e) {
      err.textContent = t('login.bad');
      err.hidden = false;
    }
  });
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('/ui/api/logout', { method: 'POST' }); } finally { showLogin(); }
  });
  window.addEventListener('hashchange', () => { if (state.me) render(); });
  applyStaticText();
  tick();
  setInterval(tick, 1000);
  try {
    state.me = await api('/ui/api/me');
    showApp();
  } catch (_) {
    showLogin();
  }
}

start();
