// Accounts: open a DA for a legal entity by BIN (maker-checker); the DAs with their authorisation status.
import { api, esc, statusBadge, t, time, table, formData, prepareRequest, rerender, toast, state, explain } from '../core.js';

async function render(main) {
  const accounts = await api('/ui/api/accounts');
  const requests = await api('/ui/api/requests?type=open_account&per_page=50');
  const isMaker = state.me.roles.includes('maker');
  const rows = accounts.map((a) => `<tr data-account="${esc(a.id)}"><td class="mono">${esc(a.id)}</td><td>${esc(a.name)}</td><td class="mono">${esc(a.iin_bin)}</td><td>${esc(a.kind)}</td>` +
    `<td>${statusBadge(a.kyc === 'verified' ? 'success' : a.kyc === 'rejected' ? 'rejected' : 'under_review')}<span class="sub">${esc(t('kyc.' + a.kyc))}</span></td><td>${time(a.opened_at_ms)}</td></tr>`);
  const reqRows = requests.items.map((r) => `<tr data-request="${esc(r.id)}"><td class="mono">${esc(r.id)}</td><td>${time(r.created_at_ms)}</td><td>${esc(r.action.name)}</td><td class="mono">${esc(r.action.bin)}</td>` +
    `<td>${esc(r.maker_name)}</td><td>${esc(r.checker_name || '')}</td><td>${statusBadge(r.status, r.reason, r.reason_code)}${r.result ? `<span class="sub mono">${esc(r.result)}</span>` : ''}</td></tr>`);
  main.innerHTML = `<h1>${esc(t('acc.title'))}</h1>
    ${isMaker ? `<div class="panel"><h2>${esc(t('acc.open'))}</h2><form id="account-form" class="grid">
      <label>${esc(t('acc.bin'))}<input name="bin" id="acc-bin" required pattern="\\d{12}" inputmode="numeric"></label>
      <label class="wide">${esc(t('acc.name'))}<input name="name" id="acc-name" required maxlength="200"></label>
      <div><button class="primary" type="submit" id="acc-submit">${esc(t('acc.submit'))}</button></div></form></div>` : ''}
    <h2>${esc(t('acc.requests'))}</h2>
    ${table([{ key: 'col.number' }, { key: 'col.time' }, { key: 'col.holder' }, { key: 'col.iin_bin' }, { key: 'col.maker' }, { key: 'col.checker' }, { key: 'col.status' }], reqRows)}
    <h2>${esc(t('acc.list'))}</h2>
    ${table([{ key: 'col.account' }, { key: 'col.holder' }, { key: 'col.iin_bin' }, { key: 'col.kind' }, { key: 'col.kyc' }, { key: 'col.opened' }], rows)}`;
  const form = document.getElementById('account-form');
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = formData(form);
      try { await prepareRequest({ type: 'open_account', bin: f.bin, name: f.name }); await rerender(); } catch (e) { toast(explain(e), true); }
    });
  }
}

export default { id: 'accounts', render };
