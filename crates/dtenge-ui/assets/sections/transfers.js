// Transfers in DT: a new transfer (optionally marked) prepared by a maker; the table with filters and pages.
import { api, esc, money, statusBadge, t, time, table, bankOptions, formData, prepareRequest, astanaDayStart, canDecide, rerender, toast, state, explain, reasonOf } from '../core.js';

const filter = { page: 1, per_page: 10, status: '', type: 'transfer,marked_transfer', from: '', to: '' };

function row(r) {
  const a = r.action;
  const name = (a.memo ? esc(a.memo) : '') + (a.marking ? ` <span class="tag" title="${esc(t('kind.marked_transfer'))}">${esc(a.marking.reference)}</span>` : '');
  const actions = canDecide(r)
    ? `<div class="actions"><button class="ok small" data-approve="${esc(r.id)}">${esc(t('appr.approve'))}</button><button class="bad small" data-reject="${esc(r.id)}">${esc(t('appr.reject'))}</button></div>` : '';
  return `<tr data-request="${esc(r.id)}"><td class="mono">${esc(r.id)}<span class="sub">${time(r.created_at_ms)}</span></td><td>${name}<span class="sub">${esc(a.from_name)}</span></td>` +
    `<td>${esc(a.to.bank)}</td><td>${esc(a.to.name)}<span class="sub mono">${esc(a.to.iin_bin)}</span></td><td class="num">${money(a.amount_tiyn)}</td>` +
    `<td>${statusBadge(r.status, r.reason, r.reason_code)}<span class="sub">${esc(t('col.maker'))}: ${esc(r.maker_name)}${r.checker_name ? ' · ' + esc(t('col.checker')) + ': ' + esc(r.checker_name) : ''}</span></td><td>${actions}</td></tr>`;
}

async function render(main) {
  const isMaker = state.me.roles.includes('maker');
  const accounts = isMaker ? await api('/ui/api/accounts') : [];
  const q = new URLSearchParams({ page: filter.page, per_page: filter.per_page, type: filter.type });
  if (filter.status) q.set('status', filter.status);
  const from = astanaDayStart(filter.from); const to = astanaDayStart(filter.to, 1);
  if (from !== null) q.set('from_ms', from);
  if (to !== null) q.set('to_ms', to);
  const page = await api('/ui/api/requests?' + q);
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const statuses = ['under_review', 'request_accepted', 'success', 'rejected'];
  const form = isMaker ? `<div class="panel"><h2>${esc(t('tr.new'))}</h2>
    <form id="transfer-form" class="grid">
      <label>${esc(t('tr.from'))}<select name="from" id="tr-from">${accounts.filter((a) => a.kind === 'government_agency' || a.kind === 'institution').map((a) => `<option value="${esc(a.id)}">${esc(a.name)} (${esc(a.id)})</option>`).join('')}</select></label>
      <label>${esc(t('tr.to_iin'))}<input name="to_iin_bin" id="tr-to-iin" required pattern="\\d{12}" inputmode="numeric"></label>
      <label>${esc(t('tr.to_bank'))}<select name="to_bank" id="tr-to-bank">${bankOptions('STB1')}</select></label>
      <label>${esc(t('tr.amount'))}<input name="amount" id="tr-amount" required placeholder="1 000,00"></label>
      <label class="wide">${esc(t('tr.memo'))}<input name="memo" id="tr-memo" maxlength="140"></label>
      <label class="check wide"><input type="checkbox" name="marked" id="tr-marked"> ${esc(t('tr.marked'))}</label>
      <fieldset class="wide" id="tr-marking" hidden><legend>${esc(t('kind.marked_transfer'))}</legend><div class="grid form-inner">
        <label>${esc(t('tr.reference'))}<input name="reference" id="tr-reference"></label>
        <label>${esc(t('tr.allowed_iin'))}<input name="allowed_iin_bin" id="tr-allowed-iin" inputmode="numeric"></label>
        <label>${esc(t('tr.allowed_bank'))}<select name="allowed_bank" id="tr-allowed-bank">${bankOptions('STB2')}</select></label>
        <label>${esc(t('tr.limit'))}<input name="limit" id="tr-limit"></label></div></fieldset>
      <div><button type="submit" class="primary" id="tr-submit">${esc(t('tr.submit'))}</button></div>
    </form></div>` : '';
  main.innerHTML = `<h1>${esc(t('tr.title'))}</h1>${form}
    <h2>${esc(t('tr.list'))}</h2>
    <form class="filters" id="tr-filters">
      <label>${esc(t('f.from'))}<input type="date" name="from" value="${esc(filter.from)}"></label>
      <label>${esc(t('f.to'))}<input type="date" name="to" value="${esc(filter.to)}"></label>
      <label>${esc(t('f.status'))}<select name="status" id="tr-filter-status"><option value="">${esc(t('f.all'))}</option>${statuses.map((s) => `<option value="${s}" ${s === filter.status ? 'selected' : ''}>${esc(t('status.' + s))}</option>`).join('')}</select></label>
      <label>${esc(t('f.type'))}<select name="type" id="tr-filter-type">
        <option value="transfer,marked_transfer">${esc(t('f.all'))}</option>
        <option value="transfer" ${filter.type === 'transfer' ? 'selected' : ''}>${esc(t('kind.transfer'))}</option>
        <option value="marked_transfer" ${filter.type === 'marked_transfer' ? 'selected' : ''}>${esc(t('kind.marked_transfer'))}</option></select></label>
      <button class="secondary" type="submit">${esc(t('f.apply'))}</button>
      <button class="link" type="button" id="tr-reset">${esc(t('f.reset'))}</button>
    </form>
    ${table([{ key: 'col.number' }, { key: 'col.name_contract' }, { key: 'col.bank' }, { key: 'col.recipient' }, { key: 'col.amount', num: true }, { key: 'col.status' }, { key: 'col.actions' }], page.items.map(row))}
    <div class="pager"><span class="muted">${page.total} ${esc(t('pg.total'))}</span>
      <button class="secondary small" id="pg-prev" ${filter.page <= 1 ? 'disabled' : ''}>${esc(t('pg.prev'))}</button>
      <span>${esc(t('pg.page'))} ${page.page} ${esc(t('pg.of'))} ${pages}</span>
      <button class="secondary small" id="pg-next" ${filter.page >= pages ? 'disabled' : ''}>${esc(t('pg.next'))}</button></div>`;

  const tf = document.getElementById('transfer-form');
  if (tf) {
    const marked = document.getElementById('tr-marked');
    marked.addEventListener('change', () => { document.getElementById('tr-marking').hidden = !marked.checked; });
    tf.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = formData(tf);
      const body = { type: 'transfer', from: f.from, to_iin_bin: f.to_iin_bin, to_bank: f.to_bank, amount: f.amount, memo: f.memo };
      if (f.marked) body.marking = { reference: f.reference, allowed_iin_bin: f.allowed_iin_bin, allowed_bank: f.allowed_bank, limit: f.limit };
      try { await prepareRequest(body); filter.page = 1; await rerender(); } catch (e) { toast(explain(e), true); }
    });
  }
  document.getElementById('tr-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = formData(ev.target);
    Object.assign(filter, { from: f.from, to: f.to, status: f.status, type: f.type, page: 1 });
    rerender();
  });
  document.getElementById('tr-reset').addEventListener('click', () => { Object.assign(filter, { from: '', to: '', status: '', type: 'transfer,marked_transfer', page: 1 }); rerender(); });
  document.getElementById('pg-prev').addEventListener('click', () => { filter.page -= 1; rerender(); });
  document.getElementById('pg-next').addEventListener('click', () => { filter.page += 1; rerender(); });
  bindDecisions(main);
}

/** Approve / reject buttons (also used by other sections). */
export function bindDecisions(root) {
  for (const b of root.querySelectorAll('[data-approve]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const r = await api(`/ui/api/requests/${b.dataset.approve}/approve`, { method: 'POST' });
        toast(t('msg.approved', { id: r.id, status: t('status.' + r.status) }) + (r.reason ? ' ' + reasonOf(r) : ''), r.status === 'rejected');
      } catch (e) { toast(explain(e), true); }
      await rerender();
    });
  }
  for (const b of root.querySelectorAll('[data-reject]')) {
    b.addEventListener('click', async () => {
      const reason = prompt(t('appr.reason'));
      if (!reason) return;
      try {
        await api(`/ui/api/requests/${b.dataset.reject}/reject`, { method: 'POST', body: { reason } });
        toast(t('msg.rejected', { id: b.dataset.reject }));
      } catch (e) { toast(explain(e), true); }
      await rerender();
    });
  }
}

export default { id: 'transfers', render };
