// Regulator (NBK operator): aggregates by bank and day, large payments above a threshold, marked-funds traceability.
// Data from the API's NBK-only regulator endpoints: each bank reports its own aggregates — no names, no IINs.
import { api, esc, money, t, time, table, formData, astanaDayStart, toast, explain } from '../core.js';

const chosen = { from: '', to: '', threshold: '1 000 000' };

function query() {
  const q = new URLSearchParams({ threshold: chosen.threshold });
  const from = astanaDayStart(chosen.from); const to = astanaDayStart(chosen.to, 1);
  if (from !== null) q.set('from_ms', from);
  if (to !== null) q.set('to_ms', to - 1);
  return '/ui/api/nbk/regulator?' + q;
}

const holder = (k) => t('holder.' + k);

async function render(main) {
  const d = await api(query());
  const banks = d.aggregates.map((a) => `<tr data-bank="${esc(a.bank)}"><td><b>${esc(a.bank)}</b></td><td class="num">${a.accounts_open}</td><td class="num">${a.accounts_closed}</td>` +
    ['simplified', 'standard', 'full'].map((k) => `<td class="num">${a.tiers[k] || 0}</td>`).join('') + `<td class="num">${a.active_orders}</td></tr>`);
  const days = d.aggregates.flatMap((a) => a.days.map((x) => ({ bank: a.bank, ...x })))
    .sort((x, y) => (x.day === y.day ? x.bank.localeCompare(y.bank) : y.day.localeCompare(x.day)))
    .map((x) => `<tr><td>${esc(x.day)}</td><td>${esc(x.bank)}</td><td class="num">${x.payments_out}</td><td class="num">${money(x.amount_out_tiyn)}</td>` +
      `<td class="num">${x.payments_in}</td><td class="num">${money(x.amount_in_tiyn)}</td></tr>`);
  const large = d.large_payments.map((l) => `<tr data-tx="${esc(l.tx)}"><td class="nowrap">${time(l.at_ms, true)}</td><td>${esc(l.bank)}</td><td class="num">${money(l.amount_tiyn)}</td>` +
    `<td>${esc(l.kind)}</td><td>${esc(holder(l.payer_kind))}</td><td class="mono">${esc(l.tx)}</td></tr>`);
  const marked = d.marked_funds.flatMap((m) => (m.moves.length ? m.moves : [null]).map((v, i) => `<tr>` +
    (i === 0 ? `<td rowspan="${Math.max(1, m.moves.length)}"><span class="tag">${esc(m.marking)}</span><span class="sub">${esc(t('reg.initiator'))}: ${esc(m.initiator_node)} · ${esc(t('reg.moved'))} ${money(m.moved_tiyn)}</span></td>` : '') +
    (v ? `<td class="mono">${esc(v.tx)}</td><td class="num">${v.level ?? ''}</td><td class="num">${money(v.amount_tiyn)}</td><td>${esc(v.to_banks.join(', '))}</td>` : '<td></td><td></td><td></td><td></td>') + '</tr>'));
  const totalOut = d.aggregates.reduce((s, a) => s + a.days.reduce((x, y) => x + BigInt(y.amount_out_tiyn), 0n), 0n);
  const count = d.aggregates.reduce((s, a) => s + a.days.reduce((x, y) => x + y.payments_out, 0), 0);
  main.innerHTML = `<h1>${esc(t('reg.title'))}</h1>
    <p class="muted">${esc(t('reg.note'))}</p>
    <div class="panel"><form id="reg-form" class="grid">
      <label>${esc(t('f.from'))}<input type="date" name="from" id="reg-from" value="${esc(chosen.from)}"></label>
      <label>${esc(t('f.to'))}<input type="date" name="to" id="reg-to" value="${esc(chosen.to)}"></label>
      <label>${esc(t('reg.threshold'))}<input name="threshold" id="reg-threshold" inputmode="decimal" value="${esc(chosen.threshold)}"></label>
      <div class="actions"><button class="primary" type="submit" id="reg-show">${esc(t('rep.show'))}</button></div>
    </form></div>
    <div class="cards">
      <div class="card"><div class="label">${esc(t('reg.banks'))}</div><div class="value">${d.aggregates.length}</div></div>
      <div class="card"><div class="label">${esc(t('reg.payments'))}</div><div class="value">${count}</div></div>
      <div class="card total"><div class="label">${esc(t('reg.volume'))}</div><div class="value">${money(totalOut)}</div></div>
      <div class="card"><div class="label">${esc(t('reg.large_count'))} ≥ ${money(d.threshold_tiyn)}</div><div class="value">${d.large_payments.length}</div></div>
    </div>
    <h2>${esc(t('reg.by_bank'))}</h2><div id="reg-banks">${table([{ key: 'col.bank_plain' }, { key: 'reg.open', num: true }, { key: 'reg.closed', num: true },
      { key: 'reg.tier_simplified', num: true }, { key: 'reg.tier_standard', num: true }, { key: 'reg.tier_full', num: true }, { key: 'reg.orders', num: true }], banks)}</div>
    <h2>${esc(t('reg.by_day'))}</h2><div id="reg-days">${table([{ key: 'col.day' }, { key: 'col.bank_plain' }, { key: 'reg.out_count', num: true }, { key: 'reg.out_amount', num: true },
      { key: 'reg.in_count', num: true }, { key: 'reg.in_amount', num: true }], days)}</div>
    <h2>${esc(t('reg.large'))} <span class="muted">(≥ ${money(d.threshold_tiyn)} ${esc(t('reg.dt'))})</span></h2><div id="reg-large">${table([{ key: 'reg.time' }, { key: 'reg.payer_bank' },
      { key: 'col.amount', num: true }, { key: 'col.type' }, { key: 'reg.payer_kind' }, { key: 'reg.tx' }], large)}</div>
    <h2>${esc(t('reg.marked'))}</h2><div id="reg-marked">${table([{ key: 'reg.marking' }, { key: 'reg.tx' }, { key: 'reg.level', num: true },
      { key: 'col.amount', num: true }, { key: 'reg.to_banks' }], marked)}</div>`;
  document.getElementById('reg-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(chosen, formData(ev.target));
    render(main).catch((e) => toast(explain(e), true));
  });
}

export default { id: 'regulator', render };
