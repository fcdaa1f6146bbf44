// Holding: funds held for oracle events — request time, recipient, amount, maker, status; release or cancel (maker-checker).
import { api, esc, money, statusBadge, t, time, table, bankOptions, formData, prepareRequest, rerender, toast, state, explain } from '../core.js';

async function render(main) {
  const rows = await api('/ui/api/holds');
  const isMaker = state.me.roles.includes('maker');
  const accounts = isMaker ? await api('/ui/api/accounts') : [];
  const body = rows.map((h) => {
    let actions = '';
    if (h.pending) actions = `<span class="muted">${esc(h.pending)} — ${esc(t('hold.pending'))}</span>`;
    else if (isMaker && h.status === 'held') {
      actions = `<div class="actions"><button class="secondary small" data-unhold="hold_release" data-account="${esc(h.account)}" data-event="${esc(h.event)}">${esc(t('hold.release'))}</button>` +
        `<button class="bad small" data-unhold="hold_cancel" data-account="${esc(h.account)}" data-event="${esc(h.event)}">${esc(t('hold.cancel'))}</button></div>`;
    }
    const recipient = h.recipient_name ? `${esc(h.recipient_name)}<span class="sub mono">${esc(h.recipient_iin_bin)}</span>` : `<span class="mono">${esc((h.recipient_address || '').slice(0, 16))}…</span>`;
    return `<tr data-event="${esc(h.event)}"><td>${h.requested_at_ms ? time(h.requested_at_ms) : '—'}<span class="sub mono">${esc(h.request || '')}</span></td>` +
      `<td>${recipient}</td><td class="num">${money(h.amount_tiyn)}${h.held_tiyn && h.held_tiyn !== h.amount_tiyn ? `<span class="sub">${esc(t('bal.held'))}: ${money(h.held_tiyn)}</span>` : ''}</td>` +
      `<td>${esc(h.maker_name || '—')}</td><td class="mono">${esc(h.event)}<span class="sub">${esc(h.account_name)}${h.valid_until_ms ? ' · ' + esc(t('col.valid_until')) + ' ' + time(h.valid_until_ms) : ''}</span></td>` +
      `<td>${statusBadge(h.status, h.reason)}</td><td>${actions}</td></tr>`;
  });
  main.innerHTML = `<h1>${esc(t('hold.title'))}</h1>
    ${isMaker ? `<div class="panel"><h2>${esc(t('hold.new'))}</h2><form id="hold-form" class="grid">
      <label>${esc(t('hold.account'))}<select name="account">${accounts.map((a) => `<option value="${esc(a.id)}">${esc(a.name)} (${esc(a.id)})</option>`).join('')}</select></label>
      <label>${esc(t('hold.event'))}<input name="event" required></label>
      <label>${esc(t('hold.to_iin'))}<input name="to_iin_bin" required inputmode="numeric"></label>
      <label>${esc(t('hold.to_bank'))}<select name="to_bank">${bankOptions('STB1')}</select></label>
      <label>${esc(t('hold.amount'))}<input name="amount" required></label>
      <div><button class="primary" type="submit">${esc(t('hold.submit'))}</button></div></form></div>` : ''}
    <h2>${esc(t('hold.list'))}</h2>
    ${table([{ key: 'col.request_time' }, { key: 'col.recipient' }, { key: 'col.amount', num: true }, { key: 'col.maker_name' }, { key: 'col.event' }, { key: 'col.status' }, { key: 'col.actions' }], body)}`;
  const form = document.getElementById('hold-form');
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try { await prepareRequest({ type: 'hold', ...formData(form) }); await rerender(); } catch (e) { toast(explain(e), true); }
    });
  }
  for (const b of main.querySelectorAll('[data-unhold]')) {
    b.addEventListener('click', async () => {
      try { await prepareRequest({ type: b.dataset.unhold, account: b.dataset.account, event: b.dataset.event }); await rerender(); } catch (e) { toast(explain(e), true); }
    });
  }
}

export default { id: 'holding', render };
