// The offline purse: a secure element in software plus the holdings it may
// spend (crates/dtenge-offline's SoftwareElement and Purse, in the page).
//
// The device key is a WebCrypto Ed25519 key made here, non-extractable, kept
// in IndexedDB with the element's monotonic counter. A counter value signs
// one hop only: under a lock held across tabs (Web Locks), the counter is
// advanced and the spent range marked in one IndexedDB transaction that
// commits *before* the signature is made, so a crash or a second tab can lose
// a counter value but never sign two hops with one (docs/offline.md says what
// a hardware element adds). Receiving and paying work with no network;
// setting up, loading and depositing are the online ends (`online` below is
// the page's signed call to /wallet/api).

import {
  OfflineError, MAX_PAYMENT_HOPS, MAX_PAYMENT_BYTES, applyRevocations, certificateMessage, countedMessage,
  decodeCertificate, decodeChain, decodeLoad, decodeRevocations, encodeChain, hex, hopBody, loadId, tipOf, unhex,
  verifyPayment,
} from './offline.js';

import { stored } from './signing.js';

const KEY = 'purse';
/** Most holdings a purse keeps (MAX_HOLDINGS in dtenge-offline). */
export const MAX_HOLDINGS = 64;
/** Payments made and deposits answered kept for the page. */
const LOG_MAX = 20;
// A certificate's length in a chain: 136 bytes + the bank id; a hop's: 124.
const HOP_BYTES = 124;

const fail = (code, message) => { throw new OfflineError(code, message); };

async function read() {
  return (await stored('readonly', (s) => s.get(KEY))) || null;
}

// Resolves once the write is committed (durable as IndexedDB makes it).
async function write(purse) {
  await stored('readwrite', (s) => s.put(purse, KEY));
}

// One purse operation at a time across every tab of this origin.
function locked(f) {
  return navigator.locks ? navigator.locks.request('dtenge-purse', f) : f();
}

const free = (h) => Math.max(0, h.hi - h.next);

function certificateOf(purse) {
  return purse.certificate ? decodeCertificate(unhex(purse.certificate)) : null;
}

/** What the page shows; works offline. */
export async function status() {
  const purse = await read();
  if (!purse) return null;
  const c = certificateOf(purse);
  const holdings = purse.holdings.map((h) => {
    const chain = decodeChain(unhex(h.chain));
    return { kind: h.kind, bank: chain.load.bank, hops: chain.hops.length, free: free(h), spendable: chain.hops.length < MAX_PAYMENT_HOPS };
  });
  return {
    device: purse.device.publicHex,
    counter: purse.counter,
    balance: holdings.reduce((s, h) => s + h.free, 0),
    pending: holdings.filter((h) => h.kind === 'received').reduce((s, h) => s + h.free, 0),
    certificate: c && {
      bank: c.bank, validUntil: c.valid_until, limits: c.limits,
      paymentsLeft: Math.max(0, c.counter_from + c.limits.payments_max - purse.counter),
    },
    holdings,
    deposits: purse.deposits.length,
    sent: purse.sent,
    settled: purse.settled,
    loadOwed: purse.loadOwed || null,
  };
}

/** The stored device key (for the browser test: non-extractable, Ed25519). */
export async function deviceInfo() {
  const purse = await read();
  return purse && {
    extractable: purse.device.keys.privateKey.extractable,
    algorithm: purse.device.keys.privateKey.algorithm.name,
    publicHex: purse.device.publicHex,
    counter: purse.counter,
  };
}

/** The chains last sent, last deposited (for the browser test's Rust cross-check). */
export async function records() {
  const purse = await read();
  return purse && { sent: purse.sent, settled: purse.settled, deposits: purse.deposits };
}

async function takeTrust(purse, view) {
  const trust = { banks: {}, revoked: purse.trust ? purse.trust.revoked : [], serials: purse.trust ? purse.trust.serials : {} };
  for (const b of view.banks) trust.banks[b.bank] = b.key.toLowerCase();
  for (const r of view.revocations) await applyRevocations(trust, decodeRevocations(unhex(r.list)));
  purse.trust = trust;
}

/**
 * Online: makes the device key on first use, has the bank certify it from
 * the element's counter (renewing the offline time and payment count), and
 * keeps the bank keys and revocation lists needed to verify offline.
 */
export function setup(online) {
  return locked(async () => {
    let purse = await read();
    if (!purse) {
      // extractable = false: the device key can sign but can never be read out.
      const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      const publicHex = hex(new Uint8Array(await crypto.subtle.exportKey('raw', keys.publicKey)));
      purse = { device: { keys, publicHex }, counter: 0, certificate: null, reserve: null, trust: null,
        holdings: [], deposits: [], sent: [], settled: [], loadOwed: null };
      await write(purse);
    }
    const answer = await online('offline/certify', { device_key: purse.device.publicHex, next_counter: purse.counter });
    await takeTrust(purse, answer.trust);
    const c = decodeCertificate(unhex(answer.certificate.certificate));
    if (c.device !== purse.device.publicHex) fail('offline_chain_broken', 'the certificate is for another device');
    const bankKey = purse.trust.banks[c.bank] || fail('offline_unknown_bank', `unknown bank ${c.bank}`);
    if (!(await verifySignature(bankKey, c.signature, await certificateMessage(c)))) {
      fail('offline_bad_signature', 'bad signature on certificate');
    }
    purse.certificate = answer.certificate.certificate;
    purse.reserve = answer.certificate.reserve;
    await write(purse);
    return purse.reserve;
  });
}

async function verifySignature(keyHex, signatureHex, message) {
  const key = await crypto.subtle.importKey('raw', unhex(keyHex), { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, unhex(signatureHex), message);
}

function admit(purse, c, amount) {
  if (purse.holdings.length >= MAX_HOLDINGS) fail('offline_limit', 'the purse holds too many payments: deposit some');
  const balance = purse.holdings.reduce((s, h) => s + free(h), 0);
  if (balance + amount > c.limits.balance_max) fail('offline_limit', 'offline balance limit');
}

/**
 * Online: funds the purse. `pay(reserve, amount)` is the page's client-signed
 * payment into the bank's offline reserve (answers its transaction id); the
 * bank then signs a load for this device. The payment is remembered before
 * the load is asked for, so a load lost on the way is asked for again.
 */
export function load(online, pay, amountText) {
  return locked(async () => {
    let purse = await read();
    if (!purse || !purse.certificate) fail('offline_no_purse', 'set up the offline purse first');
    if (!purse.loadOwed) {
      const tx = await pay(purse.reserve, amountText);
      purse.loadOwed = { tx, amount: amountText };
      await write(purse);
    }
    const owed = purse.loadOwed;
    const view = await online('offline/load', { device_key: purse.device.publicHex, amount: owed.amount, tx: owed.tx });
    const l = decodeLoad(unhex(view.load));
    purse = await read();
    const c = certificateOf(purse);
    if (l.device !== purse.device.publicHex) fail('offline_chain_broken', 'the load is for another device');
    const bankKey = purse.trust.banks[l.bank] || fail('offline_unknown_bank', `unknown bank ${l.bank}`);
    const id = await loadId(l);
    if (!(await verifySignature(bankKey, l.signature, id))) fail('offline_bad_signature', 'bad signature on load');
    const chain = hex(encodeChain({ load: l, certificates: [], hops: [] }));
    if (!purse.holdings.some((h) => h.chain === chain)) {
      admit(purse, c, l.amount);
      purse.holdings.push({ chain, next: 0, hi: l.amount, kind: 'loaded' });
    }
    purse.loadOwed = null;
    await write(purse);
    return l.amount;
  });
}

// Advances the counter and marks each planned range spent, committed before
// any signature is made; then signs. `plan`: [{index, lo, hi}], `payee` hex.
async function signHops(purse, plan, payee, now) {
  const c = certificateOf(purse);
  const planned = plan.map((p) => ({ ...p, counter: purse.counter++, chain: decodeChain(unhex(purse.holdings[p.index].chain)) }));
  for (const p of plan) purse.holdings[p.index].next = p.hi;
  await write(purse);
  const out = [];
  for (const [i, p] of planned.entries()) {
    let signature;
    try {
      const parent = await tipOf(p.chain);
      const message = await countedMessage(p.counter, hopBody(parent, p.lo, p.hi, payee, now));
      signature = hex(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, purse.device.keys.privateKey, message)));
    } catch (e) {
      // Nothing was signed for these ranges: they are still this purse's
      // (their counter values stay used — never reused).
      for (const q of planned.slice(i)) purse.holdings[q.index].next = q.lo;
      await write(purse);
      throw e;
    }
    p.chain.certificates.push(c);
    p.chain.hops.push({ lo: p.lo, hi: p.hi, payee, counter: p.counter, at: now, signature });
    out.push(encodeChain(p.chain));
  }
  purse.holdings = purse.holdings.filter((h) => free(h) > 0);
  return out;
}

/** Offline: pays `amount` tiyn to device `payee`; one chain (≤ 1 KiB) per holding drawn on, as hex. */
export function pay(payee, amount, now) {
  return locked(async () => {
    const purse = await read();
    const c = purse && certificateOf(purse);
    if (!c) fail('offline_no_purse', 'set up the offline purse first');
    payee = String(payee).trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(payee)) fail('offline_malformed', 'the payee\'s device key is 64 hex digits');
    if (payee === purse.device.publicHex) fail('offline_chain_broken', 'a purse does not pay itself');
    if (now > c.valid_until) fail('offline_certificate_expired', 'this device\'s certificate has expired: reconnect');
    if (!Number.isSafeInteger(amount) || amount <= 0) fail('offline_bad_range', 'the amount must be positive');
    if (amount > c.limits.payment_max) fail('offline_limit', 'payment above the device\'s per-payment limit');
    const hopsOf = (h) => decodeChain(unhex(h.chain)).hops.length;
    const order = purse.holdings.map((h, index) => ({ index, free: free(h), hops: hopsOf(h), bytes: h.chain.length / 2 }))
      .filter((h) => h.free > 0 && h.hops < MAX_PAYMENT_HOPS).sort((a, b) => b.free - a.free);
    const available = order.reduce((s, h) => s + h.free, 0);
    if (available < amount) fail('offline_insufficient', `offline balance too low: ${available} tiyn free, ${amount} wanted`);
    const plan = [];
    let left = amount;
    for (const h of order) {
      if (left === 0) break;
      const take = Math.min(left, h.free);
      const lo = purse.holdings[h.index].next;
      // The chain one certificate and one hop longer must still fit a QR code.
      if (h.bytes + 136 + 4 + c.bank.length + HOP_BYTES > MAX_PAYMENT_BYTES) fail('offline_limit', 'payment larger than 1 KiB: deposit the holding instead');
      plan.push({ index: h.index, lo, hi: lo + take });
      left -= take;
    }
    if (plan.length > c.counter_from + c.limits.payments_max - purse.counter) {
      fail('offline_limit', 'offline payment count reached: reconnect');
    }
    const chains = (await signHops(purse, plan, payee, now)).map(hex);
    purse.sent = [...chains.map((chain) => ({ chain, amount, at: now })), ...purse.sent].slice(0, LOG_MAX);
    await write(purse);
    return chains;
  });
}

/**
 * Offline: checks a payment read from another device (one or more chains as
 * hex, separated by blanks) with the bank keys and revocation lists kept
 * here, and keeps it as received, pending deposit. All or nothing.
 */
export function receive(text, now) {
  return locked(async () => {
    const purse = await read();
    const c = purse && certificateOf(purse);
    if (!c) fail('offline_no_purse', 'set up the offline purse first');
    const parts = String(text).split(/\s+/).filter(Boolean);
    if (!parts.length) fail('offline_malformed', 'paste the payment first');
    const taken = [];
    let total = 0;
    for (const part of parts) {
      const bytes = unhex(part);
      if (bytes.length > MAX_PAYMENT_BYTES) fail('offline_limit', 'a payment is at most 1 KiB');
      const chain = decodeChain(bytes);
      const holding = await verifyPayment(chain, purse.trust, purse.device.publicHex, now);
      const known = await Promise.all(purse.holdings.map(async (h) => hex(await tipOf(decodeChain(unhex(h.chain))))));
      if (known.includes(holding.tip) || taken.some((t) => t.tip === holding.tip)) {
        fail('offline_limit', 'this payment was received already');
      }
      admit({ holdings: [...purse.holdings, ...taken] }, c, holding.hi - holding.lo);
      total += holding.hi - holding.lo;
      taken.push({ chain: hex(bytes), next: holding.lo, hi: holding.hi, kind: 'received', tip: holding.tip });
    }
    purse.holdings.push(...taken.map(({ tip: _, ...h }) => h));
    await write(purse);
    return total;
  });
}

/**
 * Online: signs every holding's free value over to the DA `address` (its
 * key) and deposits each chain at the bank. A chain signed but not answered
 * (the network failed) is kept and sent again next time: the bank settles a
 * chain once and answers `already_settled` after.
 */
export function deposit(online, address, now) {
  return locked(async () => {
    const purse = await read();
    if (!purse) fail('offline_no_purse', 'set up the offline purse first');
    const plan = purse.holdings.map((h, index) => ({ index, lo: h.next, hi: h.hi })).filter((p) => p.lo < p.hi);
    if (plan.length) {
      const chains = await signHops(purse, plan, address, now);
      purse.deposits.push(...chains.map(hex));
      await write(purse);
    }
    const answers = [];
    while (purse.deposits.length) {
      const chain = purse.deposits[0];
      const answer = await online('offline/deposit', { chain });
      answers.push(answer);
      purse.deposits.shift();
      purse.settled = [{ chain, outcome: answer.outcome, amount: answer.amount_tiyn }, ...purse.settled].slice(0, LOG_MAX);
      await write(purse);
    }
    return answers;
  });
}
