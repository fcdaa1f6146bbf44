// The offline protocol of crates/dtenge-offline in the page: the canonical
// borsh encoding of loads, certificates, hops, chains and revocation lists,
// the signed messages, and the receiver's offline check of a chain
// (verify_chain with Purpose::Payment). Nothing here touches the network.
// Byte for byte the Rust encoding: tests/wallet_browser.rs decodes and
// verifies what this module builds with dtenge-offline, and the bank's desk
// takes the page's chains as deposits.

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export const MAX_PAYMENT_HOPS = 3;
export const MAX_CHAIN_HOPS = MAX_PAYMENT_HOPS + 1;
export const MAX_PAYMENT_BYTES = 1024;
export const MAX_CHAIN_BYTES = 1400;
export const MAX_REVOKED = 4096;
export const TIME_SKEW_MS = 5 * 60 * 1000;

const LOAD_DOMAIN = enc.encode('dtenge/offline/load/v1');
const CERTIFICATE_DOMAIN = enc.encode('dtenge/offline/certificate/v1');
const HOP_DOMAIN = enc.encode('dtenge/offline/hop/v1');
const REVOCATIONS_DOMAIN = enc.encode('dtenge/offline/revocations/v1');
const ELEMENT_DOMAIN = enc.encode('dtenge/offline/element/v1');

// A refusal with the code dtenge-offline gives the same refusal (OfflineCode).
export class OfflineError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const fail = (code, message) => { throw new OfflineError(code, message); };

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(text) {
  const t = String(text).trim();
  if (!/^([0-9a-f]{2})*$/i.test(t)) fail('offline_malformed', 'not hex');
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.substr(i * 2, 2), 16);
  return out;
}

class Writer {
  constructor() { this.parts = []; }
  bytes(b) { this.parts.push(...b); return this; }
  u32(v) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail('offline_malformed', `u32 out of range: ${v}`);
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v) {
    if (!Number.isSafeInteger(v) || v < 0) fail('offline_malformed', `u64 out of range: ${v}`);
    let x = BigInt(v);
    for (let i = 0; i < 8; i++) { this.parts.push(Number(x & 0xffn)); x >>= 8n; }
    return this;
  }
  str(s) { const b = enc.encode(s); return this.u32(b.length).bytes(b); }
  out() { return new Uint8Array(this.parts); }
}

class Reader {
  constructor(bytes) { this.b = bytes; this.at = 0; }
  take(n) {
    if (this.at + n > this.b.length) fail('offline_malformed', 'unexpected end of message');
    const out = this.b.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u32() { const b = this.take(4); return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 0x1000000; }
  u64() {
    const b = this.take(8);
    let x = 0n;
    for (let i = 7; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail('offline_malformed', 'number too large');
    return Number(x);
  }
  bank() {
    const n = this.u32();
    if (n < 1 || n > 32) fail('offline_malformed', 'participant id of 1-32 characters expected');
    const s = dec.decode(this.take(n));
    if (!/^[A-Z0-9_-]+$/.test(s)) fail('offline_malformed', `bad participant id ${JSON.stringify(s)}`);
    return s;
  }
  key() { return hex(this.take(32)); }
  sig() { return hex(this.take(64)); }
  vec(max, item) {
    const n = this.u32();
    if (n > max) fail('offline_malformed', `list of ${n} items, at most ${max}`);
    const out = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
  end() { if (this.at !== this.b.length) fail('offline_malformed', 'trailing bytes'); }
}

function writeLimits(w, l) {
  return w.u64(l.balance_max).u64(l.payment_max).u32(l.payments_max).u64(l.offline_ms_max);
}

function certificateFields(w, c) {
  w.str(c.bank).bytes(unhex(c.device));
  writeLimits(w, c.limits);
  return w.u32(c.counter_from).u64(c.valid_until);
}

function loadFields(w, l) {
  return w.str(l.bank).u64(l.serial).bytes(unhex(l.device)).u64(l.amount).u64(l.loaded_at);
}

function hopFields(w, h) {
  return w.u64(h.lo).u64(h.hi).bytes(unhex(h.payee)).u32(h.counter).u64(h.at).bytes(unhex(h.signature));
}

function readLoad(r) {
  return { bank: r.bank(), serial: r.u64(), device: r.key(), amount: r.u64(), loaded_at: r.u64(), signature: r.sig() };
}

function readCertificate(r) {
  return {
    bank: r.bank(),
    device: r.key(),
    limits: { balance_max: r.u64(), payment_max: r.u64(), payments_max: r.u32(), offline_ms_max: r.u64() },
    counter_from: r.u32(),
    valid_until: r.u64(),
    signature: r.sig(),
  };
}

function readHop(r) {
  return { lo: r.u64(), hi: r.u64(), payee: r.key(), counter: r.u32(), at: r.u64(), signature: r.sig() };
}

export function encodeChain(chain) {
  const w = new Writer();
  loadFields(w, chain.load).bytes(unhex(chain.load.signature));
  w.u32(chain.certificates.length);
  for (const c of chain.certificates) certificateFields(w, c).bytes(unhex(c.signature));
  w.u32(chain.hops.length);
  for (const h of chain.hops) hopFields(w, h);
  return w.out();
}

export function decodeChain(bytes) {
  if (bytes.length > MAX_CHAIN_BYTES) fail('offline_malformed', `chain larger than ${MAX_CHAIN_BYTES} bytes`);
  const r = new Reader(bytes);
  const load = readLoad(r);
  const certificates = r.vec(MAX_CHAIN_HOPS, () => readCertificate(r));
  const hops = r.vec(MAX_CHAIN_HOPS, () => readHop(r));
  r.end();
  return { load, certificates, hops };
}

export function decodeLoad(bytes) {
  const r = new Reader(bytes);
  const load = readLoad(r);
  r.end();
  return load;
}

export function decodeCertificate(bytes) {
  const r = new Reader(bytes);
  const c = readCertificate(r);
  r.end();
  return c;
}

export function decodeRevocations(bytes) {
  const r = new Reader(bytes);
  const list = { bank: r.bank(), serial: r.u64(), devices: r.vec(MAX_REVOKED, () => r.key()), signature: r.sig() };
  r.end();
  return list;
}

// dtenge_crypto::hash: SHA-256(len(domain) ‖ domain ‖ parts).
async function hash(domain, bytes) {
  const all = new Uint8Array(1 + domain.length + bytes.length);
  all[0] = domain.length;
  all.set(domain, 1);
  all.set(bytes, 1 + domain.length);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}

export function loadId(load) {
  return hash(LOAD_DOMAIN, loadFields(new Writer(), load).out());
}

export function certificateMessage(c) {
  return hash(CERTIFICATE_DOMAIN, certificateFields(new Writer(), c).out());
}

export function revocationsMessage(list) {
  const w = new Writer().str(list.bank).u64(list.serial).u32(list.devices.length);
  for (const d of list.devices) w.bytes(unhex(d));
  return hash(REVOCATIONS_DOMAIN, w.out());
}

// Hop::body: borsh of (HOP_DOMAIN as a byte slice, parent, lo, hi, payee, at).
export function hopBody(parent, lo, hi, payee, at) {
  return new Writer().u32(HOP_DOMAIN.length).bytes(HOP_DOMAIN).bytes(parent).u64(lo).u64(hi)
    .bytes(unhex(payee)).u64(at).out();
}

// Counted::message: what the element signs for `body` at `counter`; also the hop's id.
export function countedMessage(counter, body) {
  return hash(ELEMENT_DOMAIN, new Writer().u32(counter).bytes(body).out());
}

export function hopMessage(hop, parent) {
  return countedMessage(hop.counter, hopBody(parent, hop.lo, hop.hi, hop.payee, hop.at));
}

// The id of the chain's last hop (the parent of the next one), or the load's.
export async function tipOf(chain) {
  let parent = await loadId(chain.load);
  for (const h of chain.hops) parent = await hopMessage(h, parent);
  return parent;
}

const keys = new Map();

async function verifyWith(keyHex, signatureHex, message) {
  try {
    if (!keys.has(keyHex)) {
      keys.set(keyHex, await crypto.subtle.importKey('raw', unhex(keyHex), { name: 'Ed25519' }, false, ['verify']));
    }
    return await crypto.subtle.verify({ name: 'Ed25519' }, keys.get(keyHex), unhex(signatureHex), message);
  } catch {
    return false;
  }
}

export function certificateCovers(c, counter) {
  return counter >= c.counter_from && counter < c.counter_from + c.limits.payments_max;
}

// Takes a bank's signed revocation list into `trust` ({banks: {id: keyHex},
// revoked: [keyHex], serials: {id: n}}); an older serial changes nothing.
export async function applyRevocations(trust, list) {
  const key = trust.banks[list.bank];
  if (!key) fail('offline_unknown_bank', `unknown bank ${list.bank}`);
  if (!(await verifyWith(key, list.signature, await revocationsMessage(list)))) {
    fail('offline_bad_signature', 'bad signature on revocation list');
  }
  if ((trust.serials[list.bank] ?? -1) >= list.serial) return false;
  trust.revoked = Array.from(new Set([...trust.revoked, ...list.devices]));
  trust.serials[list.bank] = list.serial;
  return true;
}

// verify_chain(chain, trust, Purpose::Payment { receiver }, now): what a
// receiving device checks alone. Answers the holding the chain gives.
export async function verifyPayment(chain, trust, receiver, now) {
  const { hops, certificates, load } = chain;
  if (hops.length === 0 || hops.length > MAX_PAYMENT_HOPS) {
    fail('offline_too_many_hops', `chain of ${hops.length} hops: at most ${MAX_PAYMENT_HOPS}`);
  }
  if (certificates.length !== hops.length) fail('offline_chain_broken', 'one certificate per hop is needed');
  const bankKey = (bank) => trust.banks[bank] || fail('offline_unknown_bank', `unknown bank ${bank}: fetch the bank keys when online`);
  const id = await loadId(load);
  if (!(await verifyWith(bankKey(load.bank), load.signature, id))) fail('offline_bad_signature', 'bad signature on load');
  if (load.amount === 0) fail('offline_bad_range', 'hop 0 moves a range not inside what its payer held');
  const latest = now + TIME_SKEW_MS;
  let [parent, holder, lo, hi, parentAt] = [id, load.device, 0, load.amount, load.loaded_at];
  for (let i = 0; i < hops.length; i++) {
    const [hop, c] = [hops[i], certificates[i]];
    if (c.device !== holder) fail('offline_chain_broken', `chain broken at hop ${i}: the certificate names another device than the payer`);
    if (!(await verifyWith(bankKey(c.bank), c.signature, await certificateMessage(c)))) {
      fail('offline_bad_signature', 'bad signature on certificate');
    }
    if (i === 0 && load.amount > c.limits.balance_max) fail('offline_limit', 'load above the device\'s offline balance');
    if (trust.revoked.includes(holder)) fail('offline_device_revoked', `device ${holder} is revoked`);
    if (hop.at > c.valid_until) fail('offline_certificate_expired', `certificate of device ${holder} has expired`);
    if (!certificateCovers(c, hop.counter)) fail('offline_limit', 'counter outside the certificate: too many offline payments');
    if (hop.hi - hop.lo > c.limits.payment_max) fail('offline_limit', 'hop above the device\'s per-payment limit');
    if (hop.lo >= hop.hi || hop.lo < lo || hop.hi > hi) fail('offline_bad_range', `hop ${i} moves a range not inside what its payer held`);
    if (hop.at < parentAt || hop.at > latest) fail('offline_bad_time', `hop ${i} is dated before its parent or in the future`);
    const message = await hopMessage(hop, parent);
    if (!(await verifyWith(holder, hop.signature, message))) fail('offline_bad_signature', 'bad signature on hop');
    [parent, holder, lo, hi, parentAt] = [message, hop.payee, hop.lo, hop.hi, hop.at];
  }
  if (holder !== receiver) fail('offline_chain_broken', `chain broken at hop ${hops.length - 1}: the payment is to another device`);
  const payer = certificates[certificates.length - 1];
  if (now > payer.valid_until) fail('offline_certificate_expired', `certificate of device ${payer.device} has expired`);
  return { load: hex(id), bank: load.bank, lo, hi, holder, tip: hex(parent) };
}
