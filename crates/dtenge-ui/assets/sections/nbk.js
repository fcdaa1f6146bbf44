// NBK operator view: supply, each stablecoin's supply and reserve, volumes by day, conversion requests to approve, health of every node.
import { api, esc, money, statusBadge, t, time, table, rerender, toast, kindName, explain } from '../core.js';

async function render(main) {
  const d = await api('/ui/api/nbk/overview');
  const supply = Object.entries(d.supply.supply_tiyn).map(([cur, v]) => `<div class="card total" id="supply-${esc(cur)}"><div class="label">${esc(t('nbk.supply'))} · ${esc(cur)}</div><div class="value">${money(v)}</div></div>`).join('');
  const byNode = Object.entries(d.supply.by_node_tiyn).map(([node, v]) => `<div class="card"><div class="label">${esc(node)}</div><div class="value">${money(v)}</div></div>`).join('');
  const coins = d.stablecoins.map((s) => `<tr data-stablecoin="${esc(s.code)}"><td><b>${esc(s.code)}</b></td><td class="mono">${esc(s.issuer.slice(0, 16))}…</td>` +
    `<td class="num">${money(s.supply_tiyn)}</td><td class="num">${money(s.reserve_tiyn)}</td>` +
    `<td class="${s.covered ? 'health-ok' : 'bad'}">${esc(t(s.covered ? 'nbk.covered' : 'nbk.not_covered'))}</td></tr>`);
  const maxVol = Math.max(1, ...d.volumes.map((v) => v.volume_tiyn));
  const vols = d.volumes.slice(-14).reverse().map((v) => `<tr><td>${esc(v.day)}</td><td class="num">${v.transactions}</td><td class="num">${money(v.volume_tiyn)}</td>` +
    `<td class="vol-cell"><div class="bar" data-w="${Math.round((v.volume_tiyn / maxVol) * 100)}"></div></td></tr>`);
  const pending = d.conversions.filter((c) => c.status.status === 'under_review');
  const convRow = (c, actions) => `<tr data-conversion="${esc(c.id)}"><td class="mono">${esc(c.id)}</td><td>${time(c.created_at_ms)}</td><td>${esc(c.bank)}</td><td>${esc(kindName(c.kind))}</td><td class="num">${money(c.amount_tiyn)}</td>` +
    `<td class="mono">${esc(c.cbs_reference || t('nbk.waiting_cbs'))}</td><td>${statusBadge(c.status.status, c.status.reason, c.status.reason_code)}${c.decided_by ? `<span class="sub">${esc(c.decided_by)}</span>` : ''}</td>` +
    (actions ? `<td>${c.cbs_reference ? `<div class="actions"><button class="ok small" data-nbk-approve="${esc(c.id)}">${esc(t('nbk.approve'))}</button><button class="bad small" data-nbk-reject="${esc(c.id)}">${esc(t('nbk.reject'))}</button></div>` : ''}</td>` : '') + '</tr>';
  const convCols = [{ key: 'col.request' }, { key: 'col.time' }, { key: 'col.bank_plain' }, { key: 'col.kind' }, { key: 'col.amount', num: true }, { key: 'col.cbs' }, { key: 'col.status' }];
  const nodes = d.health.nodes.map((n) => `<tr><td><b>${esc(n.id)}</b></td><td class="num">${n.accounts}</td><td class="num">${n.tokens}</td><td class="num">${n.in_flight}</td>` +
    `<td class="health-ok">${d.health.status === 'ok' ? '● ' + esc(t('nbk.ok')) : esc(d.health.status)}</td></tr>`);
  main.innerHTML = `<h1>${esc(t('nbk.title'))}</h1>
    <div class="cards">${supply}<div class="card"><div class="label">${esc(t('nbk.notary'))}</div><div class="value">${d.supply.notary_committed}</div></div>
      <div class="card"><div class="label">${esc(t('nbk.unspent'))}</div><div class="value">${d.supply.notary_unspent}</div></div></div>
    <h2>${esc(t('nbk.by_node'))}</h2><div class="cards">${byNode}</div>
    <h2>${esc(t('nbk.stablecoins'))}</h2><div id="nbk-stablecoins">${table([{ key: 'col.stablecoin' }, { key: 'col.issuer' }, { key: 'col.coin_supply', num: true }, { key: 'col.reserve', num: true }, { key: 'col.coverage' }], coins)}</div>
    <h2>${esc(t('nbk.pending'))}</h2><div id="nbk-pending">${table([...convCols, { key: 'col.actions' }], pending.map((c) => convRow(c, true)))}</div>
    <div class="row2">
      <div><h2>${esc(t('nbk.volumes'))}</h2>${table([{ key: 'col.day' }, { key: 'col.txs', num: true }, { key: 'col.volume', num: true }, { key: 'col.chart' }], vols)}</div>
      <div><h2>${esc(t('nbk.health'))}</h2>${table([{ key: 'col.node' }, { key: 'home.accounts', num: true }, { key: 'col.tokens', num: true }, { key: 'col.in_flight', num: true }, { key: 'col.health' }], nodes)}</div>
    </div>
    <h2>${esc(t('nbk.all_conv'))}</h2>${table(convCols, d.conversions.slice(0, 30).map((c) => convRow(c, false)))}`;
  for (const bar of main.querySelectorAll('.bar')) bar.style.width = bar.dataset.w + '%';
  for (const b of main.querySelectorAll('[data-nbk-approve]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try { const c = await api(`/ui/api/nbk/conversions/${b.dataset.nbkApprove}/approve`, { method: 'POST' }); toast(`${c.id}: ${t('status.' + c.status.status)}`); } catch (e) { toast(explain(e), true); }
      await rerender();
    });
  }
  for (const b of main.querySelectorAll('[data-nbk-reject]')) {
    b.addEventListener('click', async () => {
      const reason = prompt(t('appr.reason'));
      if (!reason) return;
      try { await api(`/ui/api/nbk/conversions/${b.dataset.nbkReject}/reject`, { method: 'POST', body: { reason } }); } catch (e) { toast(explain(e), true); }
      await rerender();
    });
  }
}

export default { id: 'nbk', render };
