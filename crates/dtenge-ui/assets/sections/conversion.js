// Shared by Issuance and Redeeming: a maker's conversion request, the requests at NBK and the prepared ones.
import { api, esc, money, statusBadge, t, time, table, formData, prepareRequest, rerender, toast, state, explain } from '../core.js';

export async function renderConversion(main, { type, nbkKind, title, newText }) {
  const all = await api('/ui/api/conversions');
  const mine = all.filter((c) => c.kind === nbkKind);
  const requests = await api(`/ui/api/requests?type=${type}&per_page=50`);
  const isMaker = state.me.roles.includes('maker');
  const convRows = mine.map((c) => `<tr data-conversion="${esc(c.id)}"><td class="mono">${esc(c.id)}</td><td>${time(c.created_at_ms)}</td><td class="num">${money(c.amount_tiyn)}</td>` +
    `<td class="mono">${esc(c.cbs_reference || '—')}</td><td>${esc(c.decided_by || '')}</td><td>${statusBadge(c.status.status, c.status.reason, c.status.reason_code)}</td></tr>`);
  const reqRows = requests.items.map((r) => `<tr data-request="${esc(r.id)}"><td class="mono">${esc(r.id)}</td><td>${time(r.created_at_ms)}</td><td class="num">${money(r.action.amount_tiyn)}</td>` +
    `<td>${esc(r.maker_name)}</td><td>${esc(r.checker_name || '')}</td><td>${statusBadge(r.status, r.reason, r.reason_code)}${r.result ? `<span class="sub mono">${esc(r.result)}</span>` : ''}</td></tr>`);
  main.innerHTML = `<h1>${esc(t(title))}</h1>
    ${isMaker ? `<div class="panel"><h2>${esc(t(newText))}</h2><form id="${type}-form" class="grid">
      <label>${esc(t('iss.amount'))}<input name="amount" id="${type}-amount" required placeholder="1 000 000,00"></label>
      <div><button class="primary" type="submit" id="${type}-submit">${esc(t('iss.submit'))}</button></div></form></div>` : ''}
    <h2>${esc(t('iss.list'))}</h2>
    ${table([{ key: 'col.request' }, { key: 'col.time' }, { key: 'col.amount', num: true }, { key: 'col.cbs' }, { key: 'col.decided_by' }, { key: 'col.status' }], convRows)}
    <h2>${esc(t('iss.requests'))}</h2>
    ${table([{ key: 'col.number' }, { key: 'col.time' }, { key: 'col.amount', num: true }, { key: 'col.maker' }, { key: 'col.checker' }, { key: 'col.status' }], reqRows)}`;
  const form = document.getElementById(type + '-form');
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try { await prepareRequest({ type, amount: formData(form).amount }); await rerender(); } catch (e) { toast(explain(e), true); }
    });
  }
}
