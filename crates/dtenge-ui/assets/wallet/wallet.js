// The reference wallet's page: opens a DA with a key made here, shows
// balances by kind, history and notifications, pays an address or IIN, pays
// a QR read from an image or pasted, shows "my QR", and a merchant's dynamic
// QR with its payment seen. Every call to /wallet/api is signed with the
// holder's key (signing.js); every payment is signed here too.

import { t, setLang, currentLang } from './i18n.js';
import { refusalText } from './refusals.js';
import { noticeText } from './notices.js';
import {
  loadHolder, saveHolder, newKeys, sign, signedHeaders, hex, unhex,
  signatureBase, signatureParams, contentDigest,
} from './signing.js';
import * as purse from './purse.js';
import * as offline from './offline.js';
import qrcode from './vendor/qrcode.mjs';

let holder = null;
let found = null;
let polling = null;

const $ = (id) => document.getElementById(id);

function money(tiyn) {
  const whole = Math.floor(tiyn / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return `${whole},${String(tiyn % 100).padStart(2, '0')}`;
}

// Astana time (UTC+5), day first, as the bank's other pages show it — not the browser's locale.
function when(ms, withDate = true) {
  const d = new Date(Number(ms) + 5 * 3600 * 1000);
  const p = (x) => String(x).padStart(2, '0');
  const clock = `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
  return withDate ? `${p(d.getUTCDate())}.${p(d.getUTCMonth() + 1)}.${d.getUTCFullYear()} ${clock}` : clock;
}

// What the page drew of our words and what it holds (the last message, the
// merchant's status, a signed offline payment's sizes), by what it is: a
// language switch draws each again (main).
const redraws = new Map();
function drawn(what, draw) {
  redraws.set(what, draw);
  draw();
}

// `text`: a string, or a function of the page's language for one made of our words.
function say(text, good) {
  const m = $('message');
  drawn('message', () => {
    const shown = typeof text === 'function' ? text() : text;
    m.textContent = shown;
    m.className = shown ? (good ? 'good' : 'bad') : '';
  });
}

async function call(name, body) {
  const path = `/wallet/api/${name}`;
  const text = JSON.stringify(body);
  const headers = await signedHeaders(holder, 'POST', path, text);
  const res = await fetch(path, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: text });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    const error = answer.error || {};
    throw Object.assign(new Error(error.message || `HTTP ${res.status}`), { code: error.code, reason: error.reason });
  }
  return answer;
}

function show(tab) {
  for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('on', b.dataset.tab === tab);
  if (polling && tab !== 'merchant') { clearInterval(polling); polling = null; }
  if (tab === 'home') refresh().catch(notLoaded);
  if (tab === 'receive') receive().catch(notLoaded);
  if (tab === 'offline') showPurse().catch(notLoaded);
  if (camera && camera.tab !== tab) stopCamera();
}

function dl(el, rows) {
  el.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    el.append(dt, dd);
  }
}

function lines(el, items, text) {
  el.replaceChildren();
  if (!items.length) { const li = document.createElement('li'); li.textContent = t('nothing'); el.append(li); }
  for (const item of items) { const li = document.createElement('li'); li.textContent = text(item); el.append(li); }
}

async function refresh() {
  const home = await call('home', { account: holder.account });
  $('account-id').textContent = home.account.id;
  const b = home.balance;
  dl($('balances'), [[t('standard'), money(b.standard_tiyn)], [t('marked'), money(b.marked_tiyn)],
    [t('held'), money(b.held_tiyn)], [t('vat'), money(b.vat_tiyn)], [t('total'), money(b.total_tiyn)]]);
  lines($('history'), home.history, (h) => `${h.at} ${h.incoming_tiyn ? '+' + money(h.incoming_tiyn) : '−' + money(h.outgoing_tiyn)} ${h.memo || ''} (${statusOf(h.status)})`);
  lines($('notifications'), home.notifications, (n) => `${n.at} ${noticeOf(n)}`);
}

// A notification in the page's language (notices.js, shared with the staff interface).
function noticeOf(n) {
  return noticeText(n, currentLang(), (tiyn) => money(Number(tiyn)));
}

// Prepared by the bank, signed here (the holder's key signs the transaction id), submitted.
async function signAndSubmit(prepared, qr) {
  const signature = await sign(holder.keys.privateKey, unhex(prepared.signing_message));
  const done = await call('pay/submit', { account: holder.account, transaction: prepared.transaction, signature: hex(signature), qr });
  say(() => `${t('paid')}: ${done.tx} (${statusOf(done.status)})`, done.status.status === 'success');
  return done;
}

async function openAccount(form) {
  const data = Object.fromEntries(new FormData(form));
  const made = await newKeys();
  holder = { keys: made.keys, publicHex: made.publicHex, account: null };
  const account = await call('open', { iin_bin: data.iin_bin.trim(), name: data.name.trim() });
  holder.account = account.id;
  await saveHolder(holder);
  start();
}

async function pay(form) {
  const data = Object.fromEntries(new FormData(form));
  const body = { account: holder.account, amount: data.amount, memo: data.memo };
  if (data.to_address.trim()) body.to_address = data.to_address.trim();
  else { body.to_iin_bin = data.to_iin_bin.trim(); body.to_bank = data.to_bank.trim(); }
  const prepared = await call('pay/prepare', body);
  await signAndSubmit(prepared, false);
}

// A QR from an image (read here, in the page) or pasted; the bank checks what it asks to pay.
async function readQr(form) {
  const file = form.image.files[0];
  const payload = file ? await qrInFile(file) : form.payload.value.trim();
  showFound(await call('qr/check', { account: holder.account, payload }));
}

// A QR read by the camera, in the page: the bank checks what it asks to pay.
async function qrScanned(text) {
  $('qr-form').image.value = '';
  showFound(await call('qr/check', { account: holder.account, payload: text }));
}

// What a QR asks to pay, as the bank checked it, and the button to pay it.
function showFound(answer) {
  found = answer;
  const p = answer.qr.payment;
  const rows = [[t('payee'), `${p.name}, ${p.city} (${p.bank})`]];
  if (p.amount_tiyn) rows.push([t('amount'), money(p.amount_tiyn)]);
  if (p.reference) rows.push([t('reference'), p.reference]);
  if (p.expires_at_s) rows.push([t('expires'), when(p.expires_at_s * 1000, false)]);
  dl($('qr-details'), rows);
  $('qr-amount-row').hidden = Boolean(p.amount_tiyn);
  $('qr-found').hidden = false;
  say('');
}

async function payQr() {
  const body = { account: holder.account, qr_payload: found.payload };
  if (!found.qr.payment.amount_tiyn) body.amount = $('qr-amount').value;
  const prepared = await call('pay/prepare', body);
  await signAndSubmit(prepared, true);
  $('qr-found').hidden = true;
}

function svgSrc(svg) {
  return `data:image/svg+xml;base64,${btoa(svg)}`;
}

async function receive() {
  const r = await call('receive', { account: holder.account });
  $('receive-qr').src = svgSrc(r.svg);
  $('receive-address').textContent = r.address;
}

async function merchantQr(form) {
  const data = Object.fromEntries(new FormData(form));
  const r = await call('merchant/qr', { account: holder.account, amount: data.amount, reference: data.reference.trim() });
  $('merchant-qr-img').src = svgSrc(r.svg);
  $('merchant-payload').value = r.payload;
  const status = $('merchant-status');
  drawn('merchant-status', () => { status.textContent = t('waiting'); status.className = ''; });
  $('merchant-qr').hidden = false;
  if (polling) clearInterval(polling);
  const reference = data.reference.trim();
  polling = setInterval(async () => {
    try {
      const s = await call('merchant/status', { account: holder.account, reference });
      if (s.paid) {
        clearInterval(polling); polling = null;
        drawn('merchant-status', () => {
          status.textContent = `${t('received')}: ${money(s.amount_tiyn)} (${s.tx})`;
          status.className = 'good';
        });
      }
    } catch (e) { notLoaded(e); }
  }, 1000);
}

// The offline purse (purse.js): set up, load and deposit need the network;
// paying and receiving do not.

// "120", "120,50", "1 200.5" → tiyn.
function tiynOf(text) {
  const t = String(text).replace(/[\s\u00a0]/g, '').replace(',', '.');
  const m = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(t);
  if (!m) throw new Error(`${t}: not an amount`);
  return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
}

// A status in the page's language; a rejection with its reason, named by its
// code when the platform gave one (refusals.js).
function statusOf(s) {
  const word = t('st_' + s.status);
  return s.status === 'rejected' && s.reason ? `${word}: ${refusalText(s.reason_code, s.reason, currentLang())}` : word;
}

// A refusal — the purse's (OfflineCode), the bank's (its code is `reason`) or
// this server's — named in the page's language, then the refusing side's own
// words and its code (refusals.js).
function refused(e) {
  say(() => `${t('refused')}: ${refusalText(e.reason || e.code, e.message, currentLang())}`);
}

async function showPurse() {
  const s = await purse.status();
  $('purse-device').textContent = s ? s.device : '';
  if (!s) {
    dl($('purse-status'), [[t('purse_none'), '']]);
    lines($('purse-holdings'), [], () => '');
    return;
  }
  const rows = [[t('purse_balance'), money(s.balance)], [t('purse_pending'), money(s.pending)]];
  if (s.certificate) {
    rows.push([t('purse_until'), when(s.certificate.validUntil)]);
    rows.push([t('purse_left'), String(s.certificate.paymentsLeft)]);
  }
  dl($('purse-status'), rows);
  const items = [
    ...s.holdings.map((h) => `${t(h.kind === 'loaded' ? 'held_loaded' : 'held_received')}: ${money(h.free)} (${h.bank}, ${t('hops')}: ${h.hops})`),
    ...s.sent.map((x) => `${t('sent_offline')}: −${money(x.amount)}`),
    ...s.settled.map((x) => `${t('deposited')}: ${money(x.amount)} — ${t(x.outcome)}`),
  ];
  lines($('purse-holdings'), items, (x) => x);
}

async function purseSetup() {
  await purse.setup((name, body) => call(name, { account: holder.account, ...body }));
  say(() => t('purse_ready'), true);
  await showPurse();
}

async function purseLoad(form) {
  const amount = form.amount.value.trim();
  const online = (name, body) => call(name, { account: holder.account, ...body });
  const payReserve = async (reserve, text) => {
    const prepared = await call('pay/prepare', { account: holder.account, to_address: reserve, amount: text, memo: 'offline purse' });
    const done = await signAndSubmit(prepared, false);
    if (done.status.status !== 'success') throw new Error(`${done.tx}: ${done.status.status}`);
    return done.tx;
  };
  const tiyn = await purse.load(online, payReserve, amount);
  say(() => `${t('loaded')}: ${money(tiyn)}`, true);
  await showPurse();
}

// One QR code per chain (≤ 1 KiB, purse.js): its hex in capitals, so the
// code's alphanumeric mode packs it; the payee's page reads any case.
function drawQrs(chains) {
  $('offline-qr').replaceChildren(...chains.map((chain) => {
    const qr = qrcode(0, 'M');
    qr.addData(chain.toUpperCase(), 'Alphanumeric');
    qr.make();
    const img = document.createElement('img');
    img.src = qr.createDataURL(4, 16);
    return img;
  }));
}

async function offlinePay(form) {
  const tiyn = tiynOf(form.amount.value);
  const chains = await purse.pay(form.payee.value, tiyn, Date.now());
  $('offline-out').value = chains.join('\n');
  drawQrs(chains);
  drawn('offline-sent', () => {
    $('offline-size').textContent = chains.map((c) => `${c.length / 2} ${t('bytes')}`).join(', ');
    $('offline-qr').querySelectorAll('img').forEach((img, i) => { img.alt = `${t('offline_qr')} ${i + 1}/${chains.length}`; });
  });
  $('offline-sent').hidden = false;
  say(() => `${t('sent_offline')}: ${money(tiyn)}`, true);
  await showPurse();
}

// Largest side an image or a camera frame is read at: a phone's camera
// gives far more pixels than a QR code of ≤ 1 KiB needs, and reading them
// all is slow.
const SCAN_SIDE_MAX = 1600;

// Where images and camera frames are drawn to be read: one, since the
// camera is read ten times a second.
const scanCanvas = document.createElement('canvas');

// The text of the QR code in `source` (an image or a playing video of
// `width` × `height`), read in the page; null if none is found.
function qrIn(source, width, height) {
  const scale = Math.min(1, SCAN_SIDE_MAX / Math.max(width, height));
  scanCanvas.width = Math.max(1, Math.round(width * scale));
  scanCanvas.height = Math.max(1, Math.round(height * scale));
  const ctx = scanCanvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, scanCanvas.width, scanCanvas.height);
  const pixels = ctx.getImageData(0, 0, scanCanvas.width, scanCanvas.height);
  const code = window.jsQR(pixels.data, pixels.width, pixels.height);
  return code && code.data.trim() ? code.data.trim() : null;
}

// Adds a chain read from a QR code to what will be checked.
function addScanned(data) {
  const text = data.toLowerCase();
  const box = $('offline-receive-form').payment;
  box.value = box.value.trim() ? `${box.value.trim()}\n${text}` : text;
  say(() => `${t('offline_qr_read')}: ${text.length / 2} ${t('bytes')}`, true);
}

// The text of the QR code in an image file (a photo, a screenshot), read in
// the page: the image goes nowhere.
async function qrInFile(file) {
  const url = await new Promise((done, failed) => {
    const reader = new FileReader();
    reader.onload = () => done(reader.result);
    reader.onerror = () => failed(reader.error);
    reader.readAsDataURL(file);
  });
  const img = new Image();
  img.src = url;
  await img.decode().catch(() => { throw new Error(t('qr_none')); });
  const text = qrIn(img, img.naturalWidth, img.naturalHeight);
  if (!text) throw new Error(t('qr_none'));
  return text;
}

// Reads the QR code in a photo or image of the payer's screen (no network).
async function offlineScan(input) {
  const file = input.files[0];
  if (!file) return;
  input.value = '';
  addScanned(await qrInFile(file));
}

// The camera's live view — one at a time, in the offline receive form
// (`offline`) or the QR payment tab (`qr`) — read ten times a second until a
// QR code is found or the person stops it (or leaves the tab).
let camera = null;

function stopCamera() {
  if (!camera) return;
  clearTimeout(camera.timer);
  if (camera.stream) for (const track of camera.stream.getTracks()) track.stop();
  $(`${camera.where}-video`).srcObject = null;
  $(`${camera.where}-camera-view`).hidden = true;
  camera = null;
}

// Scans with the camera into the view of `where`; `found` gets the QR's text.
async function scanWithCamera(where, found) {
  if (camera) {
    if (camera.where === where) return;
    stopCamera();
  }
  // Taken before the (slow) permission prompt, so a second click opens no second camera.
  const mine = { stream: null, timer: 0, where, tab: $(`${where}-camera-view`).closest('section').id };
  camera = mine;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error('navigator.mediaDevices');
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  if (camera !== mine) {
    // Stopped while the browser asked (the person left the tab).
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  mine.stream = stream;
  const video = $(`${where}-video`);
  video.srcObject = stream;
  $(`${where}-camera-view`).hidden = false;
  await video.play();
  const look = () => {
    if (camera !== mine) return;
    const text = video.videoWidth ? qrIn(video, video.videoWidth, video.videoHeight) : null;
    if (text) {
      stopCamera();
      Promise.resolve(found(text)).catch(refused);
      return;
    }
    mine.timer = setTimeout(look, 100);
  };
  look();
}

// What could not be loaded: a refusal is named as one; anything else (the
// network down, say) is said as it is.
function notLoaded(e) {
  if (e.reason || e.code) refused(e);
  else say(e.message);
}

// The camera failed to open: named, and nothing left running.
function noCamera(e) {
  stopCamera();
  say(() => `${t('refused')}: ${t('no_camera')} (${e.message})`);
}

async function offlineReceive(form) {
  const tiyn = await purse.receive(form.payment.value, Date.now());
  form.payment.value = '';
  say(() => `${t('received_pending')}: ${money(tiyn)}`, true);
  await showPurse();
}

async function purseDeposit() {
  const answers = await purse.deposit((name, body) => call(name, { account: holder.account, ...body }), holder.publicHex, Date.now());
  const total = answers.reduce((s, a) => s + (a.amount_tiyn || 0), 0);
  const bad = answers.find((a) => a.outcome === 'double_spend');
  if (bad) say(() => `${t('deposited')}: ${t('double_spend')} (${bad.culprit})`);
  else say(() => `${t('deposited')}: ${money(total)} — ${t('settled')}`, true);
  await showPurse();
}

function on(id, f) {
  $(id).addEventListener('submit', (ev) => { ev.preventDefault(); f(ev.target).catch(refused); });
}

function start() {
  $('open').hidden = true;
  $('tabs').hidden = false;
  show('home');
}

async function main() {
  $('lang').value = currentLang();
  setLang(currentLang());
  $('lang').addEventListener('change', () => {
    setLang($('lang').value);
    for (const draw of redraws.values()) draw();
    // What the open tab drew itself (balances, the purse's lines) again, in the new language.
    const open = document.querySelector('section.tab:not([hidden])');
    if (open) show(open.id);
  });
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.tab));
  on('open-form', openAccount);
  on('pay-form', pay);
  on('qr-form', readQr);
  on('merchant-form', merchantQr);
  $('qr-pay').addEventListener('click', () => payQr().catch(refused));
  on('purse-load-form', purseLoad);
  on('offline-pay-form', offlinePay);
  on('offline-receive-form', offlineReceive);
  const scan = $('offline-receive-form').image;
  scan.addEventListener('change', () => offlineScan(scan).catch(refused));
  $('offline-camera').addEventListener('click', () => scanWithCamera('offline', addScanned).catch(noCamera));
  $('offline-camera-stop').addEventListener('click', stopCamera);
  $('qr-camera').addEventListener('click', () => scanWithCamera('qr', qrScanned).catch(noCamera));
  $('qr-camera-stop').addEventListener('click', stopCamera);
  $('purse-setup').addEventListener('click', () => purseSetup().catch(refused));
  $('purse-deposit').addEventListener('click', () => purseDeposit().catch(refused));
  holder = await loadHolder();
  if (holder && holder.account) start(); else $('open').hidden = false;
  document.body.dataset.ready = 'yes';
}

// For the browser test: the signing primitives and what the stored key is.
window.dtengeWallet = {
  signatureBase, signatureParams, contentDigest,
  keyInfo: () => holder && {
    extractable: holder.keys.privateKey.extractable,
    algorithm: holder.keys.privateKey.algorithm.name,
    publicHex: holder.publicHex,
    account: holder.account,
  },
  // The purse: its device key, and the chains it sent and deposited.
  purse: { deviceInfo: purse.deviceInfo, records: purse.records },
  // The offline protocol, for the test to build and check messages with.
  offline,
};

main().catch(notLoaded);
