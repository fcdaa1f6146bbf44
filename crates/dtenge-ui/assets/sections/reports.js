// Reports: type, incoming/outgoing, period; shown on the page and downloaded as CSV or XLSX.
import { api, esc, money, t, table, formData, astanaDayStart, state } from '../core.js';

const chosen = { type: 'operations', direction: 'all', from: '', to: '' };

function query(format) {
  const q = new URLSearchParams({ type: chosen.type, direction: chosen.direction, format, lang: state.lang });
  const from = astanaDayStart(chosen.from); const to = astanaDayStart(chosen.to, 1);
  if (from !== null) q.set('from_ms', from);
  if (to !== null) q.set('to_ms', to);
  return '/ui/api/reports?' + q;
}

async function render(main) {
  const types = state.me.participant === 'NBK' ? ['conversions'] : ['operations', 'requests', 'conversions'];
  if (!types.includes(chosen.type)) chosen.type = types[0];
  const data = await api(query('json'));
  const rows = data.rows.map((r) => '<tr>' + r.map((c) => (c && typeof c === 'object' ? `<td class="num">${money(c.tiyn)}</td>` : `<td>${esc(c)}</td>`)).join('') + '</tr>');
  const head = data.columns.map((c) => `<th>${esc(c)}</th>`).join('');
  main.innerHTML = `<h1>${esc(t('rep.title'))}</h1>
    <div class="panel"><form id="report-form" class="grid">
      <label>${esc(t('rep.type'))}<select name="type" id="rep-type">${types.map((x) => `<option value="${x}" ${x === chosen.type ? 'selected' : ''}>${esc(t('rep.' + x))}</option>`).join('')}</select></label>
      <label>${esc(t('rep.direction'))}<select name="direction" id="rep-direction">${['all', 'incoming', 'outgoing'].map((x) => `<option value="${x}" ${x === chosen.direction ? 'selected' : ''}>${esc(t('rep.' + x))}</option>`).join('')}</select></label>
      <label>${esc(t('f.from'))}<input type="date" name="from" value="${esc(chosen.from)}"></label>
      <label>${esc(t('f.to'))}<input type="date" name="to" value="${esc(chosen.to)}"></label>
      <div class="actions wide"><button class="primary" type="submit" id="rep-show">${esc(t('rep.show'))}</button>
        <a class="button" id="rep-csv" href="${esc(query('csv'))}" download>${esc(t('rep.csv'))}</a>
        <a class="button" id="rep-xlsx" href="${esc(query('xlsx'))}" download>${esc(t('rep.xlsx'))}</a></div>
    </form></div>
    <h2>${esc(data.title)} <span class="muted">(${data.rows.length} ${esc(t('rep.rows'))})</span></h2>
    ${rows.length ? `<div class="table-wrap"><table id="report-table"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>` : table([], [])}`;
  document.getElementById('report-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(chosen, formData(ev.target));
    render(main);
  });
}

export default { id: 'reports', render };
