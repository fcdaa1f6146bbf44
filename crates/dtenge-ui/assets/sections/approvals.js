// Requests for approval: what makers prepared, for a different checker to approve or reject.
import { api, esc, money, statusBadge, t, time, table, kindName, requestSubject, canDecide, state } from '../core.js';
import { bindDecisions } from './transfers.js';

function details(r) {
  const s = requestSubject(r);
  const a = r.action;
  let text = s.to ? `${esc(s.to.name)} <span class="sub mono">${esc(s.to.iin_bin)} · ${esc(s.to.bank)}</span>` : esc(s.name);
  if (a.type === 'transfer') text += `<span class="sub">${esc(a.from_name)} → ${esc(a.memo || '')}</span>`;
  if (a.marking) text += `<span class="sub"><span class="tag">${esc(a.marking.reference)}</span> → ${a.marking.allowed.map((p) => esc(p.name)).join(', ')} ≤ ${money(a.marking.limit_tiyn)}</span>`;
  return text;
}

function row(r, withActions) {
  const s = requestSubject(r);
  const kind = r.action.type === 'transfer' && r.action.marking ? 'marked_transfer' : r.action.type;
  let actions = '';
  if (withActions) {
    actions = canDecide(r)
      ? `<div class="actions"><button class="ok small" data-approve="${esc(r.id)}" id="approve-${esc(r.id)}">${esc(t('appr.approve'))}</button><button class="bad small" data-reject="${esc(r.id)}" id="reject-${esc(r.id)}">${esc(t('appr.reject'))}</button></div>`
      : `<span class="muted">${r.maker === state.me.login ? esc(t('appr.own')) : ''}</span>`;
  }
  return `<tr data-request="${esc(r.id)}"><td class="mono">${esc(r.id)}</td><td>${time(r.created_at_ms)}</td><td>${esc(kindName(kind))}</td><td>${details(r)}</td>` +
    `<td class="num">${s.amount ? money(s.amount) : ''}</td><td>${esc(r.maker_name)}</td><td>${esc(r.checker_name || '')}</td><td>${statusBadge(r.status, r.reason, r.reason_code)}</td>` +
    (withActions ? `<td>${actions}</td>` : '') + '</tr>';
}

async function render(main) {
  const pending = await api('/ui/api/requests?status=under_review&per_page=200');
  const recent = await api('/ui/api/requests?per_page=20');
  const cols = [{ key: 'col.number' }, { key: 'col.time' }, { key: 'col.type' }, { key: 'col.details' }, { key: 'col.amount', num: true }, { key: 'col.maker' }, { key: 'col.checker' }, { key: 'col.status' }];
  main.innerHTML = `<h1>${esc(t('appr.title'))}</h1>
    <div id="pending-table">${table([...cols, { key: 'col.actions' }], pending.items.map((r) => row(r, true)), t('appr.none'))}</div>
    <h2>${esc(t('appr.all'))}</h2>${table(cols, recent.items.map((r) => row(r, false)))}`;
  bindDecisions(main);
}

export default { id: 'approvals', render };
