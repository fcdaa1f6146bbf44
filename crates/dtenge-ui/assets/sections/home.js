// Main page: balances by kind, accounts, notifications, recent operations and requests.
import { api, esc, money, statusBadge, t, time, table, kindName, requestSubject, state } from '../core.js';
import { noticeText } from '../notices.js';

async function render(main) {
  const d = await api('/ui/api/dashboard');
  const kinds = ['standard', 'marked', 'held', 'vat', 'mandated'];
  const cards = kinds.map((k) => `<div class="card" id="bal-${k}"><div class="label">${esc(t('bal.' + k))}</div><div class="value">${money(d.totals[k + '_tiyn'])}</div></div>`).join('') +
    `<div class="card total" id="bal-total"><div class="label">${esc(t('bal.total'))}</div><div class="value">${money(d.totals.total_tiyn)}</div></div>`;
  const accounts = d.accounts.map((a) => `<tr><td>${esc(a.account.name)}<span class="sub mono">${esc(a.account.id)} · ${esc(a.account.iin_bin)}</span></td>` +
    kinds.map((k) => `<td class="num">${money(a.balance[k + '_tiyn'])}</td>`).join('') + `<td class="num"><b>${money(a.balance.total_tiyn)}</b></td></tr>`);
  const ops = d.recent_operations.map((o) => `<tr><td>${time(o.at_ms)}</td><td>${esc(o.account_name)}</td><td>${esc(o.type)}</td>` +
    `<td>${esc(o.counterparty_names.join(', '))}<span class="sub">${esc(o.memo || '')}</span></td>` +
    `<td class="num">${o.incoming_tiyn ? '+' + money(o.incoming_tiyn) : ''}</td><td class="num">${o.outgoing_tiyn ? '−' + money(o.outgoing_tiyn) : ''}</td>` +
    `<td>${statusBadge(o.status.status, o.status.reason, o.status.reason_code)}</td></tr>`);
  const reqs = d.recent_requests.map((r) => {
    const s = requestSubject(r);
    return `<tr><td class="mono">${esc(r.id)}</td><td>${time(r.created_at_ms)}</td><td>${esc(kindName(r.action.type === 'transfer' && r.action.marking ? 'marked_transfer' : r.action.type))}</td>` +
      `<td>${esc(s.to ? s.to.name : s.name)}</td><td class="num">${s.amount ? money(s.amount) : ''}</td><td>${esc(r.maker_name)}</td><td>${statusBadge(r.status, r.reason, r.reason_code)}</td></tr>`;
  });
  const notices = d.notifications.map((n) => `<tr data-notice="${esc(n.kind)}"><td>${time(n.at_ms)}</td><td>${esc(n.account_name)}<span class="sub mono">${esc(n.account_id)}</span></td>` +
    `<td>${esc(noticeText(n, state.lang, money))}${n.tx ? `<span class="sub mono">${esc(n.tx)}</span>` : ''}</td></tr>`);
  main.innerHTML = `<h1>${esc(t('home.title'))}</h1>
    ${d.pending_review ? `<p><a href="#/approvals" class="tag" id="pending-link">${esc(t('home.pending'))}: ${d.pending_review}</a></p>` : ''}
    <h2>${esc(t('home.balances'))}</h2><div class="cards">${cards}</div>
    <h2>${esc(t('home.accounts'))}</h2>
    ${table([{ key: 'col.account' }, ...kinds.map((k) => ({ key: 'bal.' + k, num: true })), { key: 'bal.total', num: true }], accounts)}
    <h2>${esc(t('home.notifications'))}</h2>
    <div id="notifications">${table([{ key: 'col.time' }, { key: 'col.account' }, { key: 'col.notification' }], notices)}</div>
    <div class="row2">
      <div><h2>${esc(t('home.recent_ops'))}</h2>${table([{ key: 'col.time' }, { key: 'col.account' }, { key: 'col.type' }, { key: 'col.counterparty' }, { key: 'col.in', num: true }, { key: 'col.out', num: true }, { key: 'col.status' }], ops)}</div>
      <div><h2>${esc(t('home.recent_requests'))}</h2>${table([{ key: 'col.number' }, { key: 'col.time' }, { key: 'col.type' }, { key: 'col.recipient' }, { key: 'col.amount', num: true }, { key: 'col.maker' }, { key: 'col.status' }], reqs)}</div>
    </div>`;
}

export default { id: 'home', render };
